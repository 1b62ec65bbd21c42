package scenarios

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/embednats"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// person is a platform user mapped in both CRMs.
type person struct{ platform, sf, hs string }

// mappedPeople lists the platform users with a synced mapping in both providers, sorted.
func (e *env) mappedPeople() []person {
	by := map[string]*person{}
	for _, prov := range []string{"salesforce", "hubspot"} {
		for _, m := range e.mappings(url.Values{"provider": {prov}, "status": {"synced"}, "per_page": {"200"}}).Items {
			p := by[m.PlatformUserID]
			if p == nil {
				p = &person{platform: m.PlatformUserID}
				by[m.PlatformUserID] = p
			}
			if prov == "salesforce" {
				p.sf = m.CRMUserID
			} else {
				p.hs = m.CRMUserID
			}
		}
	}
	var out []person
	for _, p := range by {
		if p.sf != "" && p.hs != "" {
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].platform < out[j].platform })
	return out
}

type deadLetter struct {
	ID      int64  `json:"id"`
	Service string `json:"service"`
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id"`
	Error   string `json:"error"`
}

func (e *env) deadLetters(tenant string) []deadLetter {
	var out struct {
		Items []deadLetter `json:"items"`
	}
	e.api("GET", "/v1/tenants/"+tenant+"/dlq?limit=1000", nil, &out)
	return out.Items
}

// ledger accounts for every accepted change: applied (the target system shows the expected owner),
// skipped with a recorded reason (history), or dead-lettered; none missing, none applied twice.
type ledger struct {
	applied, skipped, twice, missing []string
	dlq                              int
}

func (l ledger) String() string {
	first := func(s []string) []string { return s[:min(len(s), 5)] }
	return fmt.Sprintf("applied %d, skipped %d, dlq %d, missing %d (first %v), twice %d (first %v)", len(l.applied), len(l.skipped), l.dlq,
		len(l.missing), first(l.missing), len(l.twice), first(l.twice))
}

// ok reports a closed ledger: every change accounted for and none applied twice.
func (l ledger) ok() bool { return len(l.missing) <= l.dlq && len(l.twice) == 0 }

// crmLedger checks changes platform → CRM: want maps CRM record id to the expected CRM owner; owner
// reads the record's owner in the CRM; writes counts the CRM's successful writes of it.
func (e *env) crmLedger(tenant, provider string, want map[string]string, owner func(id string) string, writes func(id string) int) ledger {
	var l ledger
	for id, w := range want {
		switch {
		case owner(id) == w:
			l.applied = append(l.applied, id)
			if n := writes(id); n != 1 {
				l.twice = append(l.twice, fmt.Sprintf("%s:%d writes", id, n))
			}
		case hasSkip(e.history(provider, "contact", id)):
			l.skipped = append(l.skipped, id)
		default:
			l.missing = append(l.missing, id)
		}
	}
	for _, d := range e.deadLetters(tenant) {
		if strings.Contains(d.Subject, "owner") {
			l.dlq++
		}
	}
	sort.Strings(l.missing)
	return l
}

// platformLedger checks changes CRM → platform: want maps CRM record id to the expected platform owner.
// It indexes the platform's records and assignments once, so a 10,000-change ledger stays cheap to poll.
func platformLedger(p *platformsim.Platform, provider string, want map[string]string) ledger {
	owner := map[string]string{}
	for _, r := range p.Records() {
		if id := r.CRMRecordIDs[provider]; id != "" {
			owner[id] = r.OwnerUserID
		}
	}
	applied := map[string]int{}
	for _, a := range p.Assignments() {
		applied[a.CRMRecordID]++
	}
	var l ledger
	for id, w := range want {
		if o, ok := owner[id]; ok && o == w {
			l.applied = append(l.applied, id)
			if n := applied[id]; n != 1 {
				l.twice = append(l.twice, fmt.Sprintf("%s:%d assignments", id, n))
			}
			continue
		}
		l.missing = append(l.missing, id)
	}
	sort.Strings(l.missing)
	return l
}

func hasSkip(h []historyEntry) bool {
	for _, en := range h {
		if (en.Outcome == "skipped" || en.Outcome == "failed" || en.Outcome == "stale") && en.Reason != "" {
			return true
		}
	}
	return false
}

// TestFaultsCRMErrorsAndRateLimits sends a burst of platform owner changes to both CRMs while the
// sandboxes answer 30 % of writes with 503 and 30 % with rate limits for a period; in the end every
// change is applied exactly once and no echo comes back to the platform.
func TestFaultsCRMErrorsAndRateLimits(t *testing.T) { crmFaults(t, 60, 3) }

// crmFaults sends n changes per CRM in waves while the faults last (`make soak` runs a longer size).
func crmFaults(t *testing.T, n, waves int) {
	e := start(t)
	ctx := context.Background()
	people := e.mappedPeople()
	if len(people) < 10 {
		t.Fatalf("only %d people mapped in both CRMs", len(people))
	}
	sfWant, hsWant := map[string]string{}, map[string]string{}
	type change struct {
		rec   platformsim.Record
		sfID  string
		hsID  string
		owner person
	}
	var changes []change
	for i := range n {
		sc, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: fmt.Sprintf("fault%03d@example.org", i), LastName: fmt.Sprintf("F%03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		hc, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": fmt.Sprintf("fault%03d@example.org", i), "lastname": fmt.Sprintf("F%03d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		p := people[i%len(people)]
		sfWant[sc.ID], hsWant[hc.ID] = p.sf, p.hs
		changes = append(changes, change{rec: platformsim.Record{ID: fmt.Sprintf("pr-fault-%03d", i), Type: "contact", Email: fmt.Sprintf("fault%03d@example.org", i),
			OwnerUserID: p.platform, CRMRecordIDs: map[string]string{"salesforce": sc.ID, "hubspot": hc.ID}}, sfID: sc.ID, hsID: hc.ID, owner: p})
	}
	e.sf.Log().Reset()
	e.hs.Log().Reset()
	// One certain fault of each kind per CRM, then 30 % of 503s and 30 % of rate limits on writes.
	add := func(f *crmsim.Faults, method, path string) {
		f.Add(crmsim.Rule{Name: "first-503", Method: method, Path: path, Action: crmsim.ActionStatus, Status: 503, Count: 1})
		f.Add(crmsim.Rule{Name: "first-limit", Method: method, Path: path, Action: crmsim.ActionRateLimit, Count: 1})
		f.Add(crmsim.Rule{Name: "503", Method: method, Path: path, Action: crmsim.ActionStatus, Status: 503, Probability: 0.3})
		f.Add(crmsim.Rule{Name: "limit", Method: method, Path: path, Action: crmsim.ActionRateLimit, Probability: 0.3})
	}
	add(e.sf.Faults(), "PATCH", "/services/data/")
	add(e.hs.Faults(), "POST", "/crm/v3/objects/contacts/batch")
	add(e.hs.Faults(), "PATCH", "/crm/v3/objects/contacts/")
	began := time.Now()
	// The burst in waves, so that the writer makes many calls while the faults last.
	for w := range waves {
		for _, c := range changes[w*n/waves : (w+1)*n/waves] {
			if err := e.p.PutRecord(ctx, c.rec); err != nil {
				t.Fatal(err)
			}
		}
		harness.EventuallyState(t, 90*time.Second, fmt.Sprintf("wave %d applied in both CRMs under faults", w), func() (bool, string) {
			for _, c := range changes[w*n/waves : (w+1)*n/waves] {
				if r, _ := e.sf.Record(c.sfID); r.OwnerID != c.owner.sf {
					return false, c.sfID + " in Salesforce owned by " + r.OwnerID
				}
				if hc, _ := e.hs.Contact(c.hsID); hc.Properties["hubspot_owner_id"] != c.owner.hs {
					return false, c.hsID + " in HubSpot owned by " + hc.Properties["hubspot_owner_id"]
				}
			}
			return true, ""
		})
	}
	e.sf.Faults().Clear()
	e.hs.Faults().Clear()
	faultEnd := time.Since(began)
	sfc, hsc := e.sf.Log().Counters(), e.hs.Log().Counters()
	if sfc.Faulted == 0 || sfc.RateLimited == 0 || hsc.Faulted == 0 || hsc.RateLimited == 0 {
		t.Errorf("the sandboxes did not answer both kinds of faults: salesforce %+v hubspot %+v", sfc, hsc)
	}
	sfOwner := func(id string) string { r, _ := e.sf.Record(id); return r.OwnerID }
	hsOwner := func(id string) string { c, _ := e.hs.Contact(id); return c.Properties["hubspot_owner_id"] }
	var sfL, hsL ledger
	harness.EventuallyState(t, 30*time.Second, "every change accounted for in both CRMs", func() (bool, string) {
		sfL = e.crmLedger(tenantID, "salesforce", sfWant, sfOwner, func(id string) int { return ownerWrites(e.sf.Log(), id) })
		hsL = e.crmLedger(tenantID, "hubspot", hsWant, hsOwner, func(id string) int { return ownerWrites(e.hs.Log(), id) })
		return len(sfL.missing) == 0 && len(hsL.missing) == 0, "salesforce: " + sfL.String() + "; hubspot: " + hsL.String()
	})
	t.Logf("%d changes × 2 CRMs applied in %s under faults; salesforce %+v, hubspot %+v", n, faultEnd.Round(time.Millisecond), sfc, hsc)
	if !sfL.ok() || !hsL.ok() {
		t.Errorf("ledger not closed: salesforce %s; hubspot %s", sfL, hsL)
	}
	// The CRMs' echoes (OMs and webhooks of our own writes) reach ingress; none may come back to the platform.
	harness.EventuallyState(t, 30*time.Second, "the echo OMs acknowledged", func() (bool, string) {
		missing := 0
		for id := range sfWant {
			if !omAcked(e.sf, id) {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d OMs not acknowledged", missing)
	})
	for _, c := range changes {
		if as := append(assignmentsFor(e.p, c.sfID), assignmentsFor(e.p, c.hsID)...); len(as) != 0 {
			t.Errorf("an echo came back to the platform for %s: %+v", c.rec.ID, as)
		}
	}
}

// TestFaultsNATSRestart stops the NATS server in the middle of a burst of Salesforce owner changes and
// starts a new one on the same port and store: ingress answers 503 meanwhile, Salesforce redelivers,
// and every change reaches the platform exactly once.
func TestFaultsNATSRestart(t *testing.T) {
	e := start(t)
	people := e.mappedPeople()
	const n = 90
	var ids []string
	want := map[string]string{}
	actor := e.sfUser("ada.lovelace@acme.example.sf").ID
	for i := range n {
		c, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: fmt.Sprintf("nats%03d@example.org", i), LastName: fmt.Sprintf("N%03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		want[c.ID] = people[i%len(people)].platform
	}
	ownerOf := map[string]string{}
	for _, p := range people {
		ownerOf[p.platform] = p.sf
	}
	readyz := func() int {
		resp, err := http.Get(e.s.URLs["ingress"] + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	refused := func() int {
		n := 0
		for _, d := range e.sf.Deliveries() {
			if !d.Acked && d.Status == 503 {
				n++
			}
		}
		return n
	}
	began := time.Now()
	var outage time.Duration
	for i, id := range ids {
		if i == n/3 {
			e.s.NATS.Stop()
			stopped := time.Now()
			harness.EventuallyState(t, 10*time.Second, "ingress not ready without NATS", func() (bool, string) {
				st := readyz()
				return st == 503, fmt.Sprintf("readyz %d", st)
			})
			// The changes made while NATS is down are answered 503 by ingress.
			for _, id := range ids[i : 2*n/3] {
				if err := e.sf.SetOwner(id, ownerOf[want[id]], actor); err != nil {
					t.Fatal(err)
				}
			}
			harness.EventuallyState(t, 30*time.Second, "an Outbound Message answered 503 while NATS is down", func() (bool, string) {
				return refused() > 0, fmt.Sprintf("%d deliveries so far", len(e.sf.Deliveries()))
			})
			ns, err := embednats.Start(embednats.Options{Dir: filepath.Join(e.s.Opts.DataDir, "nats"), Host: e.s.Opts.Host,
				Port: e.s.Opts.NATSPort, Name: "ownersync-devstack"})
			if err != nil {
				t.Fatal(err)
			}
			e.s.NATS = ns
			outage = time.Since(stopped)
		}
		if i >= n/3 && i < 2*n/3 {
			continue
		}
		if err := e.sf.SetOwner(id, ownerOf[want[id]], actor); err != nil {
			t.Fatal(err)
		}
	}
	harness.EventuallyState(t, 30*time.Second, "ingress ready again", func() (bool, string) { st := readyz(); return st == 200, fmt.Sprintf("readyz %d", st) })
	var l ledger
	lastFlush := time.Now()
	harness.EventuallyState(t, 90*time.Second, "every Salesforce change applied on the platform", func() (bool, string) {
		if time.Since(lastFlush) > 5*time.Second {
			e.sf.FlushOutbound() // do not wait out the OM backoff (2 s doubling in the demo seed)
			lastFlush = time.Now()
		}
		l = platformLedger(e.p, "salesforce", want)
		return len(l.missing) == 0, l.String()
	})
	t.Logf("%d changes, NATS down for %s, %d OM deliveries answered 503, all applied in %s", n, outage.Round(time.Millisecond), refused(), time.Since(began).Round(time.Millisecond))
	if !l.ok() {
		t.Errorf("ledger not closed: %s", l)
	}
	for _, id := range ids {
		if w := ownerWrites(e.sf.Log(), id); w != 0 {
			t.Errorf("%s written back to Salesforce %d times (loop)", id, w)
		}
	}
}
