package digest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// step is one event on a timeline: add an alert, ask what is due (and send or fail it), or seed the
// last send time.
type step struct {
	at     time.Duration
	add    string // "tenant/key"
	dup    bool   // Add must report a duplicate
	due    bool   // call Due
	want   []got  // batches Due must return
	fail   bool   // report the due batches as failed instead of sent
	seed   string // SetLastSent(seed, at)
	next   time.Duration
	noNext bool
}

type got struct {
	Tenant string
	Keys   []string
	Since  time.Duration
}

func TestDigestTimeline(t *testing.T) {
	const interval, settle = 15 * time.Minute, 30 * time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "first alert waits only the settle time",
			steps: []step{
				{at: 0, add: "acme/a1", next: settle},
				{at: 10 * time.Second, add: "acme/a2", next: settle},
				{at: 29 * time.Second, due: true, want: nil},
				{at: 30 * time.Second, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1", "a2"}, Since: 0}}, noNext: true},
			},
		},
		{
			name: "at most one email per interval",
			steps: []step{
				{at: 0, add: "acme/a1"},
				{at: time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1"}, Since: 0}}},
				{at: 2 * time.Minute, add: "acme/a2", next: time.Minute + interval},
				{at: 5 * time.Minute, add: "acme/a3"},
				{at: 15 * time.Minute, due: true, want: nil},
				{at: 16 * time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a2", "a3"}, Since: time.Minute}}},
				{at: 16*time.Minute + time.Second, due: true, want: nil, noNext: true},
			},
		},
		{
			name: "a late alert after a quiet interval goes after the settle time",
			steps: []step{
				{at: 0, add: "acme/a1"},
				{at: time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1"}, Since: 0}}},
				{at: 3 * time.Hour, add: "acme/a2", next: 3*time.Hour + settle},
				{at: 3*time.Hour + settle, due: true, want: []got{{Tenant: "acme", Keys: []string{"a2"}, Since: time.Minute}}},
			},
		},
		{
			name: "tenants are independent",
			steps: []step{
				{at: 0, add: "acme/a1"},
				{at: time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1"}, Since: 0}}},
				{at: 2 * time.Minute, add: "zeta/z1"},
				{at: 2 * time.Minute, add: "acme/a2"},
				{at: 3 * time.Minute, due: true, want: []got{{Tenant: "zeta", Keys: []string{"z1"}, Since: 2 * time.Minute}}},
				{at: 16 * time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a2"}, Since: time.Minute}}},
			},
		},
		{
			name: "duplicates are dropped while pending and after sending",
			steps: []step{
				{at: 0, add: "acme/a1"},
				{at: time.Second, add: "acme/a1", dup: true},
				{at: time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1"}, Since: 0}}},
				{at: 20 * time.Minute, add: "acme/a1", dup: true},
				{at: 25 * time.Hour, add: "acme/a1"},
			},
		},
		{
			name: "failed batch is retried first and keeps the interval",
			steps: []step{
				{at: 0, add: "acme/a1"},
				{at: time.Minute, due: true, fail: true, want: []got{{Tenant: "acme", Keys: []string{"a1"}, Since: 0}}},
				{at: 2 * time.Minute, add: "acme/a2"},
				{at: 2 * time.Minute, add: "acme/a1", dup: true},
				{at: 3 * time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1", "a2"}, Since: 0}}},
			},
		},
		{
			name: "last send restored at start",
			steps: []step{
				{seed: "acme", at: -10 * time.Minute},
				{at: 0, add: "acme/a1", next: 5 * time.Minute},
				{at: time.Minute, due: true, want: nil},
				{at: 5 * time.Minute, due: true, want: []got{{Tenant: "acme", Keys: []string{"a1"}, Since: -10 * time.Minute}}},
			},
		},
		{
			name:  "nothing pending",
			steps: []step{{at: 0, due: true, want: nil, noNext: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New[string](Options{Interval: interval, Settle: settle})
			for i, s := range tt.steps {
				now := at(s.at)
				switch {
				case s.seed != "":
					d.SetLastSent(s.seed, now)
				case s.add != "":
					tenant, key, _ := strings.Cut(s.add, "/")
					if added := d.Add(tenant, key, "item "+key, now); added == s.dup {
						t.Fatalf("step %d: Add(%s) = %v, want %v", i, s.add, added, !s.dup)
					}
				case s.due:
					batches := d.Due(now)
					var gotBatches []got
					for _, b := range batches {
						gotBatches = append(gotBatches, got{Tenant: b.Tenant, Keys: b.Keys, Since: b.Since.Sub(t0)})
						if !b.Until.Equal(now) || len(b.Items) != len(b.Keys) {
							t.Errorf("step %d: batch %+v", i, b)
						}
						for j, it := range b.Items {
							if it != "item "+b.Keys[j] {
								t.Errorf("step %d: item %q under key %q", i, it, b.Keys[j])
							}
						}
						if s.fail {
							d.Failed(b, errors.New("smtp down"))
						} else {
							d.Sent(b, now)
						}
					}
					if diff := cmp.Diff(s.want, gotBatches); diff != "" {
						t.Fatalf("step %d at %v: due batches (-want +got):\n%s", i, s.at, diff)
					}
				}
				next, ok := d.NextDue()
				switch {
				case s.noNext && ok:
					t.Errorf("step %d: NextDue = %v, want none", i, next.Sub(t0))
				case s.next != 0 && (!ok || !next.Equal(at(s.next))):
					t.Errorf("step %d: NextDue = %v (%v), want %v", i, next.Sub(t0), ok, s.next)
				}
			}
		})
	}
}

func TestInFlightBlocksNextBatch(t *testing.T) {
	d := New[int](Options{Interval: time.Minute})
	d.Add("acme", "1", 1, t0)
	first := d.Due(t0)
	if len(first) != 1 {
		t.Fatalf("Due = %v", first)
	}
	d.Add("acme", "2", 2, t0.Add(time.Second))
	if b := d.Due(t0.Add(time.Hour)); len(b) != 0 {
		t.Fatalf("Due while the first batch is in flight = %v", b)
	}
	if d.Pending("acme") != 1 {
		t.Fatalf("Pending = %d, want 1", d.Pending("acme"))
	}
	d.Sent(first[0], t0.Add(time.Hour))
	if b := d.Due(t0.Add(time.Hour + 30*time.Second)); len(b) != 0 {
		t.Fatalf("Due inside the interval = %v", b)
	}
	b := d.Due(t0.Add(time.Hour + time.Minute))
	if len(b) != 1 || !cmp.Equal(b[0].Items, []int{2}) {
		t.Fatalf("Due after the interval = %v", b)
	}
}

func TestConcurrentUse(t *testing.T) {
	d := New[int](Options{Interval: time.Millisecond})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				d.Add(fmt.Sprintf("t%d", i%3), fmt.Sprintf("%d-%d", w, i), i, t0)
			}
		}()
	}
	total := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	now := t0
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		now = now.Add(time.Second)
		for _, b := range d.Due(now) {
			total += len(b.Items)
			d.Sent(b, now)
		}
	}
	for _, b := range d.Due(now.Add(time.Hour)) {
		total += len(b.Items)
	}
	if total != 2000 {
		t.Fatalf("batched %d items, want 2000", total)
	}
}

func TestFlushAndRun(t *testing.T) {
	d := New[string](Options{Interval: time.Hour})
	clock := t0
	now := func() time.Time { return clock }
	d.Add("acme", "a1", "one", clock)

	var sent [][]string
	fail := true
	send := func(_ context.Context, b Batch[string]) error {
		if fail {
			return errors.New("smtp down")
		}
		sent = append(sent, b.Items)
		return nil
	}
	d.Flush(context.Background(), now, nil, send)
	if len(sent) != 0 || d.Pending("acme") != 1 {
		t.Fatalf("after a failed send: sent %v, pending %d", sent, d.Pending("acme"))
	}
	fail = false
	clock = clock.Add(time.Second)
	d.Flush(context.Background(), now, nil, send)
	if diff := cmp.Diff([][]string{{"one"}}, sent); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}

	// Run delivers a batch added while it runs, and stops with its context.
	ctx, cancel := context.WithCancel(context.Background())
	delivered := make(chan Batch[string], 1)
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx, time.Millisecond, time.Now, nil, func(_ context.Context, b Batch[string]) error {
			delivered <- b
			return nil
		})
	}()
	d.Add("zeta", "z1", "zed", time.Now())
	select {
	case b := <-delivered:
		if b.Tenant != "zeta" || !cmp.Equal(b.Items, []string{"zed"}) {
			t.Errorf("delivered %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run delivered nothing")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// TestFlushGivesUp covers issue 13 item 10 for alert digests: a digest whose send keeps failing
// (SMTP 452 again and again) is retried MaxAttempts times and then handed to GiveUp once and
// dropped, never retried forever; a permanent failure (5xx) is handed over at once.
func TestFlushGivesUp(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantSends int
	}{
		{name: "temporary failures", err: errors.New("452 4.5.3 too many recipients"), wantSends: 3},
		{name: "permanent failure", err: Permanent(errors.New("550 5.1.1 mailbox unavailable")), wantSends: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gaveUp []Batch[string]
			var gaveUpErr error
			d := New[string](Options{Interval: time.Hour, MaxAttempts: 3})
			d.OnGiveUp(func(_ context.Context, b Batch[string], err error) {
				gaveUp, gaveUpErr = append(gaveUp, b), err
			})
			clock := t0
			d.Add("acme", "a1", "one", clock)
			sends := 0
			for range 10 {
				clock = clock.Add(time.Second)
				d.Flush(context.Background(), func() time.Time { return clock }, nil, func(context.Context, Batch[string]) error {
					sends++
					return tt.err
				})
			}
			if sends != tt.wantSends {
				t.Errorf("%d sends, want %d", sends, tt.wantSends)
			}
			if len(gaveUp) != 1 || !cmp.Equal(gaveUp[0].Items, []string{"one"}) || !errors.Is(gaveUpErr, tt.err) {
				t.Errorf("gave up %+v with %v", gaveUp, gaveUpErr)
			}
			if d.Pending("acme") != 0 {
				t.Errorf("%d alerts still pending", d.Pending("acme"))
			}
			// A new alert starts a fresh count.
			d.Add("acme", "a2", "two", clock)
			clock = clock.Add(2 * time.Hour)
			ok := false
			d.Flush(context.Background(), func() time.Time { return clock }, nil, func(context.Context, Batch[string]) error { ok = true; return nil })
			if !ok {
				t.Error("the next alert was not sent")
			}
		})
	}
}

// A batch another replica's digest made not due goes back without counting a failed attempt (so it
// is never given up for it) and waits for the interval from that digest; a batch another replica's
// digest already carried counts as sent.
func TestFlushNotDueAndSentElsewhere(t *testing.T) {
	d := New[string](Options{Interval: 10 * time.Minute, Settle: time.Second, MaxAttempts: 1})
	gaveUp := false
	d.OnGiveUp(func(context.Context, Batch[string], error) { gaveUp = true })
	d.Add("acme", "a1", "one", at(0))
	now := at(2 * time.Second)
	clock := func() time.Time { return now }
	other := at(time.Second) // another replica's digest
	d.Flush(context.Background(), clock, nil, func(context.Context, Batch[string]) error { return NotDue(other) })
	if gaveUp || d.Pending("acme") != 1 {
		t.Fatalf("after NotDue: gave up %v, %d pending; want the item back", gaveUp, d.Pending("acme"))
	}
	if next, ok := d.NextDue(); !ok || !next.Equal(other.Add(10*time.Minute)) {
		t.Fatalf("next due %v %v, want the interval from the other digest %v", next, ok, other.Add(10*time.Minute))
	}
	now = other.Add(10 * time.Minute)
	sent := 0
	d.Flush(context.Background(), clock, nil, func(context.Context, Batch[string]) error { sent++; return SentElsewhere(now) })
	if sent != 1 || d.Pending("acme") != 0 || gaveUp {
		t.Fatalf("after SentElsewhere: %d sends, %d pending, gave up %v", sent, d.Pending("acme"), gaveUp)
	}
	if d.Add("acme", "a1", "one again", now) {
		t.Error("an alert another replica's digest carried was queued again")
	}
}
