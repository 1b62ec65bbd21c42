package crmwrite

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/budget"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// replica is one writer replica's HubSpot adapter: its own client, limiter and view of the shared
// budget, on the bucket all replicas share.
type replica struct {
	limiter *ratelimit.Limiter
	hs      *HubSpot
}

func newReplica(t *testing.T, budgets *budget.Budget, url string, maxWait time.Duration) replica {
	t.Helper()
	client, err := hubspot.New(hubspot.Config{BaseURL: url, AccessToken: "pat-test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	limiter := ratelimit.New(ratelimit.Config{
		Limits:  func(ratelimit.Key) ratelimit.Limits { return ratelimit.ForWindow(190, 10*time.Second, 5) },
		MaxWait: maxWait,
		Shared:  budgets,
	})
	hs := NewHubSpot(Config{Limiter: limiter, Retry: retryFast, HubSpotZone: func(context.Context, string) (*time.Location, bool) { return time.UTC, true }},
		func(context.Context, string) (HubSpotAPI, error) { return client, nil })
	return replica{limiter: limiter, hs: hs}
}

// maxInWindow is the most entries whose times fall in any window [t, t+w).
func maxInWindow(times []time.Time, w time.Duration) int {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// Two writer replicas, each with its own limiter at HubSpot's 190 calls per 10 s, draw from one
// budget on the shared KV bucket (issue 15): the sandbox's request log shows no rolling 10-second
// window with more than 190 calls. (Each replica's own limiter allows 190, so without the shared
// budget the two together send about 2 × 185 in the first window.) The sandbox itself does not
// limit, so that only the log can tell.
func TestTwoWritersShareHubSpotWindow(t *testing.T) {
	const calls = 230
	acct, _ := newHSSandbox(t, hssim.Config{BurstLimit: -1, DailyLimit: -1})
	kv := harness.JetStream(t).KV(t)[streams.CoordBucket]
	var reps []replica
	for range 2 {
		reps = append(reps, newReplica(t, budget.New(budget.Config{KV: kv}), acct.URL(), 30*time.Second))
	}
	ctx := context.Background()
	var left atomic.Int64
	left.Store(calls)
	var wg sync.WaitGroup
	for _, r := range reps {
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := []string{"101", "102"}[g%2]
				for left.Add(-1) >= 0 {
					if _, err := r.hs.Flush(ctx, hsContacts, items(Write{RecordID: id, OwnerID: "7001"})); err != nil {
						t.Errorf("Flush: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	var times []time.Time
	for _, e := range acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update") {
		times = append(times, e.Time)
	}
	if len(times) != calls {
		t.Fatalf("%d batch updates in the sandbox log, want %d", len(times), calls)
	}
	if got := maxInWindow(times, 10*time.Second); got > 190 {
		t.Errorf("%d calls in one 10-second window across both replicas, want at most 190", got)
	}
	t.Logf("%d calls in %v; busiest 10 s window: %d", calls, times[len(times)-1].Sub(times[0]).Round(time.Millisecond), maxInWindow(times, 10*time.Second))
}

// A 429 one replica gets pauses the other too (issue 15): after replica A's call is refused,
// replica B — which had leased calls from the shared budget before — holds its next write instead
// of sending it.
func TestRateLimitPausesEveryReplica(t *testing.T) {
	acct, _ := newHSSandbox(t, hssim.Config{BurstLimit: -1, DailyLimit: -1})
	kv := harness.JetStream(t).KV(t)[streams.CoordBucket]
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var reps []replica
	for range 2 {
		b := budget.New(budget.Config{KV: kv})
		if err := b.Watch(ctx); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, newReplica(t, b, acct.URL(), 500*time.Millisecond))
	}
	a, b := reps[0], reps[1]
	if _, err := b.hs.Flush(ctx, hsContacts, items(Write{RecordID: "102", OwnerID: "7001"})); err != nil {
		t.Fatalf("B's first write: %v", err)
	}
	acct.Faults().Add(crmsim.Rule{Method: "POST", Path: "/crm/v3/objects/contacts/batch/update", Action: crmsim.ActionRateLimit, Count: 1})
	if _, err := a.hs.Flush(ctx, hsContacts, items(Write{RecordID: "101", OwnerID: "7001"})); err == nil {
		t.Fatal("A's write answered 429 succeeded")
	}
	key := ratelimit.Key{Tenant: "acme", Provider: provider.HubSpot}
	harness.Eventually(t, 10*time.Second, "replica B to see A's pause", func() bool { return !b.limiter.PausedUntil(key).IsZero() })
	before := acct.Log().Counters().Requests
	_, err := b.hs.Flush(ctx, hsContacts, items(Write{RecordID: "102", OwnerID: "7003"}))
	if e, ok := AsError(err); !ok || e.Class.Class != ownership.RateLimited || e.RetryAfter <= 0 {
		t.Fatalf("B's write during A's pause = %v, want held with a delay", err)
	}
	if got := acct.Log().Counters().Requests - before; got != 0 {
		t.Errorf("B sent %d requests during the pause, want none", got)
	}
}
