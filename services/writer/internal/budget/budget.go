// Package budget is the CRM API budget per (tenant, provider) that every writer replica draws from
// (issue 15; docs/architecture.md#owner-writeback): the HubSpot 10-second and daily limits and the
// Salesforce daily quota are the tenant's account's, not a replica's.
//
// The budget is one key of the ownersync_coord KV bucket per (tenant, provider), changed only by
// compare-and-set (libs/coord). It holds a GCRA schedule — the theoretical arrival time (TAT) of
// the next call at the shared rate — and the pause and hold every replica must respect: a 429
// answer seen by one replica pauses all of them, a daily quota near exhaustion holds all of them.
//
// A replica leases a few calls at a time (LeaseSize): one compare-and-set hands it the next
// LeaseSize slots of the schedule, each a time before which the call may not go. A slot it does
// not use within Expiry of its time is dropped, so that calls leased earlier cannot pile up in a
// later window: in any window of length W at most Burst + rate·(W + Expiry) calls go, and the
// shared rate is the per-process limit's rate scaled by W / (W + Expiry) to keep that under the
// CRM's limit. The per-process limiter (package ratelimit) still paces each replica and follows
// the CRM's rate-limit headers; the budget is the second gate of ratelimit.Limiter.Wait.
//
// Replicas compare wall-clock times: their clocks must agree (NTP); a skew of δ lets rate·δ more
// calls into a window.
package budget

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/coord"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// Config configures a Budget; zero values take the defaults.
type Config struct {
	// KV is the ownersync_coord bucket. Required.
	KV jetstream.KeyValue
	// LeaseSize is how many calls one compare-and-set leases. Default 5.
	LeaseSize int
	// Window is the CRM's rate-limit window for a provider (default: HubSpot 10 s, Salesforce 1 s).
	Window func(provider.Provider) time.Duration
	// Expiry is how long after its time a leased slot may still be used, at most; it is also
	// capped at a twentieth of the window. Default 500 ms.
	Expiry time.Duration
	// Timeout bounds one lease's KV round trips. Default 2 s.
	Timeout time.Duration
	// Unavailable is how long calls are held when the bucket cannot be reached. Default 2 s.
	Unavailable time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Budget implements ratelimit.Shared on a KV bucket. It is safe for concurrent use.
type Budget struct {
	cfg  Config
	mu   sync.Mutex
	keys map[ratelimit.Key]*local
}

var _ ratelimit.Shared = (*Budget)(nil)

// local is a replica's view of one key: the slots it leased and the stops it knows of.
type local struct {
	mu    sync.Mutex // held while leasing, so one goroutine per key talks to the bucket
	slots []slot

	smu         sync.Mutex // guards the stops, which PausedUntil reads while a lease is under way
	pausedUntil time.Time
	heldUntil   time.Time
}

type slot struct{ at, expires time.Time }

// state is the shared value of a key.
type state struct {
	// Tenant and Provider name the key, for the replicas that watch the bucket.
	Tenant   string            `json:"tenant"`
	Provider provider.Provider `json:"provider"`
	// TAT is the theoretical arrival time of the next call (Unix ns).
	TAT int64 `json:"tat"`
	// PausedUntil (a 429) and HeldUntil (daily quota) stop every replica's calls (Unix ns).
	PausedUntil int64 `json:"paused_until,omitempty"`
	HeldUntil   int64 `json:"held_until,omitempty"`
}

// New returns a Budget over cfg.KV.
func New(cfg Config) *Budget {
	if cfg.LeaseSize < 1 {
		cfg.LeaseSize = 5
	}
	if cfg.Window == nil {
		cfg.Window = func(p provider.Provider) time.Duration {
			if p == provider.HubSpot {
				return 10 * time.Second
			}
			return time.Second
		}
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Unavailable <= 0 {
		cfg.Unavailable = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Budget{cfg: cfg, keys: map[ratelimit.Key]*local{}}
}

func (b *Budget) local(key ratelimit.Key) *local {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.keys[key]
	if l == nil {
		l = &local{}
		b.keys[key] = l
	}
	return l
}

func kvKey(key ratelimit.Key) string {
	return streams.KVKey("budget", key.Tenant, string(key.Provider))
}

// expiry is how long a slot of key's provider stays usable.
func (b *Budget) expiry(p provider.Provider) time.Duration {
	return min(b.cfg.Expiry, b.cfg.Window(p)/20)
}

// SharedRate is the rate the replicas share for a per-process limit lim of provider p: scaled so
// that Burst + rate·(W + Expiry) stays within Burst + lim.Rate·W.
func (b *Budget) SharedRate(p provider.Provider, lim ratelimit.Limits) float64 {
	w := b.cfg.Window(p)
	return lim.Rate * w.Seconds() / (w + b.expiry(p)).Seconds()
}

// Take implements ratelimit.Shared: it blocks until key's next leased slot, leasing more from the
// bucket when this replica has none left.
func (b *Budget) Take(ctx context.Context, key ratelimit.Key, lim ratelimit.Limits, maxWait time.Duration) error {
	l := b.local(key)
	for {
		l.mu.Lock()
		now := b.cfg.Now()
		if until, reason := l.stopped(now); !until.IsZero() {
			l.mu.Unlock()
			if until.Sub(now) > maxWait {
				return &ratelimit.HeldError{Key: key, Until: until, Reason: reason}
			}
			if err := sleep(ctx, until.Sub(now)); err != nil {
				return err
			}
			continue
		}
		for len(l.slots) > 0 && l.slots[0].expires.Before(now) {
			l.slots = l.slots[1:]
		}
		if len(l.slots) == 0 {
			err := b.lease(ctx, key, l, lim, now, maxWait)
			l.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		s := l.slots[0]
		l.slots = l.slots[1:]
		l.mu.Unlock()
		return sleep(ctx, s.at.Sub(now))
	}
}

// lease takes the next slots of key's shared schedule into l (or learns of a stop); l.mu is held.
func (b *Budget) lease(ctx context.Context, key ratelimit.Key, l *local, lim ratelimit.Limits, now time.Time, maxWait time.Duration) error {
	rate := b.SharedRate(key.Provider, lim)
	if rate <= 0 {
		rate = 1
	}
	interval := time.Duration(float64(time.Second) / rate)
	tau := time.Duration(max(lim.Burst-1, 0)) * interval
	exp := b.expiry(key.Provider)
	var slots []slot
	var backlog time.Time
	var st state
	kctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	_, err := coord.Update(kctx, b.cfg.KV, kvKey(key), func(cur []byte, exists bool) ([]byte, bool, error) {
		slots, backlog, st = slots[:0], time.Time{}, state{}
		if exists {
			_ = json.Unmarshal(cur, &st) // a value this code cannot read is replaced
		}
		if st.PausedUntil > now.UnixNano() || st.HeldUntil > now.UnixNano() {
			return nil, false, nil
		}
		tat := laterOf(time.Unix(0, st.TAT), now)
		for range b.cfg.LeaseSize {
			at := laterOf(tat.Add(-tau), now)
			if at.Sub(now) > maxWait {
				break
			}
			slots = append(slots, slot{at: at, expires: at.Add(exp)})
			tat = tat.Add(interval)
		}
		if len(slots) == 0 {
			backlog = laterOf(tat.Add(-tau), now)
			return nil, false, nil
		}
		st.TAT = tat.UnixNano()
		st.Tenant, st.Provider = key.Tenant, key.Provider
		v, err := json.Marshal(st)
		return v, true, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ratelimit.HeldError{Key: key, Until: now.Add(b.cfg.Unavailable), Reason: "shared CRM budget unavailable: " + err.Error()}
	}
	l.learn(st)
	if !backlog.IsZero() {
		return &ratelimit.HeldError{Key: key, Until: backlog, Reason: "rate limit backlog (shared budget)"}
	}
	l.slots = append(l.slots, slots...)
	return nil
}

// learn takes the stops of a shared state read from the bucket.
func (l *local) learn(st state) {
	l.smu.Lock()
	defer l.smu.Unlock()
	if t := time.Unix(0, st.PausedUntil); st.PausedUntil != 0 && t.After(l.pausedUntil) {
		l.pausedUntil = t
	}
	if t := time.Unix(0, st.HeldUntil); st.HeldUntil != 0 && t.After(l.heldUntil) {
		l.heldUntil = t
	}
}

// stopped returns when the key's known pause or hold ends and why; zero when it is neither.
func (l *local) stopped(now time.Time) (time.Time, string) {
	l.smu.Lock()
	defer l.smu.Unlock()
	if l.heldUntil.After(now) && !l.heldUntil.Before(l.pausedUntil) {
		return l.heldUntil, "daily API quota near exhaustion (seen by another writer replica)"
	}
	if l.pausedUntil.After(now) {
		return l.pausedUntil, "paused after a rate-limit answer (seen by a writer replica)"
	}
	return time.Time{}, ""
}

// Pause implements ratelimit.Shared: key's calls stop until until in every replica.
func (b *Budget) Pause(ctx context.Context, key ratelimit.Key, until time.Time) error {
	return b.stop(ctx, key, until, false)
}

// Hold implements ratelimit.Shared: key's daily quota is near exhaustion; every replica holds
// until until.
func (b *Budget) Hold(ctx context.Context, key ratelimit.Key, until time.Time) error {
	return b.stop(ctx, key, until, true)
}

func (b *Budget) stop(ctx context.Context, key ratelimit.Key, until time.Time, hold bool) error {
	l := b.local(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slots = nil // what this replica leased before the stop is not used after it
	if hold {
		l.learn(state{HeldUntil: until.UnixNano()})
	} else {
		l.learn(state{PausedUntil: until.UnixNano()})
	}
	kctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	var st state
	_, err := coord.Update(kctx, b.cfg.KV, kvKey(key), func(cur []byte, exists bool) ([]byte, bool, error) {
		st = state{}
		if exists {
			_ = json.Unmarshal(cur, &st)
		}
		field := &st.PausedUntil
		if hold {
			field = &st.HeldUntil
		}
		if *field >= until.UnixNano() {
			return nil, false, nil // a longer stop is already there
		}
		*field = until.UnixNano()
		st.Tenant, st.Provider = key.Tenant, key.Provider
		v, err := json.Marshal(st)
		return v, true, err
	})
	l.learn(st)
	return err
}

// Watch follows the bucket's budget keys until ctx ends, so that a pause or hold another replica
// writes stops this replica's calls at once, even those it had already leased. Without it a
// replica learns of a stop at its next lease (after at most LeaseSize calls). It returns when the
// watch is set up.
func (b *Budget) Watch(ctx context.Context) error {
	w, err := b.cfg.KV.Watch(ctx, "budget.>", jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // the end of the current values
				}
				var st state
				if json.Unmarshal(e.Value(), &st) != nil || st.Tenant == "" {
					continue
				}
				if st.PausedUntil != 0 || st.HeldUntil != 0 {
					b.local(ratelimit.Key{Tenant: st.Tenant, Provider: st.Provider}).learn(st)
				}
			}
		}
	}()
	return nil
}

// PausedUntil implements ratelimit.Shared: when key's last known shared pause or hold ends (no I/O).
func (b *Budget) PausedUntil(key ratelimit.Key) time.Time {
	until, _ := b.local(key).stopped(b.cfg.Now())
	return until
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
