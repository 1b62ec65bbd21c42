package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// alerts returns every Alert published for a tenant so far.
func (e *env) alerts(tenant string) []*ownersyncv1.Alert {
	e.t.Helper()
	nc, err := nats.Connect(e.s.URLs["nats"])
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, streams.Sync, jetstream.OrderedConsumerConfig{FilterSubjects: []string{streams.Alert(tenant)}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*ownersyncv1.Alert
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var a ownersyncv1.Alert
			if err := proto.Unmarshal(m.Data(), &a); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, &a)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			e.t.Fatal(err)
		}
		if n == 0 {
			return out
		}
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consolePage signs in to the console with the operator token and returns the body of path.
func (e *env) consolePage(path string) string {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hc := &http.Client{Jar: jar}
	get := func(path string) string {
		resp, err := hc.Get(e.mapperURL + path)
		if err != nil {
			e.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := csrfField.FindStringSubmatch(get("/admin/signin"))
	if m == nil {
		e.t.Fatal("the sign-in form has no csrf field")
	}
	resp, err := hc.PostForm(e.mapperURL+"/admin/signin", url.Values{"csrf": {m[1]}, "token": {e.token}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return get(path)
}

// deadURL is a loopback URL nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// TestInactiveFallbackOwner is issue 14 item 1 on the dev stack: with the Salesforce fallback user
// deactivated and the HubSpot fallback owner archived, both known to mapper, platform changes for
// an owner without a mapping are not written to either CRM. Each is recorded as failed with the
// reason "fallback owner inactive", one alert is raised per provider (not per record), and the
// overview says the fallback owner is inactive.
func TestInactiveFallbackOwner(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	sfFallback := e.sf.IntegrationUserID()
	hsFallback := fmt.Sprint(e.tenantConfig()["hubspot"].(map[string]any)["fallback_owner_id"])
	if _, err := e.sf.UpdateUser(sfFallback, func(u *sfsim.User) { u.IsActive = false }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.hs.ArchiveOwner(hsFallback); err != nil {
		t.Fatal(err)
	}
	e.syncUsers() // HubSpot has no user webhooks: the pull tells mapper
	ov := e.overview()
	for _, p := range []string{"salesforce", "hubspot"} {
		if po := ov.of(p); po.FallbackOwnerProblem != "inactive" {
			t.Errorf("%s overview: fallback owner %q problem %q, want inactive", p, po.FallbackOwnerID, po.FallbackOwnerProblem)
		}
	}
	page := e.consolePage("/admin/t/" + tenantID + "/")
	for _, p := range []string{"salesforce", "hubspot"} {
		if !strings.Contains(page, `id="fallback-`+p+`"`) {
			t.Errorf("the console overview does not warn about the %s fallback owner:\n%s", p, page)
		}
	}
	before := len(e.alerts(tenantID))

	const n = 3
	type rec struct{ sf, hs string }
	recs := make([]rec, n)
	e.sf.Log().Reset()
	e.hs.Log().Reset()
	for i := range n {
		email := fmt.Sprintf("fallback%02d@example.org", i)
		c, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: email, LastName: "Fallback"})
		if err != nil {
			t.Fatal(err)
		}
		h, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": email, "lastname": "Fallback"}})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec{c.ID, h.ID}
		if err := e.p.PutRecord(ctx, platformsim.Record{ID: fmt.Sprintf("pr-fallback-%02d", i), Type: "contact", Email: email,
			OwnerUserID: "pu-platform-only", CRMRecordIDs: map[string]string{"salesforce": c.ID, "hubspot": h.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	failed := func(provider, id string) func() (bool, string) {
		return func() (bool, string) {
			h := e.history(provider, "contact", id)
			for _, en := range h {
				if en.Outcome == "failed" && strings.HasPrefix(en.Reason, "fallback owner inactive") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", h)
		}
	}
	for _, r := range recs {
		harness.EventuallyState(t, 30*time.Second, "salesforce "+r.sf+" recorded failed: fallback owner inactive", failed("salesforce", r.sf))
		harness.EventuallyState(t, 30*time.Second, "hubspot "+r.hs+" recorded failed: fallback owner inactive", failed("hubspot", r.hs))
	}
	for _, r := range recs {
		if n := ownerWrites(e.sf.Log(), r.sf); n != 0 {
			t.Errorf("%d Salesforce owner writes for %s, want none", n, r.sf)
		}
		if n := ownerWrites(e.hs.Log(), r.hs); n != 0 {
			t.Errorf("%d HubSpot owner writes for %s, want none", n, r.hs)
		}
	}
	per := map[ownersyncv1.Provider]int{}
	for _, a := range e.alerts(tenantID)[before:] {
		t.Logf("alert %s %s: %s", a.GetProvider(), a.GetKind(), a.GetSummary())
		per[a.GetProvider()]++
	}
	if per[ownersyncv1.Provider_PROVIDER_SALESFORCE] != 1 || per[ownersyncv1.Provider_PROVIDER_HUBSPOT] != 1 {
		t.Errorf("alerts per provider = %v, want one for each", per)
	}
}

// TestOwnersTheWriterDoesNotKnow is issue 14 item 5 on the dev stack: CRM owner changes naming a
// CRM user nobody maps to come out as the directory says — a HubSpot QUEUE owner
// unassigned_queue, an archived HubSpot owner and an inactive Salesforce user
// unassigned_inactive — not unassigned_no_mapping. The archived and inactive owners are named by
// changes whose delivery was held while the owner was deactivated, as a CRM's retries do.
func TestOwnersTheWriterDoesNotKnow(t *testing.T) {
	e := start(t)
	const hsQueue, hsOnly = "71234605", "71234606"
	outcome := func(crmRecordID, want string) func() (bool, string) {
		return func() (bool, string) {
			as := assignmentsFor(e.p, crmRecordID)
			for _, a := range as {
				if a.Outcome == "OWNER_ASSIGN_OUTCOME_"+strings.ToUpper(want) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%+v", as)
		}
	}

	t.Run("HubSpot queue owner", func(t *testing.T) {
		h, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": "queued@example.org", "lastname": "Queued"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.hs.SetContactOwner(h.ID, hsQueue, 0); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 30*time.Second, "contact "+h.ID+" unassigned_queue", outcome(h.ID, "unassigned_queue"))
	})

	t.Run("archived HubSpot owner", func(t *testing.T) {
		h, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": "archived-owner@example.org", "lastname": "Archived"}})
		if err != nil {
			t.Fatal(err)
		}
		target := e.s.URLs["ingress"] + "/webhooks/hubspot"
		e.hs.SetWebhookTarget(deadURL(t))
		if err := e.hs.SetContactOwner(h.ID, hsOnly, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.hs.ArchiveOwner(hsOnly); err != nil {
			t.Fatal(err)
		}
		e.syncUsers()
		e.hs.SetWebhookTarget(target)
		harness.EventuallyState(t, 60*time.Second, "contact "+h.ID+" unassigned_inactive", outcome(h.ID, "unassigned_inactive"))
	})

	t.Run("inactive Salesforce user", func(t *testing.T) {
		only := e.sfUser("sf.only@acme.example.sf")
		c := e.sfContact("customer05@example.org")
		target := e.s.URLs["ingress"] + "/webhooks/salesforce"
		e.sf.SetOutboundURL(deadURL(t), "")
		if err := e.sf.SetOwner(c.ID, only.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.sf.UpdateUser(only.ID, func(u *sfsim.User) { u.IsActive = false }); err != nil {
			t.Fatal(err)
		}
		e.syncUsers()
		e.sf.SetOutboundURL(target, "")
		e.sf.FlushOutbound()
		harness.EventuallyState(t, 60*time.Second, "contact "+c.ID+" unassigned_inactive", outcome(c.ID, "unassigned_inactive"))
	})
}
