// Package retry is the one place outbound calls (Salesforce, HubSpot, SMTP, …) are retried. It is a
// thin layer over github.com/cenkalti/backoff/v4: exponential backoff with jitter, a bound on
// attempts and on elapsed time, cancellation through the context, and respect for a server's
// Retry-After hint carried by the error.
//
// Errors that will not change on a retry are marked with [Permanent] (or rejected by
// [Policy.Retryable]) and returned at once. JetStream owns redelivery of messages; this package only
// smooths over short outages inside one handler call.
package retry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryAfterer is implemented by errors that carry a server's hint of how long to wait before the
// next attempt (an HTTP Retry-After header, a documented lock time, a rate-limit window).
type RetryAfterer interface {
	RetryAfter() time.Duration
}

// Policy says how often and how long to retry. The zero value is usable: every field has a default.
type Policy struct {
	// InitialInterval is the first wait (default 200ms).
	InitialInterval time.Duration
	// MaxInterval caps one computed wait (default 10s). A server's Retry-After may exceed it.
	MaxInterval time.Duration
	// Multiplier grows the wait after each attempt (default 2).
	Multiplier float64
	// RandomizationFactor spreads each wait over [w·(1−f), w·(1+f)] (default 0.5). Use NoJitter to
	// turn jitter off.
	RandomizationFactor float64
	// MaxAttempts bounds the number of calls, the first included (default 5).
	MaxAttempts int
	// MaxElapsed bounds the total time spent, waits included (default 1m). A wait that would end past
	// it is not started: the last error is returned instead, so the caller (e.g. a JetStream consumer)
	// can reschedule the work itself, using the error's RetryAfter if it has one.
	MaxElapsed time.Duration
	// Retryable decides whether an error is worth another attempt; nil retries every error that is
	// not marked Permanent. Clients provide one, e.g. salesforce.Transient or hubspot.Transient.
	Retryable func(error) bool
	// OnRetry, when set, is called before each wait with the error and the wait.
	OnRetry func(err error, wait time.Duration)
}

// NoJitter as Policy.RandomizationFactor turns jitter off.
const NoJitter = -1

// Defaults used for zero Policy fields.
const (
	DefaultInitialInterval = 200 * time.Millisecond
	DefaultMaxInterval     = 10 * time.Second
	DefaultMultiplier      = 2.0
	DefaultRandomization   = 0.5
	DefaultMaxAttempts     = 5
	DefaultMaxElapsed      = time.Minute
)

func (p Policy) withDefaults() Policy {
	if p.InitialInterval <= 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	if p.MaxInterval <= 0 {
		p.MaxInterval = DefaultMaxInterval
	}
	if p.MaxInterval < p.InitialInterval {
		p.MaxInterval = p.InitialInterval
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultMultiplier
	}
	switch {
	case p.RandomizationFactor < 0:
		p.RandomizationFactor = 0
	case p.RandomizationFactor == 0:
		p.RandomizationFactor = DefaultRandomization
	case p.RandomizationFactor > 1:
		p.RandomizationFactor = 1
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = DefaultMaxElapsed
	}
	return p
}

// Permanent marks err as not worth retrying; Do returns err itself (unwrapped) at once.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return backoff.Permanent(err)
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *backoff.PermanentError
	return errors.As(err, &p)
}

// RetryAfter returns the server's wait hint carried anywhere in err's chain, or 0.
func RetryAfter(err error) time.Duration {
	var ra RetryAfterer
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return d
		}
	}
	return 0
}

// Do calls op until it succeeds, returns a permanent error, the policy's attempts or elapsed time
// run out, or ctx is done. It returns nil on success and otherwise the last error of op; when ctx
// ends the wait, the result wraps both ctx.Err() and the last error. Each wait is the larger of the
// computed backoff and the error's RetryAfter.
func Do(ctx context.Context, p Policy, op func(ctx context.Context) error) error {
	p = p.withDefaults()
	exp := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialInterval),
		backoff.WithMaxInterval(p.MaxInterval),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithRandomizationFactor(p.RandomizationFactor),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
	)
	hinted := &hintBackOff{BackOff: exp, maxElapsed: p.MaxElapsed, now: time.Now}
	b := backoff.WithContext(backoff.WithMaxRetries(hinted, uint64(p.MaxAttempts-1)), ctx)

	var last error
	err := backoff.RetryNotify(func() error {
		err := op(ctx)
		if err == nil {
			return nil
		}
		last = err
		if p.Retryable != nil && !IsPermanent(err) && !p.Retryable(err) {
			return backoff.Permanent(err)
		}
		hinted.hint = RetryAfter(err)
		return err
	}, b, func(err error, wait time.Duration) {
		if p.OnRetry != nil {
			p.OnRetry(err, wait)
		}
	})
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) && last != nil && !errors.Is(last, ctxErr) {
		return fmt.Errorf("%w (last error: %w)", ctxErr, last)
	}
	return err
}

// hintBackOff raises the wrapped backoff's wait to the server's hint and gives up when the hinted
// wait would end past the elapsed-time budget.
type hintBackOff struct {
	backoff.BackOff
	hint       time.Duration
	maxElapsed time.Duration
	start      time.Time
	now        func() time.Time
}

func (b *hintBackOff) Reset() {
	b.BackOff.Reset()
	b.hint = 0
	b.start = b.now()
}

func (b *hintBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	hint := b.hint
	b.hint = 0
	if d == backoff.Stop {
		return d
	}
	if hint > d {
		d = hint
	}
	if b.now().Sub(b.start)+d > b.maxElapsed {
		return backoff.Stop
	}
	return d
}

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an HTTP date (relative to
// now). Anything else, or a time in the past, is zero. The result is capped at 48 h (HubSpot's 477
// may ask for up to 24 h).
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return min(time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// maxRetryAfter caps a server's Retry-After.
const maxRetryAfter = 48 * time.Hour
