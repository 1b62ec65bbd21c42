package domain

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error for whoever decides what happens next: the admin API and console map
// it to an HTTP status, the event consumers to an acknowledgement. An error without a Code is an
// internal failure (500; retried by the consumers).
type Code string

// Error codes.
const (
	// CodeNotFound: what the request names does not exist (an unknown tenant, user or run).
	CodeNotFound Code = "not_found"
	// CodeConflict: the request contradicts the stored state (a CRM user pinned to someone else).
	CodeConflict Code = "conflict"
	// CodeInvalid: the request cannot be done as asked (a provider not connected, an inactive CRM
	// user); asking again will not help.
	CodeInvalid Code = "invalid"
	// CodeBusy: another run holds the tenant's mappings; asking again later will.
	CodeBusy Code = "busy"
)

// HTTPStatus is the HTTP status of an error code: the one map from the core's codes to statuses,
// used by the admin API and the console (the event consumers map the same codes to
// acknowledgements, events.Classify). An unknown or empty code is a 500.
func HTTPStatus(code Code) int {
	switch code {
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is an error with a code and a message meant for the admin (it never carries internal
// details). Err, when set, is the cause (errors.Is sees it).
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Errorf returns an *Error with a formatted message, wrapping the code's sentinel (so that
// errors.Is(err, ErrNotFound) holds for every not-found error).
func Errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...), Err: sentinels[code]}
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, "" when there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Sentinel errors, one per code: adapters wrap them (fmt.Errorf("…: %w", ErrNotFound)) and the
// core tests them with errors.Is; their codes reach the edges through ErrorCode.
var (
	ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}
	ErrConflict = &Error{Code: CodeConflict, Message: "conflict"}
	ErrInvalid  = &Error{Code: CodeInvalid, Message: "invalid input"}
	// ErrBusy: a Sync Users run (or another event) holds the tenant's provider for longer than an
	// event may wait.
	ErrBusy = &Error{Code: CodeBusy, Message: "mappings of the tenant and provider are being written by another run"}
)

var sentinels = map[Code]error{CodeNotFound: ErrNotFound, CodeConflict: ErrConflict, CodeInvalid: ErrInvalid, CodeBusy: ErrBusy}

// Specific errors, each wrapping its code's sentinel.
var (
	// ErrUnknownTenant: the tenant is not configured.
	ErrUnknownTenant = &Error{Code: CodeNotFound, Message: "unknown tenant", Err: ErrNotFound}
	// ErrNotConnected: the tenant has not enabled the provider.
	ErrNotConnected = &Error{Code: CodeInvalid, Message: "provider not connected", Err: ErrInvalid}
	// ErrRunning: another Sync Users run of the tenant holds the run lock.
	ErrRunning = &Error{Code: CodeConflict, Message: "a sync run is already running for the tenant", Err: ErrConflict}
)

// IsSentinel reports whether e is one of the package's sentinel errors, whose messages are generic
// (an edge shows the wrapping error's text instead).
func IsSentinel(e *Error) bool {
	for _, s := range []*Error{ErrNotFound, ErrConflict, ErrInvalid, ErrBusy, ErrUnknownTenant, ErrNotConnected, ErrRunning} {
		if e == s {
			return true
		}
	}
	return false
}
