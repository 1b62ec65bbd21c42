package hssim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"
)

// noRedirect is a client that stops at the redirect to the app's callback.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func form(t *testing.T, c *http.Client, u string, v url.Values) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestInstallFlowRotationAndRevoke(t *testing.T) {
	const cb = "https://ownersync.example/admin/connect/hubspot/callback"
	e := newEnv(t, Config{ClientID: "app-client", ClientSecret: "app-secret", Now: time.Now,
		App: AppConfig{RedirectURIs: []string{cb}, RotateRefreshTokens: true}}, baseSeed)
	e.token = ""
	scope := "oauth crm.objects.owners.read crm.objects.contacts.read crm.objects.contacts.write"
	auth := e.srv.URL + "/oauth/authorize?" + url.Values{"client_id": {"app-client"}, "redirect_uri": {cb}, "scope": {scope}, "state": {"st-1"}}.Encode()
	resp, err := http.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="hs-grant"`) || !strings.Contains(string(page), "crm.objects.owners.read") {
		t.Fatalf("consent page %d: %s", resp.StatusCode, page)
	}
	// A redirect URL that is not the app's is refused on the page, not redirected to.
	bad := strings.Replace(auth, url.QueryEscape(cb), url.QueryEscape("https://evil.example/cb"), 1)
	if resp, err := noRedirect.Get(bad); err != nil || resp.StatusCode != 400 {
		t.Fatalf("foreign redirect_uri: %v %v", resp.StatusCode, err)
	}
	// Cancel sends access_denied back with the state.
	resp, _ = form(t, noRedirect, e.srv.URL+"/oauth/authorize", url.Values{"client_id": {"app-client"}, "redirect_uri": {cb}, "scope": {scope}, "state": {"st-1"}, "decision": {"deny"}})
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != 302 || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st-1" {
		t.Fatalf("deny: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = form(t, noRedirect, e.srv.URL+"/oauth/authorize", url.Values{"client_id": {"app-client"}, "redirect_uri": {cb}, "scope": {scope}, "state": {"st-1"}, "decision": {"grant"}})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.StatusCode != 302 || code == "" || loc.Query().Get("state") != "st-1" || !strings.HasPrefix(loc.String(), cb+"?") {
		t.Fatalf("grant: %d %s", resp.StatusCode, loc)
	}
	tokenURL := e.srv.URL + "/oauth/v1/token"
	exch := url.Values{"grant_type": {"authorization_code"}, "client_id": {"app-client"}, "client_secret": {"app-secret"}, "redirect_uri": {cb}, "code": {code}}
	resp, body := form(t, http.DefaultClient, tokenURL, exch)
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || resp.StatusCode != 200 || tr.RefreshToken == "" || tr.AccessToken == "" {
		t.Fatalf("exchange: %d %s", resp.StatusCode, body)
	}
	if resp, body := form(t, http.DefaultClient, tokenURL, exch); resp.StatusCode != 400 || !strings.Contains(string(body), "BAD_AUTH_CODE") {
		t.Fatalf("code reused: %d %s", resp.StatusCode, body)
	}
	// Token metadata names the portal and the granted scopes.
	r, _ := http.Get(e.srv.URL + "/oauth/v1/access-tokens/" + tr.AccessToken)
	var info struct {
		HubID  int64    `json:"hub_id"`
		Scopes []string `json:"scopes"`
		User   string   `json:"user"`
	}
	_ = json.NewDecoder(r.Body).Decode(&info)
	r.Body.Close()
	if info.HubID != e.acct.PortalID() || len(info.Scopes) != 4 || info.User == "" {
		t.Fatalf("token info %+v", info)
	}
	e.token = tr.AccessToken
	if resp, body := e.do(t, "GET", "/crm/v3/owners", nil); resp.StatusCode != 200 {
		t.Fatalf("API with the new token: %d %s", resp.StatusCode, body)
	}
	// Rotation: the refresh grant returns a new refresh token; the old one stops working.
	resp, body = form(t, http.DefaultClient, tokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {"app-client"}, "client_secret": {"app-secret"}, "refresh_token": {tr.RefreshToken}})
	var tr2 tokenResponse
	_ = json.Unmarshal(body, &tr2)
	if resp.StatusCode != 200 || tr2.RefreshToken == "" || tr2.RefreshToken == tr.RefreshToken {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	if resp, body := form(t, http.DefaultClient, tokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {"app-client"}, "client_secret": {"app-secret"}, "refresh_token": {tr.RefreshToken}}); resp.StatusCode != 400 {
		t.Fatalf("rotated-out refresh token still works: %d %s", resp.StatusCode, body)
	}
	// Revoke: the refresh token and its access tokens stop working.
	req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/oauth/v1/refresh-tokens/"+tr2.RefreshToken, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("revoke: %v %v", resp.StatusCode, err)
	}
	e.token = tr2.AccessToken
	if resp, _ := e.do(t, "GET", "/crm/v3/owners", nil); resp.StatusCode != 401 {
		t.Fatalf("access token after revoke: %d", resp.StatusCode)
	}
	if !e.acct.RefreshTokenRevoked(tr2.RefreshToken) {
		t.Fatal("RefreshTokenRevoked = false")
	}
}

func TestWebhookSubscriptionsAPI(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var evs []Event
		_ = json.NewDecoder(r.Body).Decode(&evs)
		mu.Lock()
		got = append(got, evs...)
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer hook.Close()
	e := newEnv(t, Config{Now: time.Now, App: AppConfig{DeveloperAPIKey: "dev-key"}, Webhooks: WebhookConfig{BaseDelay: time.Millisecond}}, baseSeed)
	base := e.srv.URL + "/webhooks/v3/" + "3100456"
	call := func(method, path, key string, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path+"?hapikey="+key, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if st, _ := call("GET", "/subscriptions", "wrong", ""); st != 401 {
		t.Fatalf("wrong developer key: %d", st)
	}
	if st, b := call("PUT", "/settings", "dev-key", `{"targetUrl":"`+hook.URL+`","throttling":{"maxConcurrentRequests":10}}`); st != 200 {
		t.Fatalf("settings: %d %s", st, b)
	}
	// Not subscribed yet: an owner change sends nothing.
	if err := e.acct.SetContactOwner("51234", "71234569", 0); err != nil {
		t.Fatal(err)
	}
	e.acct.FlushWebhooks()
	if st, b := call("POST", "/subscriptions", "dev-key", `{"eventType":"contact.propertyChange","active":true}`); st != 400 {
		t.Fatalf("propertyChange without propertyName: %d %s", st, b)
	}
	st, b := call("POST", "/subscriptions", "dev-key", `{"eventType":"contact.propertyChange","propertyName":"hubspot_owner_id","active":true}`)
	var sub Subscription
	_ = json.Unmarshal(b, &sub)
	if st != 201 || sub.ID == 0 {
		t.Fatalf("create: %d %s", st, b)
	}
	if st, _ := call("POST", "/subscriptions", "dev-key", `{"eventType":"contact.propertyChange","propertyName":"hubspot_owner_id"}`); st != 409 {
		t.Fatalf("duplicate: %d", st)
	}
	if err := e.acct.SetContactOwner("51234", "71234567", 0); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "subscribed webhook", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	mu.Lock()
	if got[0].SubscriptionID != sub.ID || got[0].PropertyName != "hubspot_owner_id" {
		t.Fatalf("event %+v, want subscription %d", got[0], sub.ID)
	}
	mu.Unlock()
	if st, b := call("GET", "/subscriptions", "dev-key", ""); st != 200 || !strings.Contains(string(b), `"hubspot_owner_id"`) {
		t.Fatalf("list: %d %s", st, b)
	}
	if st, _ := call("DELETE", "/subscriptions/"+jsonNum(sub.ID), "dev-key", ""); st != 204 || len(e.acct.Subscriptions()) != 0 {
		t.Fatalf("delete: %d", st)
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }
