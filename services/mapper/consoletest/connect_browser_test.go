package consoletest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/libs/webhookstats"
	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// TestBrowserConnectBothCRMs connects HubSpot and Salesforce from the Connections page through the
// sandboxes' consent pages in Chromium; Connect Salesforce shows the Outbound Message URL with its
// generated key once (issue 13 item 3: only the digest is stored), downloads the Salesforce package
// with that key and checks its files; a reload shows only that a key is set; Rotate key shows the
// new URL once (Copy button) and until when the previous key is accepted. It receives a first
// HubSpot webhook and shows it as "last webhook received", tests the connection and disconnects
// Salesforce (revoked at the sandbox).
//
// The webhook's receiver stands in for ingress (the mapper module cannot start ingress): it counts
// the delivery with the same webhookstats.Recorder ingress uses; ingress's own recording is
// TestReceiptsNameTheTenant. Which keys ingress accepts after the rotation is checked here on the
// stored digests with the function ingress verifies with; ingress's handler test on the same
// digests is TestOutboundMessageSharedKey (old key during the overlap 200, wrong key 403).
func TestBrowserConnectBothCRMs(t *testing.T) {
	if browserCtx == nil {
		t.Skip(noBrowser)
	}
	var rec *webhookstats.Recorder
	delivered := make(chan struct{}, 16)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/webhooks/hubspot" && rec != nil {
			rec.Accepted("acme", "hubspot")
			delivered <- struct{}{}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)

	acct, err := hssim.New(hssim.Config{ClientID: "hs-app", ClientSecret: "hs-secret", AppID: 3100456, Webhooks: hssim.WebhookConfig{BaseDelay: 10 * time.Millisecond},
		App: hssim.AppConfig{DeveloperAPIKey: "dev-key"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Load(hssim.Seed{Owners: []hssim.Owner{{ID: "71", Email: "ada@example.com"}, {ID: "72", Email: "bob@example.com"}},
		Contacts: []hssim.SeedContact{{ID: "501", Email: "c@example.org", Owner: "71"}}}); err != nil {
		t.Fatal(err)
	}
	hsURL, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	org, err := sfsim.New(sfsim.Config{ClientID: "sf-app", ClientSecret: "sf-secret", WebServer: sfsim.WebServerConfig{RequirePKCE: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(sfsim.Seed{Users: []sfsim.SeedUser{{Username: "admin@acme.test", Email: "admin@acme.test", LastName: "Admin"}}}); err != nil {
		t.Fatal(err)
	}
	sfURL, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })

	var store *secretbox.Store
	var ts *tenantstore.Store
	env := consoletest.StartWith(t, mongoURI, nil, console.Config{}, func(c *console.Console, tstore *tenantstore.Store, db *mongo.Database, url string) {
		ts = tstore
		if err := mongodb.EnsureIndexes(context.Background(), db, append(append([]mongodb.Index{}, secretbox.Indexes...), connect.FlowIndexes...)); err != nil {
			t.Fatal(err)
		}
		kr, _ := secretbox.ParseKeyring(secretbox.NewKey("k1"))
		store = secretbox.NewStore(db, kr)
		rec = webhookstats.NewRecorder(db, nil)
		resolver := secretbox.Resolver(store, &secretref.Resolver{})
		svc := connect.New(connect.Config{AdminURL: url, IngressURL: hooks.URL, Flows: connect.NewFlows(db),
			HubSpot:    &connect.HubSpotApp{ClientID: "hs-app", ClientSecret: "hs-secret", AppID: 3100456, DeveloperAPIKey: "dev-key", AuthorizeURL: hsURL + "/oauth/authorize", APIBaseURL: hsURL},
			Salesforce: &connect.SalesforceApp{ClientID: "sf-app", ClientSecret: "sf-secret", SandboxOrigins: []string{sfURL}}},
			ts, store, crmconn.New(crmconn.Config{Secrets: resolver, Stored: store, AnyCRMHost: true, Timeout: 5 * time.Second}))
		c.WithConnections(console.Connections{Service: svc, Receipts: webhookstats.NewReader(db)})
	})
	b := tabOn(t, env)
	b.signIn(consoletest.AcmeToken)
	msgs := b.acceptDialogs(true)

	b.open("/admin/t/acme/connections")
	b.waitText("#conn-hubspot-receipt", "Nothing received")
	b.shot("connections")

	// HubSpot: the install page of the sandbox, then back.
	b.do(chromedp.Click(chromedp.ID("connect-hubspot")))
	b.waitText("#hs-scopes", "crm.objects.owners.read")
	b.shot("connect-hubspot-consent")
	b.do(chromedp.Click(chromedp.ID("hs-grant")))
	b.waitText(".flash", "HubSpot is connected.")
	b.waitText("#conn-hubspot-status", "connected")
	b.waitText("#conn-hubspot", "4412345")
	if subs := acct.Subscriptions(); len(subs) != 1 || subs[0].PropertyName != "hubspot_owner_id" {
		t.Fatalf("subscriptions after connect: %+v", subs)
	}

	// Salesforce through a My Domain (the sandbox's origin).
	b.do(chromedp.Click(chromedp.ID("sf-env-mydomain")), chromedp.SendKeys(chromedp.ID("my_domain"), sfURL), chromedp.Click(chromedp.ID("connect-salesforce")))
	b.waitFor("#sf-allow")
	b.do(chromedp.SendKeys(chromedp.ID("sf-username"), "admin@acme.test"))
	b.shot("connect-salesforce-consent")
	b.do(chromedp.Click(chromedp.ID("sf-allow")))
	b.waitText(".flash", "Salesforce is connected.")
	b.waitText("#conn-salesforce", org.OrgID())
	b.waitText("#sf-new-key", "shown this once")
	omURL, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("om-url").value`))
	if err != nil {
		t.Fatal(err)
	}
	key, ok := strings.CutPrefix(omURL, hooks.URL+"/webhooks/salesforce?key=")
	if !ok || len(key) < 22 {
		t.Fatalf("endpoint URL field %q", omURL)
	}
	acme := func() *tenant.SFConfig {
		tn, err := ts.Get(context.Background(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		return tn.Salesforce
	}
	if ref := acme().SharedKeyRef; ref != tenant.SharedKeyDigest(key) {
		t.Fatalf("stored shared key %q, want the digest of the key shown", ref)
	}
	if _, err := store.Get(context.Background(), "acme", connect.SalesforceSharedKey); err == nil {
		t.Fatal("the shared key is kept in the secret store")
	}
	b.shot("connect-salesforce-key-once")

	// The package, posted with the session like the download form (which carries the key).
	b64, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`fetch(document.getElementById("sf-package-form").action, {method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(document.getElementById("sf-package-form")))})
		.then(r => r.arrayBuffer()).then(b => { let s = ""; new Uint8Array(b).forEach(c => s += String.fromCharCode(c)); return btoa(s); })`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(b64)
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("package is not a zip: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "ownersync-salesforce/workflows/Contact.workflow" {
			rc, _ := f.Open()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(rc)
			rc.Close()
			if !strings.Contains(buf.String(), "<endpointUrl>"+omURL+"</endpointUrl>") || !strings.Contains(buf.String(), "<fields>OwnerId</fields>") {
				t.Errorf("Contact.workflow:\n%s", buf.String())
			}
		}
	}
	if strings.Join(names, ",") != "ownersync-salesforce/package.xml,ownersync-salesforce/workflows/Contact.workflow,ownersync-salesforce/workflows/Lead.workflow,ownersync-salesforce/workflows/User.workflow,README.txt" {
		t.Fatalf("package files %v", names)
	}

	// Later views: only that a key is set and when it was made; never the key.
	b.open("/admin/t/acme/connections")
	b.waitText("#sf-key-state", "set, created")
	if html, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err != nil || strings.Contains(html, key) || strings.Contains(html, `id="om-url"`) {
		t.Fatalf("a later view shows the key (%v)", err)
	}

	// Rotate key: asked first, the new URL once with its Copy button, the old key accepted until the
	// overlap ends.
	b.do(chromedp.Click(chromedp.ID("rotate-key")))
	select {
	case m := <-msgs:
		if !strings.Contains(m, "Rotate the shared key") {
			t.Errorf("confirm message %q", m)
		}
	case <-b.ctx.Done():
		t.Fatal("no confirmation was asked before rotating")
	}
	b.waitText("#sf-new-key", "shown this once")
	b.waitText("#sf-key-overlap", "The previous key is accepted until")
	b.waitFor("#om-copy")
	b.shot("connections-rotated-key")
	newURL, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("om-url").value`))
	if err != nil {
		t.Fatal(err)
	}
	newKey, ok := strings.CutPrefix(newURL, hooks.URL+"/webhooks/salesforce?key=")
	if !ok || newKey == key {
		t.Fatalf("endpoint URL after rotation %q", newURL)
	}
	sf := acme()
	now := time.Now()
	accepted := func(k string) bool {
		return tenant.MatchesSharedKeyDigest(sf.SharedKeyRef, k) || sf.PreviousKeyValid(now) && tenant.MatchesSharedKeyDigest(sf.PreviousSharedKeyRef, k)
	}
	if !accepted(newKey) || !accepted(key) || accepted("wrong-"+key) || !sf.PreviousSharedKeyUntil.After(now.Add(time.Hour)) {
		t.Fatalf("after rotation: %+v", sf)
	}
	b.open("/admin/t/acme/connections")
	b.waitText("#sf-key-previous", "accepted until")

	// A first HubSpot webhook: an owner change in the sandbox goes to the subscribed target.
	if err := acct.SetContactOwner("501", "72", 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-delivered:
	case <-b.ctx.Done():
		t.Fatal("no webhook delivered")
	}
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.open("/admin/t/acme/connections")
	b.waitText("#conn-hubspot-today", "1")
	b.waitText("#conn-hubspot-last", "UTC")

	// Test connection.
	b.do(chromedp.Click(chromedp.ID("test-hubspot")))
	b.waitText("#conn-hubspot-test", "The connection works.")
	b.waitText("#conn-hubspot-test", "Owners")
	b.shot("connections-connected")

	// Disconnect Salesforce: asked first, revoked at the sandbox.
	sfRT, _ := store.Get(context.Background(), "acme", connect.SalesforceRefreshToken)
	b.do(chromedp.Click(chromedp.ID("disconnect-salesforce")))
	select {
	case m := <-msgs:
		if !strings.Contains(m, "Disconnect Salesforce") {
			t.Errorf("confirm message %q", m)
		}
	case <-b.ctx.Done():
		t.Fatal("no confirmation was asked")
	}
	b.waitText(".flash", "Disconnected. The token was revoked at the CRM.")
	b.waitText("#conn-salesforce-status", "not connected")
	if !org.RefreshTokenRevoked(sfRT.Reveal()) {
		t.Fatal("the sandbox did not see the revocation")
	}

	// 375 px: the page still works.
	b.viewport(375, 800, true)
	b.open("/admin/t/acme/connections")
	b.waitFor("#connect-salesforce")
	b.shot("connections-phone")
}

// tabOn opens a laptop-width tab on a console the test started itself.
func tabOn(t *testing.T, env *consoletest.Env) *tab {
	t.Helper()
	tctx, cancelTab := chromedp.NewContext(browserCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tctx, 90*time.Second)
	t.Cleanup(cancel)
	b := &tab{t: t, ctx: ctx, env: env}
	b.viewport(1280, 800, false)
	return b
}
