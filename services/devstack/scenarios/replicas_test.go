package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestReplicas is the whole system with replicas, as separate processes (issue 15): three
// nats-server processes (R3 streams and KV buckets), two processes of each service, the CRM
// sandboxes sending both CRMs' webhooks through a load balancer to the two ingresses. In the middle
// of a burst of owner changes in both CRMs it SIGKILLs one replica of each service and restarts
// it, then SIGKILLs the node leading the CRM stream and restarts it. The ledgers prove every change
// reached the platform once; the HubSpot sandbox's log shows its 10-second limit held across both
// writers; Sync Users started on both mappers at once ran one at a time. `make soak` runs the long
// variant (TestSoakReplicas).
func TestReplicas(t *testing.T) { replicaRun(t, 150) }

// replicaRun runs the replica scenario with n changes per CRM.
func replicaRun(t *testing.T, n int) {
	st := startSoakWith(t, soakOptions{natsProcesses: true, processes: true, replicas: 2})
	e := st.env2()
	people := e.mappedPeople()
	if len(people) == 0 {
		t.Fatal("nobody mapped in both CRMs")
	}
	sf, hs := st.sb.Salesforce, st.sb.HubSpot
	sfActor := people[0].sf
	hsOwner, _ := hs.Owner(people[0].hs)
	sfWant, hsWant := map[string]string{}, map[string]string{}
	var sfIDs, hsIDs []string
	for i := range n {
		c, err := sf.CreateRecord(sfsim.Record{Type: "Contact", Email: fmt.Sprintf("rep%05d@example.org", i), LastName: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		h, err := hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": fmt.Sprintf("rep%05d@example.org", i), "lastname": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		sfIDs, hsIDs = append(sfIDs, c.ID), append(hsIDs, h.ID)
	}
	hs.Log().Reset()
	began := time.Now()
	kill := func() {
		for _, svc := range serviceNames {
			if err := st.procs[svc].Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-st.exited[svc]
			killed := time.Now()
			st.startProcess(svc)
			t.Logf("%s (one of two replicas) SIGKILLed and ready again in %s", svc, time.Since(killed).Round(time.Millisecond))
		}
		leader := st.natsProcs.streamLeader(streams.CRM)
		meta := st.natsProcs.metaLeader()
		if leader < 0 {
			leader = meta
		}
		if leader < 0 {
			t.Fatal("no JetStream leader found")
		}
		killed := time.Now()
		st.natsProcs.kill(leader)
		st.natsProcs.start(leader)
		t.Logf("nats-server n%d (leader of stream CRM; meta leader n%d) SIGKILLed and restarted in %s", leader, meta, time.Since(killed).Round(time.Millisecond))
	}
	for i := range n {
		if i == n/3 {
			kill()
		}
		p := people[i%len(people)]
		if err := sf.SetOwner(sfIDs[i], p.sf, sfActor); err != nil {
			t.Fatal(err)
		}
		if err := hs.SetContactOwner(hsIDs[i], p.hs, hsOwner.UserID); err != nil {
			t.Fatal(err)
		}
		sfWant[sfIDs[i]], hsWant[hsIDs[i]] = p.platform, p.platform
	}
	// Sync Users asked of both mappers at once runs once at a time.
	e2 := *e
	e2.mapperURL = "http://" + st.addrs["mapper-2"]
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, en := range []*env{e, &e2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r run
			codes[i] = en.api("POST", "/v1/tenants/"+tenantID+"/sync-users", nil, &r)
		}()
	}
	wg.Wait()
	// One starts the run (202); the other starts one after it (202) or is told about the run that is
	// going (200 with that run, or 409).
	ok := func(c int) bool { return c == 202 || c == 200 || c == 409 }
	if (codes[0] != 202 && codes[1] != 202) || !ok(codes[0]) || !ok(codes[1]) {
		t.Errorf("Sync Users asked of both mappers at once answered %v, want one 202 and 202, 200 or 409", codes)
	}

	var sfL, hsL ledger
	last := time.Now()
	harness.EventuallyState(t, 10*time.Minute, "every change of both CRMs applied on the platform", func() (bool, string) {
		if time.Since(last) > 5*time.Second {
			sf.FlushOutbound()
			hs.FlushWebhooks()
			last = time.Now()
		}
		sfL, hsL = platformLedger(st.p, "salesforce", sfWant), platformLedger(st.p, "hubspot", hsWant)
		return len(sfL.missing) == 0 && len(hsL.missing) == 0, "salesforce: " + sfL.String() + "; hubspot: " + hsL.String()
	})
	t.Logf("%d changes per CRM applied in %s; salesforce %s; hubspot %s", n, time.Since(began).Round(time.Millisecond), sfL, hsL)
	if !sfL.ok() || !hsL.ok() {
		t.Errorf("ledger not closed: salesforce %s; hubspot %s", sfL, hsL)
	}

	// HubSpot's 10-second limit held across both writers (and mapper's reads).
	var times []time.Time
	for _, en := range hs.Log().Entries() {
		if en.Status != 429 && !strings.HasPrefix(en.Path, "/oauth") {
			times = append(times, en.Time)
		}
	}
	busiest := maxInWindow(times, 10*time.Second)
	t.Logf("HubSpot API: %d requests, busiest 10 s window %d, %d answered 429", len(times), busiest, hs.Log().Counters().RateLimited)
	if busiest > 190 {
		t.Errorf("%d HubSpot requests in one 10-second window, over its limit of 190", busiest)
	}

	// The runs never overlapped.
	type runItem struct {
		ID         string     `json:"id"`
		State      string     `json:"state"`
		StartedAt  time.Time  `json:"started_at"`
		FinishedAt *time.Time `json:"finished_at"`
	}
	var runs struct {
		Items []runItem `json:"items"`
	}
	harness.Eventually(t, 60*time.Second, "the Sync Users runs finished", func() bool {
		e.api("GET", "/v1/tenants/"+tenantID+"/sync-runs?limit=50", nil, &runs)
		for _, r := range runs.Items {
			if r.State == "running" {
				return false
			}
		}
		return len(runs.Items) > 0
	})
	sort.Slice(runs.Items, func(i, j int) bool { return runs.Items[i].StartedAt.Before(runs.Items[j].StartedAt) })
	for i := 1; i < len(runs.Items); i++ {
		prev := runs.Items[i-1]
		if prev.FinishedAt != nil && runs.Items[i].StartedAt.Before(*prev.FinishedAt) {
			t.Errorf("Sync Users runs %s and %s overlapped", prev.ID, runs.Items[i].ID)
		}
	}
}

// maxInWindow is the most times that fall in any window [t, t+w).
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
