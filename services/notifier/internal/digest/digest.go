// Package digest batches alerts per tenant so that a tenant gets at most one alert email per
// interval, listing everything since the previous one.
//
// It is pure: no clock, no I/O. Callers pass the time to every method, which makes the timing
// rules table-testable and lets the consumer persist what it must (for example the last send
// time per tenant, restored with SetLastSent at start).
//
// Timing rules, per tenant:
//   - An item waits at least Settle after the first pending item arrived, so a burst of alerts
//     (one failing batch of 200 writes) lands in one email instead of one plus a digest.
//   - A batch is due no earlier than Interval after the previous batch was sent.
//   - While a batch is being sent (between Due and Sent/Failed) no other batch of that tenant is
//     due; new items keep collecting for the next one.
//   - Failed puts the batch's items back in front of the pending ones; the interval is not reset,
//     so the next Due retries at once.
//   - Items carry a key (the alert's event id); a key already pending, in flight or sent within
//     Remember is ignored, so a redelivered alert is not listed twice.
package digest

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// Options tune a Digester.
type Options struct {
	// Interval is the minimum time between two batches of one tenant (e.g. 15 minutes).
	Interval time.Duration
	// Settle is how long the first pending item of a tenant waits for others (e.g. 30 seconds).
	Settle time.Duration
	// Remember is how long the keys of sent items are kept to drop redeliveries; 24 h when zero.
	Remember time.Duration
	// MaxAttempts is how many times Flush tries one batch before it gives up (see OnGiveUp); 5
	// when zero.
	MaxAttempts int
}

// permanentError marks a failure that no retry will fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure no retry fixes (an SMTP 5xx): Flush gives the batch up at once.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// notDueError says the batch was not sent because its tenant's digest is not due yet across all
// replicas (another replica sent one at last).
type notDueError struct{ last time.Time }

func (e notDueError) Error() string {
	return "the tenant's alert digest was sent at " + e.last.UTC().Format(time.RFC3339) + " by another replica"
}

// NotDue tells Flush that a batch is not due after all: another replica sent the tenant's digest at
// last. Its items go back to the front of the queue without counting a failed attempt, and the
// tenant's interval runs from last.
func NotDue(last time.Time) error { return notDueError{last: last} }

// sentElsewhereError says another replica's digest already carried the batch's items.
type sentElsewhereError struct{ last time.Time }

func (e sentElsewhereError) Error() string {
	return "the alerts went out in the digest another replica sent at " + e.last.UTC().Format(time.RFC3339)
}

// SentElsewhere tells Flush that another replica's digest, sent at last, already carried the
// batch's items: they count as sent, and the tenant's interval runs from last.
func SentElsewhere(last time.Time) error { return sentElsewhereError{last: last} }

// Batch is what one digest email lists.
type Batch[T any] struct {
	// Tenant is the tenant the items belong to.
	Tenant string
	// Items are in arrival order.
	Items []T
	// Keys are the items' keys, in the same order.
	Keys []string
	// Since is when the previous batch was sent, or when the first item arrived if none was.
	Since time.Time
	// Until is the time Due was called.
	Until time.Time
}

// Digester collects items per tenant. It is safe for concurrent use: a consumer adds items while a
// ticker takes due batches.
type Digester[T any] struct {
	opts   Options
	giveUp func(ctx context.Context, b Batch[T], err error)

	mu      sync.Mutex
	tenants map[string]*tenant[T]
}

type entry[T any] struct {
	key  string
	item T
	at   time.Time
}

type tenant[T any] struct {
	pending  []entry[T]
	inFlight []entry[T]
	sending  bool
	attempts int // failed sends of the batch in flight or, after Failed, at the front of pending
	lastSent time.Time
	keys     map[string]struct{}  // pending and in flight
	sent     map[string]time.Time // key -> when its batch was sent
}

// New returns an empty Digester.
func New[T any](opts Options) *Digester[T] {
	if opts.Remember <= 0 {
		opts.Remember = 24 * time.Hour
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	return &Digester[T]{opts: opts, tenants: map[string]*tenant[T]{}}
}

func (d *Digester[T]) tenant(id string) *tenant[T] {
	t := d.tenants[id]
	if t == nil {
		t = &tenant[T]{keys: map[string]struct{}{}, sent: map[string]time.Time{}}
		d.tenants[id] = t
	}
	return t
}

// Add queues item for tenantID under key at now. It returns false, and drops the item, when the
// key is already pending, being sent, or was sent within Remember. An empty key is never deduplicated.
func (d *Digester[T]) Add(tenantID, key string, item T, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenant(tenantID)
	if key != "" {
		if _, ok := t.keys[key]; ok {
			return false
		}
		if at, ok := t.sent[key]; ok && now.Sub(at) < d.opts.Remember {
			return false
		}
		t.keys[key] = struct{}{}
	}
	t.pending = append(t.pending, entry[T]{key: key, item: item, at: now})
	return true
}

// SetLastSent records that a batch for tenantID was sent at at (e.g. restored from storage).
func (d *Digester[T]) SetLastSent(tenantID string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenant(tenantID)
	if at.After(t.lastSent) {
		t.lastSent = at
	}
}

// OnGiveUp sets what receives a batch Flush gave up on (after MaxAttempts failures, or one
// permanent failure) with the last error, so that it ends in the dead-letter queue with an alert
// instead of being retried forever (issue 13 item 10). Call it before Run.
func (d *Digester[T]) OnGiveUp(f func(ctx context.Context, b Batch[T], err error)) { d.giveUp = f }

// dueAt is when tenant t's pending items may be sent; false when nothing is pending or a batch is
// in flight.
func (d *Digester[T]) dueAt(t *tenant[T]) (time.Time, bool) {
	if t.sending || len(t.pending) == 0 {
		return time.Time{}, false
	}
	due := t.pending[0].at.Add(d.opts.Settle)
	if !t.lastSent.IsZero() {
		if next := t.lastSent.Add(d.opts.Interval); next.After(due) {
			due = next
		}
	}
	return due, true
}

// Due takes out every tenant's batch that is due at now, sorted by tenant, and marks them in
// flight. Call Sent or Failed for each.
func (d *Digester[T]) Due(now time.Time) []Batch[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Batch[T]
	for id, t := range d.tenants {
		due, ok := d.dueAt(t)
		if !ok || now.Before(due) {
			continue
		}
		b := Batch[T]{Tenant: id, Since: t.lastSent, Until: now}
		if b.Since.IsZero() {
			b.Since = t.pending[0].at
		}
		for _, e := range t.pending {
			b.Items = append(b.Items, e.item)
			b.Keys = append(b.Keys, e.key)
		}
		t.inFlight, t.pending, t.sending = t.pending, nil, true
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// Sent records that b was delivered at at: the tenant's interval starts again from at.
func (d *Digester[T]) Sent(b Batch[T], at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenant(b.Tenant)
	for _, e := range t.inFlight {
		if e.key != "" {
			delete(t.keys, e.key)
			t.sent[e.key] = at
		}
	}
	for k, when := range t.sent {
		if at.Sub(when) >= d.opts.Remember {
			delete(t.sent, k)
		}
	}
	t.inFlight, t.sending, t.attempts = nil, false, 0
	if at.After(t.lastSent) {
		t.lastSent = at
	}
}

// Failed returns b's items to the front of the tenant's queue so that the next Due retries them,
// unless the failure is permanent or the batch has failed MaxAttempts times: then its items are
// dropped (their keys remembered, as if sent) and Failed reports exhausted.
func (d *Digester[T]) Failed(b Batch[T], err error) (exhausted bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenant(b.Tenant)
	t.attempts++
	if IsPermanent(err) || t.attempts >= d.opts.MaxAttempts {
		for _, e := range t.inFlight {
			if e.key != "" {
				delete(t.keys, e.key)
				t.sent[e.key] = b.Until
			}
		}
		t.inFlight, t.sending, t.attempts = nil, false, 0
		return true
	}
	t.pending = append(t.inFlight, t.pending...)
	t.inFlight, t.sending = nil, false
	return false
}

// Requeue returns b's items to the front of the tenant's queue without counting an attempt, and
// records last as the tenant's last digest (a digest another replica sent), so that the next Due
// waits for the interval from it.
func (d *Digester[T]) Requeue(b Batch[T], last time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tenant(b.Tenant)
	t.pending = append(t.inFlight, t.pending...)
	t.inFlight, t.sending = nil, false
	if last.After(t.lastSent) {
		t.lastSent = last
	}
}

// NextDue returns the earliest time a batch becomes due, for a timer; false when nothing waits.
func (d *Digester[T]) NextDue() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var next time.Time
	found := false
	for _, t := range d.tenants {
		if due, ok := d.dueAt(t); ok && (!found || due.Before(next)) {
			next, found = due, true
		}
	}
	return next, found
}

// Pending returns the number of items waiting (not in flight) for tenantID.
func (d *Digester[T]) Pending(tenantID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.tenants[tenantID]; t != nil {
		return len(t.pending)
	}
	return 0
}
