package crmconn_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

var stopAtRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// codeFlow runs an authorize page's decision and the code exchange and returns the refresh token.
func codeFlow(t *testing.T, authorizeURL, tokenURL string, decide, exchange url.Values) string {
	t.Helper()
	resp, err := stopAtRedirect.PostForm(authorizeURL, decide)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	exchange.Set("code", loc.Query().Get("code"))
	resp, err = http.PostForm(tokenURL, exchange)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.RefreshToken == "" {
		t.Fatalf("exchange %d: %v", resp.StatusCode, err)
	}
	return tr.RefreshToken
}

// TestStoredTokensRotate: clients of a connection made through the console read their refresh
// token from the encrypted store, and a refresh token the CRM rotates is stored again, so another
// replica (a new Clients) still connects and the old token is dead.
func TestStoredTokensRotate(t *testing.T) {
	const cb = "http://127.0.0.1/cb"
	acct, err := hssim.New(hssim.Config{ClientID: "hs-app", ClientSecret: "hs-app-secret", App: hssim.AppConfig{RotateRefreshTokens: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Load(hssim.Seed{Owners: []hssim.Owner{{ID: "1", Email: "ada@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	hsURL, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	org, err := sfsim.New(sfsim.Config{ClientID: "sf-app", ClientSecret: "sf-app-secret", WebServer: sfsim.WebServerConfig{RotateRefreshTokens: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(sfsim.Seed{Users: []sfsim.SeedUser{{ID: "0055g00000AsDfGAAV", Username: "ada@acme.test", Email: "ada@example.com", LastName: "L"}}}); err != nil {
		t.Fatal(err)
	}
	sfURL, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })

	hsRefresh := codeFlow(t, hsURL+"/oauth/authorize", hsURL+"/oauth/v1/token",
		url.Values{"client_id": {"hs-app"}, "redirect_uri": {cb}, "scope": {"oauth crm.objects.owners.read"}, "decision": {"grant"}},
		url.Values{"grant_type": {"authorization_code"}, "client_id": {"hs-app"}, "client_secret": {"hs-app-secret"}, "redirect_uri": {cb}})
	sfRefresh := codeFlow(t, sfURL+"/services/oauth2/authorize", sfURL+"/services/oauth2/token",
		url.Values{"response_type": {"code"}, "client_id": {"sf-app"}, "redirect_uri": {cb}, "username": {"ada@acme.test"}, "decision": {"allow"}},
		url.Values{"grant_type": {"authorization_code"}, "client_id": {"sf-app"}, "client_secret": {"sf-app-secret"}, "redirect_uri": {cb}})

	conn := harness.MongoDB(t, "crmconn_stored")
	kr, err := secretbox.ParseKeyring(secretbox.NewKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	store := secretbox.NewStore(conn.DB, kr)
	ctx := context.Background()
	for name, v := range map[string]string{"hubspot.refresh_token": hsRefresh, "hubspot.client_secret": "hs-app-secret",
		"salesforce.refresh_token": sfRefresh, "salesforce.client_secret": "sf-app-secret"} {
		if err := store.Put(ctx, "acme", name, secretbox.NewSecret(v)); err != nil {
			t.Fatal(err)
		}
	}
	ts := tenants{"acme": {ID: "acme",
		Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional}, OrgID: org.OrgID(), InstanceURL: sfURL, APIVersion: "62.0",
			Auth: tenant.SFAuth{Flow: "web_server", ClientID: "sf-app", ClientSecretRef: secretbox.Ref("acme", "salesforce.client_secret"),
				RefreshTokenRef: secretbox.Ref("acme", "salesforce.refresh_token"), TokenURL: sfURL + "/services/oauth2/token"}},
		HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional, APIBaseURL: hsURL},
			PortalID: acct.PortalID(), ClientSecretRef: secretbox.Ref("acme", "hubspot.client_secret"),
			Auth: tenant.HSAuth{Kind: "oauth", ClientID: "hs-app", ClientSecretRef: secretbox.Ref("acme", "hubspot.client_secret"),
				RefreshTokenRef: secretbox.Ref("acme", "hubspot.refresh_token"), TokenURL: hsURL + "/oauth/v1/token"}}}}
	for _, tn := range ts {
		if err := tn.Validate(); err != nil {
			t.Fatalf("a connected tenant does not validate: %v", err)
		}
	}
	replica := func() *crmconn.Clients {
		return crmconn.New(crmconn.Config{Tenants: ts, Secrets: secretbox.Resolver(store, &secretref.Resolver{}), Stored: store, Timeout: 5 * time.Second, AnyCRMHost: true})
	}
	use := func(c *crmconn.Clients) {
		t.Helper()
		hs, err := c.HubSpot(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if err := hs.ListOwners(ctx, false, func([]hubspot.Owner) error { return nil }); err != nil {
			t.Fatalf("HubSpot with a stored token: %v", err)
		}
		sf, err := c.Salesforce(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if err := sf.QueryUsers(ctx, func([]salesforce.User) error { return nil }); err != nil {
			t.Fatalf("Salesforce with a stored token: %v", err)
		}
	}
	use(replica())
	for name, old := range map[string]string{"hubspot.refresh_token": hsRefresh, "salesforce.refresh_token": sfRefresh} {
		now, err := store.Get(ctx, "acme", name)
		if err != nil || now.Reveal() == old {
			t.Fatalf("%s was not rotated in the store (%v)", name, err)
		}
	}
	// Another replica starts from the store: the rotated tokens work, the old ones do not.
	use(replica())
	if resp, _ := http.PostForm(hsURL+"/oauth/v1/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"hs-app"}, "client_secret": {"hs-app-secret"}, "refresh_token": {hsRefresh}}); resp.StatusCode != 400 {
		t.Fatalf("the first HubSpot refresh token still works: %d", resp.StatusCode)
	}
}
