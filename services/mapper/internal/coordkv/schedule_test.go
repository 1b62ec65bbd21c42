package coordkv_test

import (
	"context"
	"errors"
	"github.com/ownersync/ownersync/libs/provider"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/coordkv"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
	"github.com/ownersync/ownersync/workbench/harness"
)

type oneTenant struct{ t tenant.Tenant }

func (o oneTenant) Get(context.Context, string) (*tenant.Tenant, error) { t := o.t; return &t, nil }

// noCRM fails every pull: the runs end at once (failed), which is all the scheduler needs.
type noCRM struct{}

func (noCRM) Directory(*tenant.Tenant, provider.Provider) (domain.Directory, error) {
	return nil, errors.New("no CRM in this test")
}

type noReports struct{}

func (noReports) SyncReport(context.Context, report.Report) error { return nil }

// clock is a settable clock shared by both replicas.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Two mapper replicas' schedulers on one MongoDB store and one ownersync_coord bucket fire a due
// Sync Users schedule once between them (issue 15): at each step of the clock exactly one
// scheduled run is added, never one per replica. (With the last firing kept per process, each
// replica fired a due schedule from its own memory.)
func TestScheduleFiresOnceAcrossReplicas(t *testing.T) {
	kv := harness.JetStream(t).KV(t)[streams.CoordBucket]
	conn := harness.MongoDB(t, "mapper_schedule")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := mongodb.EnsureIndexes(ctx, conn.DB, mongostore.Indexes); err != nil {
		t.Fatal(err)
	}
	store := mongostore.New(conn.DB, mongostore.Options{})
	acme := oneTenant{tenant.Tenant{ID: "acme", Schedule: tenant.Schedule{Enabled: true, Interval: "10m"},
		Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true}}}}
	clk := &clock{t: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)}
	var runners []*syncusers.Runner
	var wg sync.WaitGroup
	for _, name := range []string{"mapper-a", "mapper-b"} {
		shared := coordkv.New(coordkv.Options{KV: kv, Holder: name})
		w := changes.New(store, nil, nil, clk.Now)
		w.UseLeases(shared)
		r := syncusers.New(ctx, syncusers.Options{Writer: w, Store: store, Tenants: acme, Directories: noCRM{}, Reports: noReports{},
			ListCap: 10, LockTTL: time.Minute, Now: clk.Now, Claims: shared})
		runners = append(runners, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = r.Schedule(ctx, 5*time.Millisecond, func(context.Context) ([]tenant.Tenant, error) { return []tenant.Tenant{acme.t}, nil })
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, r := range runners {
			r.Wait()
		}
	})
	scheduled := func() (n int, running bool) {
		runs, err := store.Runs(ctx, "acme", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if r.Trigger == domain.TriggerSchedule {
				n++
				running = running || r.Status == domain.RunRunning
			}
		}
		return n, running
	}
	// settle lets both schedulers tick many times at the current clock, until the runs are done.
	settle := func(want int) {
		t.Helper()
		harness.Eventually(t, 20*time.Second, "scheduled runs finished", func() bool {
			n, running := scheduled()
			return n >= want && !running
		})
		time.Sleep(200 * time.Millisecond) // about 40 ticks of each scheduler at this clock
		if n, _ := scheduled(); n != want {
			t.Fatalf("at %s: %d scheduled runs, want %d (one per due schedule across both replicas)", clk.Now().Format(time.TimeOnly), n, want)
		}
	}
	settle(1) // no run yet: due at once
	clk.Add(5 * time.Minute)
	time.Sleep(200 * time.Millisecond)
	if n, _ := scheduled(); n != 1 {
		t.Fatalf("half an interval later: %d scheduled runs, want 1", n)
	}
	clk.Add(5 * time.Minute)
	settle(2)
	clk.Add(10 * time.Minute)
	settle(3)
}
