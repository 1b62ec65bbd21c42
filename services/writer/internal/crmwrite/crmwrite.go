// Package crmwrite flushes batches of owner writes through the Salesforce and HubSpot clients
// (docs/architecture.md#owner-writeback): one sObject Collections call or one HubSpot batch update
// per batch, paced by the per-(tenant, provider) limiter, fed back with the limits the CRM reports,
// with short in-process retries of transient failures, and with each record's own outcome
// classified so that the caller can acknowledge, redeliver or dead-letter each message.
//
// The flush functions fit batcher.FlushFunc[BatchKey, Write, Written].
package crmwrite

import (
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// The types of a write are the writer's domain's (ownership), so that the engine does not import
// this edge.
type (
	// BatchKey groups writes that can share one CRM call.
	BatchKey = ownership.BatchKey
	// Write sets the owner of one CRM record.
	Write = ownership.OwnerWrite
	// Written is a successful write.
	Written = ownership.Written
	// Error is a failed write of one record, or of a whole batch, with what to do about it.
	Error = ownership.WriteError
)

// limitKey is the rate-limit key of a batch.
func limitKey(k BatchKey) ratelimit.Key {
	return ratelimit.Key{Tenant: k.Tenant, Provider: k.Provider}
}

// Supersedes is the batcher's rule for two pending writes of one record: the one from the later
// change wins, whatever order they were submitted in (use it as batcher.Options.Supersedes).
func Supersedes(next, pending Write) bool { return !next.At.Before(pending.At) }

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) { return ownership.AsWriteError(err) }

// clientError is the batch error when no client could be had for the tenant: the *Error the client
// func returned (a configuration problem), or a transient failure.
func clientError(p provider.Provider, err error) *Error {
	if e, ok := AsError(err); ok {
		return e
	}
	return &Error{Provider: p, Class: ownership.Classification{Class: ownership.Transient}, Err: err}
}

// heldError turns a limiter hold into a batch error.
func heldError(p provider.Provider, h *ratelimit.HeldError, now time.Time) *Error {
	return &Error{Provider: p, Class: ownership.Classification{Class: ownership.RateLimited},
		Message: h.Reason, RetryAfter: max(h.Until.Sub(now), 0), Err: h}
}
