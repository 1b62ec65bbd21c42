package scenarios

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sandbox"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

const globex = "globex"

func to18(t *testing.T, id15 string) string {
	t.Helper()
	id, err := sfid.To18(id15)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// second is a second tenant with its own sandboxes and platform. Its ids never look like the demo's:
// Salesforce ids contain "GX", HubSpot owner ids start with 8, contact ids with 99, platform users gx-.
type second struct {
	sb      *sandbox.Sandboxes
	p       *platformsim.Platform
	people  []person
	sfCont  []string
	hsCont  []string
	actorID string
}

const gxPeople, gxContacts = 10, 60

func startGlobex(t *testing.T, e *env) *second {
	t.Helper()
	ctx := context.Background()
	ingress := e.s.URLs["ingress"]
	g := &second{}
	sfSeed := sfsim.Seed{OrgID: to18(t, "00D5g000009GXob"), Users: []sfsim.SeedUser{{ID: to18(t, "0055g00000GX999"),
		Username: "integration@globex.example", Email: "integration@globex.example", LastName: "Integration"}}}
	hsSeed := hssim.Seed{PortalID: 4499999}
	for i := range gxPeople {
		email := fmt.Sprintf("rep%02d@globex.example", i)
		p := person{platform: fmt.Sprintf("gx-rep%02d", i), sf: to18(t, fmt.Sprintf("0055g00000GX%03d", i)), hs: fmt.Sprintf("8123450%02d", i)}
		g.people = append(g.people, p)
		sfSeed.Users = append(sfSeed.Users, sfsim.SeedUser{ID: p.sf, Username: email + ".sf", Email: email, FirstName: "Rep", LastName: fmt.Sprint(i)})
		hsSeed.Owners = append(hsSeed.Owners, hssim.Owner{ID: p.hs, Email: email, FirstName: "Rep", LastName: fmt.Sprint(i), UserID: int64(8800000 + i)})
	}
	for i := range gxContacts {
		email := fmt.Sprintf("gx-customer%03d@example.com", i)
		id := to18(t, fmt.Sprintf("0035g00000GX%03d", i))
		g.sfCont = append(g.sfCont, id)
		sfSeed.Contacts = append(sfSeed.Contacts, sfsim.SeedRecord{ID: id, Email: email, LastName: fmt.Sprint(i), Owner: "integration@globex.example"})
		hid := fmt.Sprintf("99%07d", i)
		g.hsCont = append(g.hsCont, hid)
		hsSeed.Contacts = append(hsSeed.Contacts, hssim.SeedContact{ID: hid, Email: email, LastName: fmt.Sprint(i), Owner: g.people[0].hs})
	}
	g.actorID = g.people[0].sf
	sb, err := sandbox.Start(sandbox.File{
		Salesforce: &sandbox.Salesforce{Seed: sfSeed, ClientID: "globex-app", ClientSecret: "ownersync-demo-secret",
			RunAsUsername: "integration@globex.example",
			Outbound:      sfsim.OutboundConfig{URL: ingress + "/webhooks/salesforce", BaseDelay: 500 * time.Millisecond, MaxDelay: 5 * time.Second}},
		HubSpot: &sandbox.HubSpot{Seed: hsSeed, AppID: 3100456, AccessTokens: []string{"pat-na1-ownersync-demo"},
			ClientSecret: "ownersync-demo-client-secret",
			Webhooks:     hssim.WebhookConfig{TargetURL: ingress + "/webhooks/hubspot", BaseDelay: 500 * time.Millisecond}},
	}, sandbox.Options{SalesforceAddr: "127.0.0.1:0", HubSpotAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	g.sb = sb
	t.Cleanup(func() { sb.Salesforce.Close(); sb.HubSpot.Close() })

	// The tenant: the demo's configuration with globex's ids and URLs.
	cfg := e.tenantConfig()
	cfg["id"], cfg["name"], cfg["report_recipients"] = globex, "Globex (second tenant)", []string{"ops@globex.example"}
	sf := cfg["salesforce"].(map[string]any)
	sf["org_id"], sf["instance_url"], sf["api_base_url"], sf["fallback_owner_id"] = sfSeed.OrgID, sb.SalesforceURL, sb.SalesforceURL, sfSeed.Users[0].ID
	auth := sf["auth"].(map[string]any)
	auth["client_id"], auth["token_url"] = "globex-app", sb.SalesforceURL+"/services/oauth2/token"
	hs := cfg["hubspot"].(map[string]any)
	hs["portal_id"], hs["api_base_url"], hs["fallback_owner_id"] = hsSeed.PortalID, sb.HubSpotURL, g.people[0].hs
	var saved struct {
		SharedKey *struct {
			Key string `json:"key"`
		} `json:"salesforce_shared_key"`
	}
	if st := e.api("PUT", "/v1/tenants/"+globex, cfg, &saved); st/100 != 2 {
		t.Fatalf("PUT tenant globex: HTTP %d", st)
	}
	// A new Salesforce connection gets an Outbound Message key (issue 13 item 3), shown once: the
	// org's Outbound Messages carry it from now on.
	if saved.SharedKey == nil {
		t.Fatal("PUT of a new Salesforce connection answered no shared key")
	}
	sb.Salesforce.SetOutboundURL(ingress+"/webhooks/salesforce", saved.SharedKey.Key)

	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: e.s.NATS.URL(), Name: "platformsim-globex"})
	if err != nil {
		t.Fatal(err)
	}
	g.p = platformsim.New(globex, bus, nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.p.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done; bus.Close() })
	for i, p := range g.people {
		if err := g.p.PutUser(ctx, platformsim.User{ID: p.platform, Email: fmt.Sprintf("rep%02d@globex.example", i), FirstName: "Rep",
			LastName: fmt.Sprint(i), Status: "active", Kind: "user", TeamID: "team-gx"}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until mapper stored globex's users, then Sync Users for globex.
	harness.EventuallyState(t, 20*time.Second, "mapper stored globex's platform users", func() (bool, string) {
		var ov overview
		e.api("GET", "/v1/tenants/"+globex+"/users/overview", nil, &ov)
		return ov.of("salesforce").PlatformUsers == gxPeople, fmt.Sprintf("%+v", ov.Providers)
	})
	var r run
	if st := e.api("POST", "/v1/tenants/"+globex+"/sync-users", nil, &r); st/100 != 2 {
		t.Fatalf("globex sync-users: HTTP %d", st)
	}
	harness.EventuallyState(t, 30*time.Second, "globex Sync Users mapped everyone", func() (bool, string) {
		var pg mappingPage
		e.api("GET", "/v1/tenants/"+globex+"/mappings?"+url.Values{"status": {"synced"}, "per_page": {"200"}}.Encode(), nil, &pg)
		return pg.Total == 2*gxPeople, fmt.Sprintf("%d synced mappings", pg.Total)
	})
	return g
}

// TestFaultsTwoTenantsUnderLoad runs owner changes in both directions for two tenants at once;
// nothing of one tenant reaches the other's CRMs or platform, and both ledgers close.
func TestFaultsTwoTenantsUnderLoad(t *testing.T) {
	e := start(t)
	g := startGlobex(t, e)
	ctx := context.Background()
	acme := e.mappedPeople()

	// acme: half platform → CRM on new contacts, half Salesforce → platform.
	const n = 60
	acmeSF := map[string]string{}   // platform → Salesforce: contact → SF owner
	acmePlat := map[string]string{} // Salesforce → platform: contact → platform owner
	var acmeRecs []platformsim.Record
	var acmeSet [][2]string
	for i := range n {
		c, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: fmt.Sprintf("acme-load%03d@example.org", i), LastName: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		p := acme[i%len(acme)]
		if i%2 == 0 {
			acmeSF[c.ID] = p.sf
			acmeRecs = append(acmeRecs, platformsim.Record{ID: "pr-load-" + c.ID, Type: "contact", Email: c.Email, OwnerUserID: p.platform,
				CRMRecordIDs: map[string]string{"salesforce": c.ID}})
		} else {
			acmePlat[c.ID] = p.platform
			acmeSet = append(acmeSet, [2]string{c.ID, p.sf})
		}
	}
	gxSF, gxPlat := map[string]string{}, map[string]string{}
	var gxRecs []platformsim.Record
	var gxSet [][2]string
	for i, id := range g.sfCont {
		p := g.people[(i+1)%len(g.people)]
		if i%2 == 0 {
			gxSF[id] = p.sf
			gxRecs = append(gxRecs, platformsim.Record{ID: "gxr-" + id, Type: "contact", OwnerUserID: p.platform,
				Email: fmt.Sprintf("gx-customer%03d@example.com", i), CRMRecordIDs: map[string]string{"salesforce": id}})
		} else {
			gxPlat[id] = p.platform
			gxSet = append(gxSet, [2]string{id, p.sf})
		}
	}
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	put := func(p *platformsim.Platform, recs []platformsim.Record) {
		defer wg.Done()
		for _, r := range recs {
			if err := p.PutRecord(ctx, r); err != nil {
				errs <- err
				return
			}
		}
	}
	set := func(org *sfsim.Org, pairs [][2]string, actor string) {
		defer wg.Done()
		for _, pr := range pairs {
			if err := org.SetOwner(pr[0], pr[1], actor); err != nil {
				errs <- err
				return
			}
		}
	}
	wg.Add(4)
	go put(e.p, acmeRecs)
	go put(g.p, gxRecs)
	go set(e.sf, acmeSet, e.sfUser("ada.lovelace@acme.example.sf").ID)
	go set(g.sb.Salesforce, gxSet, g.actorID)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sfOwner := func(org *sfsim.Org) func(string) string {
		return func(id string) string { r, _ := org.Record(id); return r.OwnerID }
	}
	writes := func(org *sfsim.Org) func(string) int {
		return func(id string) int { return ownerWrites(org.Log(), id) }
	}
	var l1, l2, l3, l4 ledger
	harness.EventuallyState(t, 60*time.Second, "both tenants' changes applied", func() (bool, string) {
		l1 = e.crmLedger(tenantID, "salesforce", acmeSF, sfOwner(e.sf), writes(e.sf))
		l2 = e.crmLedger(globex, "salesforce", gxSF, sfOwner(g.sb.Salesforce), writes(g.sb.Salesforce))
		l3 = platformLedger(e.p, "salesforce", acmePlat)
		l4 = platformLedger(g.p, "salesforce", gxPlat)
		return len(l1.missing)+len(l2.missing)+len(l3.missing)+len(l4.missing) == 0,
			fmt.Sprintf("acme→SF %s; globex→SF %s; SF→acme %s; SF→globex %s", l1, l2, l3, l4)
	})
	t.Logf("%d changes over two tenants applied in %s", len(acmeSF)+len(acmePlat)+len(gxSF)+len(gxPlat), time.Since(began).Round(time.Millisecond))
	for name, l := range map[string]ledger{"acme→SF": l1, "globex→SF": l2, "SF→acme": l3, "SF→globex": l4} {
		if !l.ok() {
			t.Errorf("%s ledger not closed: %s", name, l)
		}
	}

	// Isolation: no request to one tenant's CRMs names the other's ids; no platform sees the other's.
	leak := func(name string, log *crmsim.Log, foreign ...string) {
		for _, en := range log.Entries() {
			s := en.Path + "?" + en.Query + " " + string(en.Body)
			for _, f := range foreign {
				if strings.Contains(s, f) {
					t.Errorf("%s received %s %s naming %q: %.200s", name, en.Method, en.Path, f, en.Body)
					return
				}
			}
		}
	}
	leak("acme's Salesforce", e.sf.Log(), "GX", "gx-")
	leak("acme's HubSpot", e.hs.Log(), "8123450", "gx-", "globex")
	leak("globex's Salesforce", g.sb.Salesforce.Log(), "0055g0000000", "0035g0000000", "acme")
	leak("globex's HubSpot", g.sb.HubSpot.Log(), "712345", "acme")
	for _, a := range e.p.Assignments() {
		if strings.HasPrefix(a.OwnerUserID, "gx-") || strings.Contains(a.CRMRecordID, "GX") {
			t.Errorf("acme's platform got globex's assignment %+v", a)
		}
	}
	for _, a := range g.p.Assignments() {
		if !strings.HasPrefix(a.OwnerUserID, "gx-") || !strings.Contains(a.CRMRecordID, "GX") {
			t.Errorf("globex's platform got a foreign assignment %+v", a)
		}
	}
	var pg mappingPage
	e.api("GET", "/v1/tenants/"+globex+"/mappings?per_page=200", nil, &pg)
	for _, m := range pg.Items {
		if !strings.HasPrefix(m.PlatformUserID, "gx-") {
			t.Errorf("globex lists a foreign mapping %+v", m)
		}
	}
}
