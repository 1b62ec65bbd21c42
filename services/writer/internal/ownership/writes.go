package ownership

import (
	"errors"
	"fmt"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
)

// What the engine (internal/writeback) exchanges with its edges, in the domain's terms: the record
// state store (internal/recordstate implements it over KV) and the CRM writes and lookups
// (internal/crmwrite implements them over the CRM clients). The engine imports neither edge.

// RecordRef names one CRM record.
type RecordRef struct {
	Tenant     string
	Provider   provider.Provider
	RecordType RecordType
	RecordID   string
}

// UpdateFunc computes the next state from the current one (zero and exists false for a new record).
// It returns write false to leave the state as it is. It may be called several times, once per
// attempt, so it must not have effects beyond its return values.
type UpdateFunc func(cur RecordState, exists bool) (next RecordState, write bool, err error)

// BatchKey groups writes that can share one CRM call.
type BatchKey struct {
	Tenant     string
	Provider   provider.Provider
	RecordType RecordType
}

// OwnerWrite sets the owner of one CRM record.
type OwnerWrite struct {
	RecordID string
	// OwnerID is the CRM owner; empty clears hubspot_owner_id (Salesforce refuses an empty owner).
	OwnerID string
	// TraceID names the write in the CRM's answer (HubSpot objectWriteTraceId), e.g. the event id;
	// the record id when empty.
	TraceID string
	// At is the source time of the change that asks for the write (crmwrite.Supersedes).
	At time.Time
}

// Written is a successful write.
type Written struct {
	RecordID string
	OwnerID  string
}

// ErrAmbiguousEmail: several CRM records have the email a lookup asked for.
var ErrAmbiguousEmail = errors.New("several records have this email")

// WriteError is a failed write of one record, or of a whole batch, with what to do about it.
type WriteError struct {
	Provider provider.Provider
	// RecordID is empty for a failure of the whole batch.
	RecordID string
	// HTTPStatus is the answer's status (0 when none came; 200 for a Salesforce per-record error).
	HTTPStatus int
	// Code is the CRM's error code (Salesforce statusCode/errorCode, HubSpot category or sub-code).
	Code    string
	Message string
	Class   Classification
	// RetryAfter is how long to wait before trying again, when known (a pause, a quota hold, a
	// Retry-After header).
	RetryAfter time.Duration
	Err        error
}

func (e *WriteError) Error() string {
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

func (e *WriteError) Unwrap() error { return e.Err }

// Permanent reports whether the same write will fail again: record it, dead-letter it, alert.
func (e *WriteError) Permanent() bool { return !e.Class.Retryable() }

// AsWriteError returns the *WriteError in err's chain, if any.
func AsWriteError(err error) (*WriteError, bool) {
	var e *WriteError
	ok := errors.As(err, &e)
	return e, ok
}
