package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/telemetry/otlpsink"
	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// sample is one line of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads a /metrics page.
func scrape(t *testing.T, url string) []sample {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i > 0 && line[i] == '{' {
			s.name = line[:i]
			rest = line[i+1:]
			for !strings.HasPrefix(rest, "}") {
				eq := strings.Index(rest, `="`)
				key := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				for j := 0; ; j++ {
					if rest[j] == '\\' {
						val.WriteByte(rest[j+1])
						j++
						continue
					}
					if rest[j] == '"' {
						rest = strings.TrimPrefix(rest[j+1:], ",")
						break
					}
					val.WriteByte(rest[j])
				}
				s.labels[key] = val.String()
			}
			rest = strings.TrimSpace(rest[1:])
		} else {
			s.name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// metrics are the scrapes of every service.
type metrics map[string][]sample

// sum adds the values of a metric's series whose labels include match, over the named services
// (every service when none is named).
func (m metrics) sum(name string, match map[string]string, services ...string) (float64, int) {
	if len(services) == 0 {
		for svc := range m {
			services = append(services, svc)
		}
	}
	total, n := 0.0, 0
	for _, svc := range services {
	next:
		for _, s := range m[svc] {
			if s.name != name {
				continue
			}
			for k, v := range match {
				if s.labels[k] != v {
					continue next
				}
			}
			total += s.value
			n++
		}
	}
	return total, n
}

// series lists a metric's series in one service, for failure messages.
func (m metrics) series(name string, services ...string) string {
	var out []string
	for svc, ss := range m {
		if len(services) > 0 && !contains(services, svc) {
			continue
		}
		for _, s := range ss {
			if s.name == name {
				out = append(out, fmt.Sprintf("%s %v %g", svc, s.labels, s.value))
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// outcomes counts a sandbox's answers by outcome.
func outcomes(log *crmsim.Log) map[string]int {
	out := map[string]int{}
	for _, en := range log.Entries() {
		out[crmcall.Outcome(en.Status, nil)]++
	}
	return out
}

const traceparentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// TestOperatorTelemetry is issue 17's "done when" on one dev stack run as an operator runs it:
// every service's /metrics on its internal port scraped after a scenario (platform owner changes
// with a 429, a 503 and a permanent error injected in the sandboxes, a fallback owner, echoes, a
// HubSpot owner change, Sync Users with one refused SMTP attempt, admin API calls) holds each
// metric of the issue with the values the scenario implies; and an in-process OTLP receiver holds
// one trace from a platform change (traceparent honoured) to the CRM write through the batch
// span's link, one from a HubSpot webhook to the owner.assign publish, and a Sync Users root span
// with a child per phase and per CRM page. The writer logs each CRM write at debug level.
func TestOperatorTelemetry(t *testing.T) {
	sink := otlpsink.New()
	otlp := httptest.NewServer(sink)
	defer otlp.Close()
	// The OTel SDK reads the process environment (autoexport, the batch span processor).
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OWNERSYNC_LOG_LEVEL", "debug")
	t.Setenv("OWNERSYNC_ALERT_SETTLE", "500ms") // the dead letter's alert is mailed at once
	e := startWith(t, func(o *devstack.Options) {
		o.InternalListeners = true
		o.Getenv = os.Getenv
	})
	ctx := context.Background()
	services := []string{"ingress", "mapper", "writer", "notifier"}
	for _, svc := range services {
		if e.s.URLs[svc+"-internal"] == "" {
			t.Fatalf("%s has no internal listener", svc)
		}
		if resp, err := http.Get(e.s.URLs[svc] + "/metrics"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Errorf("%s serves /metrics on its public port", svc)
			}
		}
	}
	e.sf.SetDailyLimit(100000)
	e.sf.SetDailyUsage(40000)

	people := e.mappedPeople()
	if len(people) < 3 {
		t.Fatalf("only %d people mapped in both CRMs", len(people))
	}
	var unmapped string // a platform user with no HubSpot or Salesforce mapping: the fallback owner is used
	for _, u := range e.unmapped("platform-users", "hubspot") {
		if m, ok := e.mapping("salesforce", u.ID); !ok || m.CRMUserID == "" {
			unmapped = u.ID
			break
		}
	}
	if unmapped == "" {
		t.Fatal("the demo has no platform user unmapped in both CRMs")
	}

	// Three records written to both CRMs, one to both with the fallback owner, and one Salesforce
	// record whose write Salesforce refuses for good (dead-lettered).
	type rec struct {
		id, kind, email, owner, sf, hs string
	}
	var recs []rec
	for i := range 5 {
		email := fmt.Sprintf("telemetry%02d@example.org", i)
		sc, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: email, LastName: fmt.Sprintf("T%02d", i)})
		if err != nil {
			t.Fatal(err)
		}
		r := rec{id: fmt.Sprintf("pr-tel-%02d", i), kind: "contact", email: email, sf: sc.ID}
		switch {
		case i < 3:
			r.owner = people[i].platform
		case i == 3:
			r.owner = unmapped
		default:
			r.owner = people[0].platform
		}
		if i < 4 {
			hc, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": email, "lastname": fmt.Sprintf("T%02d", i)}})
			if err != nil {
				t.Fatal(err)
			}
			r.hs = hc.ID
		}
		recs = append(recs, r)
	}
	e.hs.Faults().Add(crmsim.Rule{Name: "one-429", Method: "POST", Path: "/crm/v3/objects/contacts/batch", Action: crmsim.ActionRateLimit, Count: 1})
	e.sf.Faults().Add(crmsim.Rule{Name: "one-503", Method: "PATCH", Path: "/services/data/", Action: crmsim.ActionStatus, Status: 503, Count: 1})
	e.sf.Faults().Add(crmsim.Rule{Name: "inactive", Action: crmsim.ActionRecordError, RecordID: recs[4].sf, Code: "INACTIVE_OWNER_OR_USER"})

	// post sends owner changes through ingress's platform bridge.
	post := func(batch []rec, evt string, at time.Time, traceparent string) {
		t.Helper()
		var body bytes.Buffer
		body.WriteString(`{"ownerChanges":[`)
		for i, r := range batch {
			if i > 0 {
				body.WriteString(",")
			}
			ids := fmt.Sprintf(`"salesforce":%q`, r.sf)
			if r.hs != "" {
				ids += fmt.Sprintf(`,"hubspot":%q`, r.hs)
			}
			fmt.Fprintf(&body, `{"meta":{"eventId":"%s-%d","tenantId":%q,"occurredAt":%q},"recordType":%q,"platformRecordId":%q,"recordEmail":%q,"ownerUserId":%q,"crmRecordIds":{%s}}`,
				evt, i, tenantID, at.UTC().Format(time.RFC3339Nano), "RECORD_TYPE_"+strings.ToUpper(r.kind), r.id, r.email, r.owner, ids)
		}
		body.WriteString(`]}`)
		req, _ := http.NewRequest("POST", e.s.URLs["ingress"]+"/v1/platform/events", &body)
		req.Header.Set("Authorization", "Bearer "+devstack.DevPlatformToken)
		req.Header.Set("Content-Type", "application/json")
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("platform events: HTTP %d %s", resp.StatusCode, b)
		}
	}
	// The first changes carry a traceparent: the trace must reach the CRM writes.
	firstAt := time.Now()
	post(recs, "tel-evt", firstAt, "00-"+traceparentTrace+"-00f067aa0ba902b7-01")
	harness.EventuallyState(t, 60*time.Second, "platform changes written to both CRMs", func() (bool, string) {
		for i, r := range recs[:4] {
			want := map[int]string{0: people[0].sf, 1: people[1].sf, 2: people[2].sf}[i]
			if sr, _ := e.sf.Record(r.sf); (want != "" && sr.OwnerID != want) || (want == "" && sr.OwnerID == "") {
				return false, r.sf + " owned by " + sr.OwnerID
			}
			hc, _ := e.hs.Contact(r.hs)
			wantHS := map[int]string{0: people[0].hs, 1: people[1].hs, 2: people[2].hs}[i]
			if got := hc.Properties["hubspot_owner_id"]; (wantHS != "" && got != wantHS) || got == "" {
				return false, r.hs + " owned by " + got
			}
		}
		return len(e.deadLetters(tenantID)) == 1, fmt.Sprintf("%d dead letters", len(e.deadLetters(tenantID)))
	})

	// The verdicts the first changes did not produce: the same owner again (unchanged), a change
	// older than the record's (stale), and a lead, which HubSpot's object modules leave out
	// (skipped) while Salesforce takes it.
	lead, err := e.sf.CreateRecord(sfsim.Record{Type: "Lead", Email: "telemetry-lead@example.org", LastName: "Lead", Company: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	leadHS, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": "telemetry-lead@example.org", "lastname": "Lead"}})
	if err != nil {
		t.Fatal(err)
	}
	older := recs[1]
	older.owner = people[2].platform
	leadRec := rec{id: "pr-tel-lead", kind: "lead", email: "telemetry-lead@example.org", owner: people[1].platform, sf: lead.ID, hs: leadHS.ID}
	post([]rec{recs[0], older}, "tel-again", time.Now(), "")
	post([]rec{leadRec}, "tel-lead", time.Now(), "")
	post([]rec{older}, "tel-older", firstAt.Add(-time.Hour), "")
	recs = append(recs, leadRec)
	has := func(prov, kind, id, outcome string) bool {
		for _, h := range e.history(prov, kind, id) {
			if h.Outcome == outcome {
				return true
			}
		}
		return false
	}
	harness.EventuallyState(t, 30*time.Second, "unchanged, stale and skipped recorded", func() (bool, string) {
		got := map[string]bool{
			"unchanged sf": has("salesforce", "contact", recs[0].sf, "unchanged"), "unchanged hs": has("hubspot", "contact", recs[0].hs, "unchanged"),
			"stale sf": has("salesforce", "contact", older.sf, "stale"), "stale hs": has("hubspot", "contact", older.hs, "stale"),
			"lead sf": has("salesforce", "lead", lead.ID, "applied"),
		}
		for _, ok := range got {
			if !ok {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})

	// A HubSpot owner change reaches the platform (webhook → owner.assign).
	hsContact := recs[0].hs
	if err := e.hs.SetContactOwner(hsContact, people[1].hs, 0); err != nil {
		t.Fatal(err)
	}
	harness.EventuallyState(t, 30*time.Second, "HubSpot change assigned on the platform", func() (bool, string) {
		return len(assignmentsFor(e.p, hsContact)) == 1, fmt.Sprintf("%+v", assignmentsFor(e.p, hsContact))
	})

	// The dead letter's alert is mailed; then Sync Users runs and the SMTP server refuses its
	// report for good (550: refused, dead-lettered by the notifier).
	harness.EventuallyState(t, 30*time.Second, "the alert digest mailed", func() (bool, string) {
		for _, msg := range e.s.SMTP.Messages() {
			if h, err := msg.Header(); err == nil && h.Get("X-Ownersync-Alerts") != "" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d mails", len(e.s.SMTP.Messages()))
	})
	e.s.SMTP.SetFault(smtpsink.Fault{Code: 550, Stage: smtpsink.StageMail, Times: 1})
	e.syncUsers()
	harness.EventuallyState(t, 30*time.Second, "the report refused", func() (bool, string) {
		return e.s.SMTP.FaultsAnswered() == 1, fmt.Sprintf("%d refusals", e.s.SMTP.FaultsAnswered())
	})

	// Admin API calls with known counts.
	for range 2 {
		e.problems("hubspot")
	}
	if st := e.api("GET", "/v1/tenants/no-such-tenant/errors", nil, nil); st/100 != 4 {
		t.Errorf("errors of an unknown tenant: HTTP %d", st)
	}

	// Quiescence: every consumer has nothing pending or in flight, the echoes are acknowledged.
	nc, err := nats.Connect(e.s.URLs["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	type consumerInfo struct{ stream, name string }
	var consumers []consumerInfo
	harness.EventuallyState(t, 60*time.Second, "every consumer drained", func() (bool, string) {
		consumers = nil
		for _, st := range []string{streams.CRM, streams.Platform, streams.Sync} {
			s, err := js.Stream(ctx, st)
			if err != nil {
				return false, err.Error()
			}
			l := s.ListConsumers(ctx)
			for ci := range l.Info() {
				if strings.HasPrefix(ci.Name, "platformsim") {
					continue // the platform sandbox's own consumers
				}
				consumers = append(consumers, consumerInfo{st, ci.Name})
				if ci.NumPending != 0 || ci.NumAckPending != 0 {
					return false, fmt.Sprintf("%s/%s pending %d ack pending %d", st, ci.Name, ci.NumPending, ci.NumAckPending)
				}
			}
		}
		return omAcked(e.sf, recs[0].sf), "echo OM not acknowledged"
	})

	m := metrics{}
	for _, svc := range services {
		m[svc] = scrape(t, e.s.URLs[svc+"-internal"])
	}
	check := func(what string, got, want float64, name string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s = %g, want %g; series:\n%s", what, name, got, want, m.series(name))
		}
	}
	atLeast := func(what string, got, want float64, name string) {
		t.Helper()
		if got < want {
			t.Errorf("%s: %s = %g, want at least %g; series:\n%s", what, name, got, want, m.series(name))
		}
	}

	t.Run("crm calls", func(t *testing.T) {
		for prov, log := range map[string]*crmsim.Log{"salesforce": e.sf.Log(), "hubspot": e.hs.Log()} {
			want := outcomes(log)
			for outcome, n := range want {
				got, _ := m.sum("ownersync_crm_calls_total", map[string]string{"provider": prov, "outcome": outcome})
				check(prov+" calls answered "+outcome+" by the sandbox", got, float64(n), "ownersync_crm_calls_total")
			}
			total, _ := m.sum("ownersync_crm_calls_total", map[string]string{"provider": prov})
			all := 0
			for _, n := range want {
				all += n
			}
			check(prov+" calls in all", total, float64(all), "ownersync_crm_calls_total")
			lat, _ := m.sum("ownersync_crm_call_duration_seconds_count", map[string]string{"provider": prov})
			check(prov+" call latencies", lat, float64(all), "ownersync_crm_call_duration_seconds_count")
		}
		n429, _ := m.sum("ownersync_crm_calls_total", map[string]string{"provider": "hubspot", "outcome": "429", "tenant": tenantID}, "writer")
		check("the 429 the HubSpot sandbox was told to return", n429, 1, "ownersync_crm_calls_total")
		n503, _ := m.sum("ownersync_crm_calls_total", map[string]string{"provider": "salesforce", "outcome": "5xx"}, "writer")
		check("the 503 the Salesforce sandbox was told to return", n503, 1, "ownersync_crm_calls_total")
		pauses, _ := m.sum("ownersync_crm_rate_limit_pauses_total", map[string]string{"provider": "hubspot", "tenant": tenantID})
		check("429 pauses", pauses, 1, "ownersync_crm_rate_limit_pauses_total")
		rec, _ := m.sum("ownersync_crm_records_per_call_count", map[string]string{"provider": "hubspot"}, "writer")
		atLeast("HubSpot record counts per call", rec, 1, "ownersync_crm_records_per_call_count")
	})

	t.Run("quota", func(t *testing.T) {
		used, limit := e.sf.DailyUsage()
		l, n := m.sum("ownersync_crm_quota_limit", map[string]string{"provider": "salesforce", "tenant": tenantID}, "writer")
		check("Salesforce daily limit as the writer last read it", l, float64(limit)*float64(n), "ownersync_crm_quota_limit")
		u, _ := m.sum("ownersync_crm_quota_used", map[string]string{"provider": "salesforce", "tenant": tenantID}, "writer")
		r, _ := m.sum("ownersync_crm_quota_remaining", map[string]string{"provider": "salesforce", "tenant": tenantID}, "writer")
		if n != 1 || u < 40000 || u > float64(used) || u+r != float64(limit) {
			t.Errorf("Salesforce quota as the writer read it: used %g remaining %g limit %g (%d series); the sandbox: used %d of %d", u, r, l, n, used, limit)
		}
		hl, hn := m.sum("ownersync_crm_rate_limit_max", map[string]string{"provider": "hubspot", "tenant": tenantID}, "writer")
		hr, _ := m.sum("ownersync_crm_rate_limit_remaining", map[string]string{"provider": "hubspot", "tenant": tenantID}, "writer")
		if hn != 1 || hl <= 0 || hr < 0 || hr > hl {
			t.Errorf("HubSpot rate-limit headroom: remaining %g of %g (%d series)", hr, hl, hn)
		}
	})

	t.Run("jetstream", func(t *testing.T) {
		pubs, _ := m.sum("ownersync_publish_duration_seconds_count", nil, "ingress")
		atLeast("ingress publishes timed", pubs, float64(len(recs)), "ownersync_publish_duration_seconds_count")
		for _, c := range consumers {
			for _, name := range []string{"ownersync_consumer_pending_messages", "ownersync_consumer_ack_pending_messages", "ownersync_consumer_redelivered_messages"} {
				v, n := m.sum(name, map[string]string{"consumer": c.name, "stream": c.stream})
				if n == 0 || v != 0 {
					t.Errorf("consumer %s/%s: %s = %g in %d series, want 0 after the drain:\n%s", c.stream, c.name, name, v, n, m.series(name))
				}
			}
		}
		for svc, n := range map[string]float64{"writer": 1, "notifier": 1, "mapper": 0, "ingress": 0} {
			dlq, _ := m.sum("ownersync_dlq_messages", map[string]string{"service": svc}, svc)
			check("dead letters of the "+svc, dlq, n, "ownersync_dlq_messages")
		}
	})

	t.Run("writer verdicts", func(t *testing.T) {
		want := map[string]int{}
		for _, r := range recs {
			for prov, id := range map[string]string{"salesforce": r.sf, "hubspot": r.hs} {
				if id == "" {
					continue
				}
				for _, h := range e.history(prov, r.kind, id) {
					if h.Outcome == "assigned" || h.Outcome == "unassigned" {
						h.Outcome = "applied" // history names what the platform was sent
					}
					want[h.Outcome]++
				}
			}
		}
		if want["applied"] < 3 || want["fallback"] < 1 || want["echo"] == 0 || want["failed"] != 1 ||
			want["unchanged"] < 2 || want["stale"] < 2 {
			t.Errorf("history outcomes of the scenario's records: %v", want)
		}
		for verdict, n := range want {
			got, _ := m.sum("ownersync_writer_changes_total", map[string]string{"verdict": verdict, "tenant": tenantID}, "writer")
			switch verdict {
			case "failed", "duplicate", "redelivered":
				// The 429 and the 503 make a delivery fail transiently (counted "failed" each time)
				// and the redelivery writes ("redelivered") or finds the other CRM's part done
				// ("duplicate"); history keeps one entry per change and outcome.
				atLeast("writer changes with verdict "+verdict+" (at least as the records' histories show)", got, float64(n), "ownersync_writer_changes_total")
			default:
				check("writer changes with verdict "+verdict+" (as the records' histories show)", got, float64(n), "ownersync_writer_changes_total")
			}
		}
		// The lead's HubSpot part (the admin API reads no HubSpot lead history).
		skipped, _ := m.sum("ownersync_writer_changes_total", map[string]string{"verdict": "skipped", "provider": "hubspot", "tenant": tenantID}, "writer")
		check("HubSpot changes skipped by the object modules (the one lead)", skipped, 1, "ownersync_writer_changes_total")
		lin, _ := m.sum("ownersync_writer_batch_linger_seconds_count", nil, "writer")
		atLeast("batch lingers", lin, 2, "ownersync_writer_batch_linger_seconds_count")
	})

	t.Run("sync users", func(t *testing.T) {
		var runs struct {
			Items []struct {
				Trigger string `json:"trigger"`
				State   string `json:"state"`
				Pulled  int    `json:"pulled"`
			} `json:"items"`
		}
		if st := e.api("GET", "/v1/tenants/"+tenantID+"/sync-runs", nil, &runs); st != 200 {
			t.Fatalf("sync-runs: HTTP %d", st)
		}
		byTrigger, pulledByRuns := map[[2]string]int{}, 0
		for _, r := range runs.Items {
			byTrigger[[2]string{r.Trigger, r.State}]++
			pulledByRuns += r.Pulled
		}
		pulled, _ := m.sum("ownersync_mapper_sync_users_pulled_total", map[string]string{"tenant": tenantID}, "mapper")
		check("CRM users pulled (as the runs report)", pulled, float64(pulledByRuns), "ownersync_mapper_sync_users_pulled_total")
		for k, n := range byTrigger {
			got, _ := m.sum("ownersync_mapper_sync_runs_total", map[string]string{"trigger": k[0], "outcome": k[1], "tenant": tenantID}, "mapper")
			check("Sync Users runs "+k[0]+"/"+k[1], got, float64(n), "ownersync_mapper_sync_runs_total")
		}
		for _, prov := range []string{"salesforce", "hubspot"} {
			for _, phase := range []string{"pull", "match", "write"} {
				got, _ := m.sum("ownersync_mapper_sync_phase_seconds_count", map[string]string{"provider": prov, "phase": phase}, "mapper")
				check(prov+" "+phase+" phases timed", got, float64(len(runs.Items)), "ownersync_mapper_sync_phase_seconds_count")
			}
			if p, _ := m.sum("ownersync_mapper_sync_users_pulled_total", map[string]string{"provider": prov}, "mapper"); p == 0 {
				t.Errorf("no %s users pulled:\n%s", prov, m.series("ownersync_mapper_sync_users_pulled_total"))
			}
			ov := e.overview().of(prov)
			mapped, _ := m.sum("ownersync_mapper_mappings", map[string]string{"provider": prov, "status": "mapped", "tenant": tenantID}, "mapper")
			check(prov+" users mapped after the last run (overview "+strconv.Itoa(ov.Mapped)+"+"+strconv.Itoa(ov.Manual)+" manual)", mapped, float64(ov.Mapped+ov.Manual), "ownersync_mapper_mappings")
			unm, _ := m.sum("ownersync_mapper_mappings", map[string]string{"provider": prov, "status": "unmapped_crm", "tenant": tenantID}, "mapper")
			check(prov+" CRM users unmapped", unm, float64(ov.UnmappedCRM), "ownersync_mapper_mappings")
		}
	})

	t.Run("admin api", func(t *testing.T) {
		route := "/v1/tenants/:tenant/errors"
		ok, _ := m.sum("http_server_request_duration_seconds_count", map[string]string{"http_route": route, "http_response_status_code": "200"}, "mapper")
		check("admin API GET errors answered 200", ok, 2, "http_server_request_duration_seconds_count")
		bad, n := m.sum("http_server_request_duration_seconds_count", map[string]string{"http_route": route}, "mapper")
		if bad-ok != 1 || n < 2 {
			t.Errorf("admin API GET errors not 200: %g in %d series, want 1:\n%s", bad-ok, n, m.series("http_server_request_duration_seconds_count", "mapper"))
		}
	})

	t.Run("emails", func(t *testing.T) {
		kinds, alertsMailed := map[string]int{}, 0
		for _, msg := range e.s.SMTP.Messages() {
			h, err := msg.Header()
			switch {
			case err != nil:
				t.Fatal(err)
			case h.Get("X-Ownersync-Run-Id") != "":
				kinds["report"]++
			case h.Get("X-Ownersync-Alerts") != "":
				kinds["alerts"]++
				n, _ := strconv.Atoi(h.Get("X-Ownersync-Alerts"))
				alertsMailed += n
			default:
				kinds["other"]++
			}
		}
		if kinds["report"] != 1 || kinds["alerts"] < 1 {
			t.Errorf("the SMTP sink holds %v, want the first run's report and the dead letter's alert digest", kinds)
		}
		for kind, n := range kinds {
			sent, _ := m.sum("ownersync_notifier_emails_total", map[string]string{"result": "sent", "kind": kind, "tenant": tenantID}, "notifier")
			check(kind+" emails sent (as the SMTP sink received them)", sent, float64(n), "ownersync_notifier_emails_total")
		}
		refused, _ := m.sum("ownersync_notifier_emails_total", map[string]string{"result": "refused", "kind": "report"}, "notifier")
		check("report emails refused by the SMTP server", refused, 1, "ownersync_notifier_emails_total")
		all, _ := m.sum("ownersync_notifier_emails_total", nil, "notifier")
		smtp, _ := m.sum("ownersync_notifier_smtp_seconds_count", nil, "notifier")
		check("SMTP exchanges timed", smtp, all, "ownersync_notifier_smtp_seconds_count")
		digests, _ := m.sum("ownersync_notifier_digest_alerts_count", nil, "notifier")
		alerts, _ := m.sum("ownersync_notifier_digest_alerts_sum", nil, "notifier")
		check("alert digests", digests, float64(kinds["alerts"]), "ownersync_notifier_digest_alerts_count")
		check("alerts in digests (X-Ownersync-Alerts)", alerts, float64(alertsMailed), "ownersync_notifier_digest_alerts_sum")
	})

	t.Run("writer logs each CRM write at debug", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(e.s.Opts.DataDir, "logs", "writer.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{recs[0].sf, recs[0].hs, recs[4].sf} {
			found := false
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, `"msg":"crm write"`) && strings.Contains(line, `"record_id":"`+id+`"`) &&
					strings.Contains(line, `"level":"DEBUG"`) && strings.Contains(line, `"result":`) && strings.Contains(line, `"trace_id":`) {
					found = true
				}
			}
			if !found {
				t.Errorf("no debug line \"crm write\" with record_id %s, result and trace_id in the writer's log", id)
			}
		}
	})

	spansTest(t, sink, map[string]*crmsim.Log{"salesforce": e.sf.Log(), "hubspot": e.hs.Log()})
	logLinesTest(t, e.s.Opts.DataDir, sink)

	// The consumer gauges are sampled from consumer info when scraped: with a HubSpot write held
	// by the sandbox, the writer's platform consumer has its message in flight.
	t.Run("consumer gauges while a write is held", func(t *testing.T) {
		e.hs.Faults().Add(crmsim.Rule{Name: "slow", Method: "POST", Path: "/crm/v3/objects/contacts/batch/update", Action: crmsim.ActionLatency,
			Latency: 5 * time.Second, Count: 1})
		held := recs[2]
		held.owner = people[0].platform
		post([]rec{held}, "tel-held", time.Now(), "")
		cons, err := js.Consumer(ctx, streams.Platform, "writer-platform-owners")
		if err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 10*time.Second, "the held change in flight", func() (bool, string) {
			info, err := cons.Info(ctx)
			if err != nil {
				return false, err.Error()
			}
			return info.NumAckPending == 1, fmt.Sprintf("ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		})
		m := metrics{"writer": scrape(t, e.s.URLs["writer-internal"])}
		got, _ := m.sum("ownersync_consumer_ack_pending_messages", map[string]string{"consumer": "writer-platform-owners", "stream": streams.Platform})
		if got != 1 {
			t.Errorf("writer-platform-owners ack pending = %g while one change is held, want 1:\n%s", got, m.series("ownersync_consumer_ack_pending_messages"))
		}
	})
}

// spansTest checks the exported traces; logs are the sandboxes' request logs (each request keeps
// its traceparent header).
func spansTest(t *testing.T, sink *otlpsink.Sink, logs map[string]*crmsim.Log) {
	t.Run("traces", func(t *testing.T) {
		var spans []otlpsink.Span
		harness.EventuallyState(t, 20*time.Second, "spans exported", func() (bool, string) {
			spans = sink.Spans()
			for _, s := range spans {
				if s.Name == "sync users" && s.Attributes["ownersync.sync.trigger"] == "api" {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d spans", len(spans))
		})
		byTrace := map[string][]otlpsink.Span{}
		byID := map[string]otlpsink.Span{}
		for _, s := range spans {
			byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
			byID[s.SpanID] = s
		}
		names := func(trace string) []string {
			var out []string
			for _, s := range byTrace[trace] {
				out = append(out, s.Service+":"+s.Name)
			}
			sort.Strings(out)
			return out
		}

		// Platform change → CRM write: the traceparent's trace holds ingress's server span, its
		// publish, and the writer's handling, whose span records the batch trace; the batch span
		// links back to it and holds the CRM call.
		t.Run("platform change to CRM write", func(t *testing.T) {
			tr := byTrace[traceparentTrace]
			has := func(svc, name string) bool {
				for _, s := range tr {
					if s.Service == svc && s.Name == name {
						return true
					}
				}
				return false
			}
			if !has("ingress", "POST /v1/platform/events") || !has("ingress", "publish platform.owner.changed."+tenantID) ||
				!has("writer", "process platform.owner.changed."+tenantID) {
				t.Fatalf("the traceparent's trace lacks the ingress request, publish or writer handling: %v", names(traceparentTrace))
			}
			linked := 0
			for _, s := range tr {
				bt := s.Attributes["ownersync.batch.trace_id"]
				if bt == "" {
					continue
				}
				for _, b := range byTrace[bt] {
					if !strings.HasPrefix(b.Name, "crm write batch ") || !contains(b.Links, s.TraceID+"/"+s.SpanID) {
						continue
					}
					linked++
					calls := 0
					for _, c := range byTrace[bt] {
						if c.ParentSpanID == b.SpanID && c.Kind == 3 /* client */ && c.Attributes["http.request.method"] != "" {
							calls++
						}
					}
					if calls == 0 {
						t.Errorf("batch span %s has no CRM call under it: %v", b.Name, names(bt))
					}
				}
			}
			if linked < 2 {
				t.Errorf("%d batch spans link back to the platform change's spans, want one per CRM; trace: %v", linked, names(traceparentTrace))
			}
			mongo := 0
			for _, s := range tr {
				if s.Attributes["db.system"] == "mongodb" {
					mongo++
				}
			}
			if mongo == 0 {
				t.Errorf("no MongoDB command span in the platform change's trace: %v", names(traceparentTrace))
			}
		})

		t.Run("webhook to owner.assign", func(t *testing.T) {
			found := false
			for trace, ss := range byTrace {
				webhook, assign := false, false
				for _, s := range ss {
					if s.Service == "ingress" && s.Name == "POST /webhooks/hubspot" && s.ParentSpanID == "" {
						webhook = true
					}
					if s.Name == "publish "+streams.OwnerAssign(tenantID) {
						assign = true
					}
				}
				if webhook && assign {
					found = true
					t.Logf("webhook trace %s: %v", trace, names(trace))
					break
				}
			}
			if !found {
				t.Errorf("no trace from POST /webhooks/hubspot to publish %s", streams.OwnerAssign(tenantID))
			}
		})

		t.Run("sync users spans", func(t *testing.T) {
			var root otlpsink.Span
			for _, s := range spans {
				if s.Name == "sync users" && s.Attributes["ownersync.sync.trigger"] == "api" {
					root = s
				}
			}
			if root.ParentSpanID != "" {
				t.Errorf("the Sync Users span has a parent %s, want a root", root.ParentSpanID)
			}
			children := map[string]otlpsink.Span{}
			for _, s := range byTrace[root.TraceID] {
				if s.ParentSpanID == root.SpanID {
					children[s.Name] = s
				}
			}
			for _, prov := range []string{"salesforce", "hubspot"} {
				for _, phase := range []string{"pull", "match", "write"} {
					if _, ok := children["sync users "+phase+" "+prov]; !ok {
						t.Errorf("no child span sync users %s %s under the run: %v", phase, prov, names(root.TraceID))
					}
				}
				// Every request the CRM received in the run's trace during the pull (each page of
				// users, the token) is a span of its own under the pull phase.
				pull := children["sync users pull "+prov]
				spansUnderPull := map[string]bool{}
				for _, s := range byTrace[root.TraceID] {
					if s.ParentSpanID == pull.SpanID && s.Attributes["http.request.method"] != "" {
						spansUnderPull[s.SpanID] = true
					}
				}
				pages, requests := 0, 0
				for _, en := range logs[prov].Entries() {
					tp := strings.Split(en.Header.Get("Traceparent"), "-")
					if len(tp) != 4 || tp[1] != root.TraceID {
						continue
					}
					requests++
					if !spansUnderPull[tp[2]] {
						continue
					}
					if strings.HasPrefix(en.Path, "/crm/v3/owners") || strings.HasSuffix(en.Path, "/query") || strings.Contains(en.Path, "/query/") {
						pages++
					}
				}
				wantPages := 1
				if prov == "hubspot" {
					wantPages = 2 // active owners, then archived ones
				}
				if pages < wantPages || len(spansUnderPull) == 0 {
					t.Errorf("the %s pull: %d CRM page requests under its span (of %d requests in the run's trace, %d client spans under the pull), want at least %d: %v",
						prov, pages, requests, len(spansUnderPull), wantPages, names(root.TraceID))
				}
				t.Logf("%s pull: %d page requests, %d client spans under the pull span", prov, pages, len(spansUnderPull))
				for id := range spansUnderPull {
					seen := false
					for _, en := range logs[prov].Entries() {
						if strings.Contains(en.Header.Get("Traceparent"), "-"+id+"-") {
							seen = true
						}
					}
					if !seen {
						t.Errorf("the %s pull's client span %s reached no request of the sandbox", prov, id)
					}
				}
			}
		})
	})
}

// logLinesTest: every log line of a service about a message (logged within the trace of a
// consumer's "process" span) carries the message's tenant, provider and event id beside its trace
// id, and every line about a Sync Users run (within the run's span) its tenant and run id.
func logLinesTest(t *testing.T, dataDir string, sink *otlpsink.Sink) {
	t.Run("log lines name their message or run", func(t *testing.T) {
		byID := map[string]otlpsink.Span{}
		for _, s := range sink.Spans() {
			byID[s.SpanID] = s
		}
		// about returns the consumer or Sync Users span a span runs under, if any.
		about := func(id string) (otlpsink.Span, bool) {
			for range 100 {
				s, ok := byID[id]
				if !ok {
					return otlpsink.Span{}, false
				}
				if (s.Kind == 5 && strings.HasPrefix(s.Name, "process ")) || s.Name == "sync users" {
					return s, true
				}
				id = s.ParentSpanID
			}
			return otlpsink.Span{}, false
		}
		checked := map[string]int{}
		for _, svc := range []string{"ingress", "mapper", "writer", "notifier"} {
			b, err := os.ReadFile(filepath.Join(dataDir, "logs", svc+".log"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				var l map[string]any
				if json.Unmarshal([]byte(line), &l) != nil {
					continue
				}
				spanID, _ := l["span_id"].(string)
				owner, ok := about(spanID)
				if !ok {
					continue
				}
				want := []string{"tenant", "provider", "event_id"}
				if owner.Name == "sync users" {
					want = []string{"tenant", "run_id"}
				}
				for _, k := range want {
					if _, ok := l[k]; !ok {
						t.Errorf("%s: a line under %q lacks %s: %s", svc, owner.Name, k, line)
					}
				}
				checked[svc+" "+strings.Fields(owner.Name)[0]]++
			}
		}
		t.Logf("log lines checked: %v", checked)
		if checked["writer process"] == 0 || checked["mapper sync"] == 0 {
			t.Errorf("too few lines about messages or runs to check: %v", checked)
		}
	})
}
