package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/retry"
)

type hintErr struct{ d time.Duration }

func (e hintErr) Error() string             { return "busy" }
func (e hintErr) RetryAfter() time.Duration { return e.d }

var (
	errFlaky = errors.New("flaky")
	errFatal = errors.New("fatal")
)

// fast is a policy whose waits are a millisecond or so, so tests run quickly.
var fast = retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, RandomizationFactor: retry.NoJitter}

func TestDo(t *testing.T) {
	tests := []struct {
		name         string
		policy       retry.Policy
		errs         []error // returned by successive attempts; nil after the list
		wantAttempts int
		wantErr      error
		wantMinWait  time.Duration // smallest wait seen by OnRetry must be ≥ this
	}{
		{name: "first try succeeds", policy: fast, wantAttempts: 1},
		{name: "succeeds after two failures", policy: fast, errs: []error{errFlaky, errFlaky}, wantAttempts: 3},
		{name: "permanent stops at once", policy: fast, errs: []error{retry.Permanent(errFatal)}, wantAttempts: 1, wantErr: errFatal},
		{
			name:         "retryable classifier refuses",
			policy:       withRetryable(fast, func(err error) bool { return !errors.Is(err, errFatal) }),
			errs:         []error{errFlaky, errFatal, errFlaky},
			wantAttempts: 2, wantErr: errFatal,
		},
		{
			name:         "attempts run out",
			policy:       withAttempts(fast, 3),
			errs:         []error{errFlaky, errFlaky, errFlaky, errFlaky},
			wantAttempts: 3, wantErr: errFlaky,
		},
		{
			name:         "retry-after raises the wait",
			policy:       fast,
			errs:         []error{hintErr{d: 30 * time.Millisecond}},
			wantAttempts: 2, wantMinWait: 30 * time.Millisecond,
		},
		{
			name:         "retry-after beyond the elapsed budget gives up",
			policy:       withElapsed(fast, 50*time.Millisecond),
			errs:         []error{hintErr{d: time.Hour}},
			wantAttempts: 1, wantErr: hintErr{d: time.Hour},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			minWait := time.Duration(-1)
			p := tt.policy
			p.OnRetry = func(_ error, wait time.Duration) {
				if minWait < 0 || wait < minWait {
					minWait = wait
				}
			}
			err := retry.Do(context.Background(), p, func(context.Context) error {
				attempts++
				if attempts <= len(tt.errs) {
					return tt.errs[attempts-1]
				}
				return nil
			})
			if attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Do() = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Do() = %v, want %v", err, tt.wantErr)
			}
			if retry.IsPermanent(err) {
				t.Errorf("Do() returned a still-wrapped permanent error: %v", err)
			}
			if tt.wantMinWait > 0 && minWait < tt.wantMinWait {
				t.Errorf("smallest wait = %v, want ≥ %v", minWait, tt.wantMinWait)
			}
		})
	}
}

func TestDoJitterAndGrowth(t *testing.T) {
	p := retry.Policy{InitialInterval: 4 * time.Millisecond, MaxInterval: 16 * time.Millisecond, Multiplier: 2, RandomizationFactor: 0.5, MaxAttempts: 5}
	var waits []time.Duration
	p.OnRetry = func(_ error, w time.Duration) { waits = append(waits, w) }
	_ = retry.Do(context.Background(), p, func(context.Context) error { return errFlaky })
	bounds := [][2]time.Duration{{2, 6}, {4, 12}, {8, 24}, {8, 24}} // ms: interval·(1±0.5), capped at 16
	if len(waits) != len(bounds) {
		t.Fatalf("waits = %v, want %d of them", waits, len(bounds))
	}
	for i, w := range waits {
		lo, hi := bounds[i][0]*time.Millisecond, bounds[i][1]*time.Millisecond
		if w < lo || w > hi {
			t.Errorf("wait %d = %v, want in [%v, %v]", i, w, lo, hi)
		}
	}
}

func TestDoContextCancelledDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := retry.Policy{InitialInterval: time.Hour, MaxInterval: time.Hour, MaxElapsed: 2 * time.Hour, RandomizationFactor: retry.NoJitter}
	p.OnRetry = func(error, time.Duration) { cancel() }
	err := retry.Do(ctx, p, func(context.Context) error { return errFlaky })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) {
		t.Fatalf("Do() = %v, want context.Canceled wrapping the last error", err)
	}
}

func TestRetryAfter(t *testing.T) {
	got := []time.Duration{
		retry.RetryAfter(errFlaky),
		retry.RetryAfter(hintErr{d: 3 * time.Second}),
		retry.RetryAfter(errors.Join(errFlaky, hintErr{d: time.Second})),
	}
	want := []time.Duration{0, 3 * time.Second, time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RetryAfter (-want +got):\n%s", diff)
	}
}

func withRetryable(p retry.Policy, f func(error) bool) retry.Policy { p.Retryable = f; return p }
func withAttempts(p retry.Policy, n int) retry.Policy               { p.MaxAttempts = n; return p }
func withElapsed(p retry.Policy, d time.Duration) retry.Policy      { p.MaxElapsed = d; return p }
