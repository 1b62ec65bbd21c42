package ownership

import (
	"errors"
	"time"
)

// The engine's verdict on a change it could not finish travels in its error; the events edge maps
// it to the message's fate (docs/architecture.md#acks-retries-and-dead-letters): nil acknowledges,
// an UnretryableError dead-letters (redelivery cannot help), a RetryError asks for redelivery after
// its Delay, and any other error is redelivered after the consumer's back-off.

// UnretryableError marks a failure that the same change will meet again.
type UnretryableError struct{ Err error }

func (e *UnretryableError) Error() string { return e.Err.Error() }
func (e *UnretryableError) Unwrap() error { return e.Err }

// Unretryable marks err as unretryable; nil stays nil, and an error that already is one is returned
// as it is.
func Unretryable(err error) error {
	if err == nil || IsUnretryable(err) {
		return err
	}
	return &UnretryableError{Err: err}
}

// IsUnretryable reports whether err is (or wraps) an UnretryableError.
func IsUnretryable(err error) bool {
	var u *UnretryableError
	return errors.As(err, &u)
}

// RetryError asks for the change again after Delay (a CRM's Retry-After, a paused tenant, an owner
// awaiting auto-provisioning).
type RetryError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter asks for err's change again after d.
func RetryAfter(err error, d time.Duration) error { return &RetryError{Err: err, Delay: d} }

// RetryDelay is the delay err asks for, if it is (or wraps) a RetryError.
func RetryDelay(err error) (time.Duration, bool) {
	var r *RetryError
	if errors.As(err, &r) {
		return r.Delay, true
	}
	return 0, false
}
