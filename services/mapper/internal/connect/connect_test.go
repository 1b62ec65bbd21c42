package connect_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

var stopAtRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// consent plays the admin on a sandbox consent page: it submits the page's form with decision.
func consent(t *testing.T, authorizeURL string, extra url.Values) *url.URL {
	t.Helper()
	u, _ := url.Parse(authorizeURL)
	form := u.Query()
	for k, v := range extra {
		form[k] = v
	}
	resp, err := stopAtRedirect.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("consent answered %d %v", resp.StatusCode, err)
	}
	return loc
}

// TestConnectBothCRMs runs both flows against the sandboxes: the tenant's connection is written
// with stored references, the tokens are stored encrypted and used by the CRM clients, HubSpot's
// webhook subscription is created (and the webhooks then reach the target), Test connection reads
// the CRMs and Disconnect revokes at them.
func TestConnectBothCRMs(t *testing.T) {
	const admin = "https://ownersync.example"
	const ingress = "https://hooks.ownersync.example"
	acct, hsURL, org, sfURL := sandboxes(t, admin, "dev-key", hssim.Seed{Owners: []hssim.Owner{{ID: "71", Email: "ada@example.com"}}},
		sfsim.Seed{Users: []sfsim.SeedUser{{Username: "admin@acme.test", Email: "admin@acme.test", LastName: "Admin"},
			{Username: "ada@acme.test", Email: "ada@example.com", LastName: "Lovelace"}}})

	conn := harness.MongoDB(t, "connect")
	ctx := context.Background()
	if err := mongodb.EnsureIndexes(ctx, conn.DB, append(append(append([]mongodb.Index{}, tenantstore.Indexes...), secretbox.Indexes...), connect.FlowIndexes...)); err != nil {
		t.Fatal(err)
	}
	ts := tenantstore.New(conn.DB, nil)
	if err := ts.Put(ctx, &tenant.Tenant{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Put(ctx, &tenant.Tenant{ID: "other", Name: "Other", HubSpot: &tenant.HSConfig{PortalID: 999, ClientSecretRef: "env:X",
		Auth: tenant.HSAuth{Kind: "private_app", TokenRef: "env:Y"}}}); err != nil {
		t.Fatal(err)
	}
	kr, _ := secretbox.ParseKeyring(secretbox.NewKey("k1"))
	store := secretbox.NewStore(conn.DB, kr)
	resolver := secretbox.Resolver(store, &secretref.Resolver{})
	clients := crmconn.New(crmconn.Config{Secrets: resolver, Stored: store, Timeout: 5 * time.Second, AnyCRMHost: true})
	svc := connect.New(connect.Config{AdminURL: admin, IngressURL: ingress, Flows: connect.NewFlows(conn.DB),
		HubSpot:    &connect.HubSpotApp{ClientID: "hs-app", ClientSecret: "hs-secret", AppID: 3100456, DeveloperAPIKey: "dev-key", AuthorizeURL: hsURL + "/oauth/authorize", APIBaseURL: hsURL},
		Salesforce: &connect.SalesforceApp{ClientID: "sf-app", ClientSecret: "sf-secret", SandboxOrigins: []string{sfURL}}}, ts, store, clients)

	// HubSpot.
	authURL, err := svc.StartHubSpot(ctx, "acme", "tenant:acme:t1", "session-1")
	if err != nil {
		t.Fatal(err)
	}
	cb := consent(t, authURL, url.Values{"decision": {"grant"}})
	if _, err := svc.Callback(ctx, connect.HubSpot, cb.Query().Get("state"), cb.Query().Get("code"), "", "another-session"); err != connect.ErrState {
		t.Fatalf("callback in another session: %v", err)
	}
	cb = consent(t, mustStart(t, func() (string, error) { return svc.StartHubSpot(ctx, "acme", "tenant:acme:t1", "session-1") }), url.Values{"decision": {"grant"}})
	if f, err := svc.Callback(ctx, connect.HubSpot, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1"); err != nil || f.Tenant != "acme" || f.SharedKey != "" {
		t.Fatalf("HubSpot callback: %+v %v", f, err)
	}
	// The state is spent.
	if _, err := svc.Callback(ctx, connect.HubSpot, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1"); err != connect.ErrState {
		t.Fatalf("replayed callback: %v", err)
	}
	tn, _ := ts.Get(ctx, "acme")
	hs := tn.HubSpot
	if hs == nil || !hs.Enabled || hs.PortalID != acct.PortalID() || hs.Auth.Kind != "oauth" || !secretbox.IsRef(hs.Auth.RefreshTokenRef) ||
		hs.ClientSecretRef != secretbox.Ref("acme", connect.HubSpotClientSecret) || hs.TimeZone != "UTC" || hs.UIDomain != "app.hubspot.com" || hs.Auth.ConnectedBy != "tenant:acme:t1" {
		t.Fatalf("HubSpot connection %+v", hs)
	}
	if subs := acct.Subscriptions(); len(subs) != 1 || subs[0].EventType != "contact.propertyChange" || subs[0].PropertyName != "hubspot_owner_id" {
		t.Fatalf("subscriptions %+v", subs)
	}
	if res := svc.Test(ctx, tn, connect.HubSpot); !res.OK || !hasFact(res, "Owners", "1") {
		t.Fatalf("HubSpot test %+v", res)
	}

	// Salesforce, with the sandbox as a My Domain.
	if _, err := svc.StartSalesforce(ctx, "acme", "tenant:acme:t1", "session-1", connect.EnvMyDomain, "https://evil.example"); err == nil {
		t.Fatal("a foreign My Domain was accepted")
	}
	authURL = mustStart(t, func() (string, error) {
		return svc.StartSalesforce(ctx, "acme", "tenant:acme:t1", "session-1", connect.EnvMyDomain, sfURL)
	})
	if q, _ := url.Parse(authURL); q.Query().Get("code_challenge") == "" || q.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("no PKCE in %s", authURL)
	}
	cb = consent(t, authURL, url.Values{"decision": {"allow"}, "username": {"admin@acme.test"}})
	finished, err := svc.Callback(ctx, connect.Salesforce, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1")
	if err != nil {
		t.Fatalf("Salesforce callback: %v", err)
	}
	tn, _ = ts.Get(ctx, "acme")
	sf := tn.Salesforce
	if sf == nil || !sf.Enabled || sf.OrgID != org.OrgID() || sf.InstanceURL != sfURL || sf.Auth.Flow != "web_server" ||
		sf.Auth.TokenURL != sfURL+"/services/oauth2/token" || sf.Auth.Username != "admin@acme.test" {
		t.Fatalf("Salesforce connection %+v", sf)
	}
	// One shared-key model (issue 13 item 3): Connect generates the key as the admin API does,
	// hands it back once, and stores only its digest — nothing in the secret store.
	if len(finished.SharedKey) < 22 || sf.SharedKeyRef != tenant.SharedKeyDigest(finished.SharedKey) || sf.SharedKeyCreatedAt.IsZero() {
		t.Fatalf("Connect Salesforce: key %q, stored %q created %v", finished.SharedKey, sf.SharedKeyRef, sf.SharedKeyCreatedAt)
	}
	if _, err := store.Get(ctx, "acme", connect.SalesforceSharedKey); err == nil {
		t.Fatal("the shared key is kept in the secret store")
	}
	if res := svc.Test(ctx, tn, connect.Salesforce); !res.OK || !hasFact(res, "Users", "2 (2 active)") {
		t.Fatalf("Salesforce test %+v", res)
	}
	if omURL := svc.OutboundURLWithKey(finished.SharedKey); omURL != ingress+"/webhooks/salesforce?key="+url.QueryEscape(finished.SharedKey) {
		t.Fatalf("OM URL %q", omURL)
	}
	// Connecting again keeps the key the org's Outbound Messages carry, and shows none.
	cb = consent(t, mustStart(t, func() (string, error) {
		return svc.StartSalesforce(ctx, "acme", "tenant:acme:t1", "session-1", connect.EnvMyDomain, sfURL)
	}), url.Values{"decision": {"allow"}, "username": {"admin@acme.test"}})
	if again, err := svc.Callback(ctx, connect.Salesforce, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1"); err != nil || again.SharedKey != "" {
		t.Fatalf("reconnect: %+v %v", again, err)
	}
	if tn, _ = ts.Get(ctx, "acme"); tn.Salesforce.SharedKeyRef != tenant.SharedKeyDigest(finished.SharedKey) {
		t.Fatalf("reconnect changed the key: %q", tn.Salesforce.SharedKeyRef)
	}

	// Denied consent changes nothing.
	cb = consent(t, mustStart(t, func() (string, error) { return svc.StartHubSpot(ctx, "acme", "a", "session-1") }), url.Values{"decision": {"deny"}})
	if _, err := svc.Callback(ctx, connect.HubSpot, cb.Query().Get("state"), cb.Query().Get("code"), cb.Query().Get("error"), "session-1"); err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("denied: %v", err)
	}

	// Disconnect revokes at both CRMs and removes the stored refresh tokens.
	hsRT, _ := store.Get(ctx, "acme", connect.HubSpotRefreshToken)
	sfRT, _ := store.Get(ctx, "acme", connect.SalesforceRefreshToken)
	for _, p := range []string{connect.HubSpot, connect.Salesforce} {
		if revoked, err := svc.Disconnect(ctx, "acme", p); err != nil || !revoked {
			t.Fatalf("disconnect %s: %v %v", p, revoked, err)
		}
	}
	if !acct.RefreshTokenRevoked(hsRT.Reveal()) || !org.RefreshTokenRevoked(sfRT.Reveal()) {
		t.Fatal("the CRMs did not see the revocation")
	}
	tn, _ = ts.Get(ctx, "acme")
	if tn.HubSpot.Enabled || tn.Salesforce.Enabled {
		t.Fatal("still enabled after disconnect")
	}
	if _, err := store.Get(ctx, "acme", connect.HubSpotRefreshToken); err == nil {
		t.Fatal("refresh token still stored")
	}
	// The other tenant's operator-set connection cannot be disconnected from here.
	if _, err := svc.Disconnect(ctx, "other", connect.HubSpot); err == nil {
		t.Fatal("disconnected an operator-set connection")
	}
}

// sandboxes starts a HubSpot account and a Salesforce org whose apps redirect to admin's callbacks
// (PKCE required), seeded with hs and sf.
func sandboxes(t *testing.T, admin, developerKey string, hs hssim.Seed, sf sfsim.Seed) (*hssim.Account, string, *sfsim.Org, string) {
	t.Helper()
	acct, err := hssim.New(hssim.Config{ClientID: "hs-app", ClientSecret: "hs-secret", AppID: 3100456,
		App: hssim.AppConfig{RedirectURIs: []string{admin + "/admin/connect/hubspot/callback"}, DeveloperAPIKey: developerKey}})
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Load(hs); err != nil {
		t.Fatal(err)
	}
	hsURL, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	org, err := sfsim.New(sfsim.Config{ClientID: "sf-app", ClientSecret: "sf-secret",
		WebServer: sfsim.WebServerConfig{RedirectURIs: []string{admin + "/admin/connect/salesforce/callback"}, RequirePKCE: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(sf); err != nil {
		t.Fatal(err)
	}
	sfURL, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	return acct, hsURL, org, sfURL
}

func mustStart(t *testing.T, f func() (string, error)) string {
	t.Helper()
	u, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func hasFact(r connect.TestResult, label, value string) bool {
	for _, f := range r.Facts {
		if f.Label == label && f.Value == value {
			return true
		}
	}
	return false
}

// TestSalesforcePackageContents unzips the package and checks package.xml and every workflow: one
// Outbound Message per object with exactly the fields the ingress reads, the keyed endpoint, the
// sending user, and an active rule that sends it on owner (or user) changes.
func TestSalesforcePackageContents(t *testing.T) {
	tn := &tenant.Tenant{ID: "acme", Salesforce: &tenant.SFConfig{OrgID: "00D5g000004XyZaEAK", Settings: tenant.Settings{ObjectModules: []string{"contact", "lead"}},
		Auth: tenant.SFAuth{Username: "admin@acme.test"}}}
	const endpoint = "https://hooks.ownersync.example/webhooks/salesforce?key=k3y&x=1"
	z, err := connect.SalesforcePackage(tn, endpoint, "62.0")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = b
		names = append(names, f.Name)
	}
	sort.Strings(names)
	want := []string{"README.txt", "ownersync-salesforce/package.xml", "ownersync-salesforce/workflows/Contact.workflow",
		"ownersync-salesforce/workflows/Lead.workflow", "ownersync-salesforce/workflows/User.workflow"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("files %v, want %v", names, want)
	}
	var pkg struct {
		XMLName xml.Name `xml:"http://soap.sforce.com/2006/04/metadata Package"`
		Types   []struct {
			Members []string `xml:"members"`
			Name    string   `xml:"name"`
		} `xml:"types"`
		Version string `xml:"version"`
	}
	if err := xml.Unmarshal(files["ownersync-salesforce/package.xml"], &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Version != "62.0" || len(pkg.Types) != 1 || pkg.Types[0].Name != "Workflow" || strings.Join(pkg.Types[0].Members, ",") != "Contact,Lead,User" {
		t.Fatalf("package.xml %+v", pkg)
	}
	// What services/ingress/internal/webhook/salesforce.go reads of each object.
	ingressReads := map[string][]string{
		"Contact": {"Email", "Id", "LastModifiedById", "LastModifiedDate", "OwnerId"},
		"Lead":    {"Email", "Id", "LastModifiedById", "LastModifiedDate", "OwnerId"},
		"User":    {"Email", "FirstName", "Id", "IsActive", "LastModifiedDate", "LastName", "UserType", "Username"},
	}
	for obj, fields := range ingressReads {
		var wf struct {
			XMLName  xml.Name `xml:"http://soap.sforce.com/2006/04/metadata Workflow"`
			Outbound []struct {
				FullName         string   `xml:"fullName"`
				EndpointURL      string   `xml:"endpointUrl"`
				IntegrationUser  string   `xml:"integrationUser"`
				Fields           []string `xml:"fields"`
				IncludeSessionID bool     `xml:"includeSessionId"`
			} `xml:"outboundMessages"`
			Rules []struct {
				FullName string `xml:"fullName"`
				Active   bool   `xml:"active"`
				Formula  string `xml:"formula"`
				Trigger  string `xml:"triggerType"`
				Actions  []struct {
					Name string `xml:"name"`
					Type string `xml:"type"`
				} `xml:"actions"`
			} `xml:"rules"`
		}
		raw := files["ownersync-salesforce/workflows/"+obj+".workflow"]
		if err := xml.Unmarshal(raw, &wf); err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		if !bytes.Contains(raw, []byte("<endpointUrl>https://hooks.ownersync.example/webhooks/salesforce?key=k3y&amp;x=1</endpointUrl>")) {
			t.Errorf("%s: endpoint not escaped or not the keyed URL:\n%s", obj, raw)
		}
		if len(wf.Outbound) != 1 || len(wf.Rules) != 1 {
			t.Fatalf("%s: %d messages, %d rules", obj, len(wf.Outbound), len(wf.Rules))
		}
		om, rule := wf.Outbound[0], wf.Rules[0]
		got := append([]string(nil), om.Fields...)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(fields, ",") {
			t.Errorf("%s fields %v, want %v", obj, got, fields)
		}
		if om.IntegrationUser != "admin@acme.test" || om.IncludeSessionID {
			t.Errorf("%s message %+v", obj, om)
		}
		if !rule.Active || rule.Trigger != "onCreateOrTriggeringUpdate" || len(rule.Actions) != 1 || rule.Actions[0].Type != "OutboundMessage" || rule.Actions[0].Name != om.FullName {
			t.Errorf("%s rule %+v", obj, rule)
		}
		changed := "ISCHANGED(OwnerId)"
		if obj == "User" {
			changed = "ISCHANGED(IsActive)"
		}
		if !strings.Contains(rule.Formula, changed) || !strings.Contains(rule.Formula, "ISNEW()") {
			t.Errorf("%s formula %q", obj, rule.Formula)
		}
	}
	// A HubSpot-only module choice leaves Lead out; no connected user, no package.
	tn.Salesforce.ObjectModules = []string{"contact"}
	if objs := connect.PackageObjects(tn); strings.Join(objs, ",") != "Contact,User" {
		t.Fatalf("objects %v", objs)
	}
	tn.Salesforce.Auth.Username = ""
	if _, err := connect.SalesforcePackage(tn, endpoint, ""); err == nil {
		t.Fatal("package without a sending user")
	}
}
