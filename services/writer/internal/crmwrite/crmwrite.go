// Package crmwrite flushes batches of owner writes through the Salesforce and HubSpot clients
// (docs/architecture.md#owner-writeback): one sObject Collections call or one HubSpot batch update
// per batch, paced by the per-(tenant, provider) limiter, fed back with the limits the CRM reports,
// with short in-process retries of transient failures, and with each record's own outcome
// classified so that the caller can acknowledge, redeliver or dead-letter each message.
//
// The flush functions fit batcher.FlushFunc[BatchKey, Write, Written].
package crmwrite

import (
	"errors"
	"fmt"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// BatchKey groups writes that can share one CRM call.
type BatchKey struct {
	Tenant     string
	Provider   provider.Provider
	RecordType ownership.RecordType
}

// limitKey is the rate-limit key of a batch.
func (k BatchKey) limitKey() ratelimit.Key {
	return ratelimit.Key{Tenant: k.Tenant, Provider: k.Provider}
}

// Write sets the owner of one CRM record.
type Write struct {
	RecordID string
	// OwnerID is the CRM owner; empty clears hubspot_owner_id (Salesforce refuses an empty owner).
	OwnerID string
	// TraceID names the write in the CRM's answer (HubSpot objectWriteTraceId), e.g. the event id;
	// the record id when empty.
	TraceID string
	// At is the source time of the change that asks for the write; see Supersedes.
	At time.Time
}

// Supersedes is the batcher's rule for two pending writes of one record: the one from the later
// change wins, whatever order they were submitted in (use it as batcher.Options.Supersedes).
func Supersedes(next, pending Write) bool { return !next.At.Before(pending.At) }

// Written is a successful write.
type Written struct {
	RecordID string
	OwnerID  string
}

// Error is a failed write of one record, or of a whole batch, with what to do about it.
type Error struct {
	Provider provider.Provider
	// RecordID is empty for a failure of the whole batch.
	RecordID string
	// HTTPStatus is the answer's status (0 when none came; 200 for a Salesforce per-record error).
	HTTPStatus int
	// Code is the CRM's error code (Salesforce statusCode/errorCode, HubSpot category or sub-code).
	Code    string
	Message string
	Class   ownership.Classification
	// RetryAfter is how long to wait before trying again, when known (a pause, a quota hold, a
	// Retry-After header).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s write", e.Provider)
	if e.RecordID != "" {
		s += " of " + e.RecordID
	}
	s += " failed (" + string(e.Class.Class)
	if e.Code != "" {
		s += ", " + e.Code
	}
	s += ")"
	if e.Message != "" {
		s += ": " + e.Message
	} else if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether the same write will fail again: record it, dead-letter it, alert.
func (e *Error) Permanent() bool { return !e.Class.Retryable() }

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

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
