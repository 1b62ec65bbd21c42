package sfsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func postForm(t *testing.T, c *http.Client, u string, v url.Values) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestWebServerFlowWithPKCE(t *testing.T) {
	const cb = "https://ownersync.example/admin/connect/salesforce/callback"
	e := newEnv(t, Config{ClientID: "consumer-key", ClientSecret: "consumer-secret", Now: time.Now,
		WebServer: WebServerConfig{RedirectURIs: []string{cb}, RequirePKCE: true}}, baseSeed)
	verifier := "a-long-random-verifier-string-of-43-chars-or-more-xyz"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	q := url.Values{"response_type": {"code"}, "client_id": {"consumer-key"}, "redirect_uri": {cb}, "state": {"s1"},
		"scope": {"api refresh_token id"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	resp, err := http.Get(e.srv.URL + "/services/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="sf-allow"`) {
		t.Fatalf("allow page %d: %s", resp.StatusCode, page)
	}
	noPKCE := url.Values{"response_type": {"code"}, "client_id": {"consumer-key"}, "redirect_uri": {cb}}
	if resp, _ := noRedirect.Get(e.srv.URL + "/services/oauth2/authorize?" + noPKCE.Encode()); resp.StatusCode != 400 {
		t.Fatalf("no code_challenge: %d", resp.StatusCode)
	}
	allow := url.Values{}
	for k, v := range q {
		allow[k] = v
	}
	allow.Set("decision", "allow")
	allow.Set("username", "linus@acme.example") // inactive
	if resp, _ := postForm(t, noRedirect, e.srv.URL+"/services/oauth2/authorize", allow); resp.StatusCode != 401 {
		t.Fatalf("inactive user allowed: %d", resp.StatusCode)
	}
	allow.Set("username", "ada@acme.example")
	resp, _ = postForm(t, noRedirect, e.srv.URL+"/services/oauth2/authorize", allow)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.StatusCode != 302 || code == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("allow: %d %s", resp.StatusCode, loc)
	}
	tokenURL := e.srv.URL + "/services/oauth2/token"
	exch := url.Values{"grant_type": {"authorization_code"}, "client_id": {"consumer-key"}, "client_secret": {"consumer-secret"},
		"redirect_uri": {cb}, "code": {code}, "code_verifier": {"wrong-verifier"}}
	if resp, body := postForm(t, http.DefaultClient, tokenURL, exch); resp.StatusCode != 400 || !strings.Contains(string(body), "invalid code verifier") {
		t.Fatalf("wrong verifier: %d %s", resp.StatusCode, body)
	}
	// The code was spent by the failed attempt; a new one with the right verifier works.
	resp, _ = postForm(t, noRedirect, e.srv.URL+"/services/oauth2/authorize", allow)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	exch.Set("code", loc.Query().Get("code"))
	exch.Set("code_verifier", verifier)
	resp, body := postForm(t, http.DefaultClient, tokenURL, exch)
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || resp.StatusCode != 200 || tr.RefreshToken == "" {
		t.Fatalf("exchange: %d %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(tr.ID, e.srv.URL+"/id/"+e.org.OrgID()+"/0055g00000AsDfGAAV") {
		t.Fatalf("id URL %q", tr.ID)
	}
	// Identity URL with the access token.
	req, _ := http.NewRequest("GET", tr.ID, nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		OrganizationID string            `json:"organization_id"`
		Username       string            `json:"username"`
		URLs           map[string]string `json:"urls"`
	}
	_ = json.NewDecoder(r.Body).Decode(&id)
	r.Body.Close()
	if id.OrganizationID != e.org.OrgID() || id.Username != "ada@acme.example" || !strings.HasPrefix(id.URLs["rest"], "https://acme.my.salesforce.com/services/data/") {
		t.Fatalf("identity %+v", id)
	}
	e.token = tr.AccessToken
	if resp, body := e.do(t, "GET", "/services/data/v62.0/limits", nil); resp.StatusCode != 200 || !strings.Contains(string(body), "DailyApiRequests") {
		t.Fatalf("limits: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "GET", "/services/oauth2/userinfo", nil); resp.StatusCode != 200 || !strings.Contains(string(body), e.org.OrgID()) {
		t.Fatalf("userinfo: %d %s", resp.StatusCode, body)
	}
	// Refresh without rotation: a new access token, no refresh token in the answer.
	resp, body = postForm(t, http.DefaultClient, tokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {"consumer-key"}, "client_secret": {"consumer-secret"}, "refresh_token": {tr.RefreshToken}})
	var tr2 TokenResponse
	_ = json.Unmarshal(body, &tr2)
	if resp.StatusCode != 200 || tr2.AccessToken == "" || tr2.RefreshToken != "" {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	// Revoking the refresh token ends its access tokens too.
	if resp, body := postForm(t, http.DefaultClient, e.srv.URL+"/services/oauth2/revoke", url.Values{"token": {tr.RefreshToken}}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	e.token = tr2.AccessToken
	if resp, _ := e.do(t, "GET", "/services/data/v62.0/limits", nil); resp.StatusCode != 401 {
		t.Fatalf("access token after revoke: %d", resp.StatusCode)
	}
	if resp, _ := postForm(t, http.DefaultClient, tokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {"consumer-key"}, "client_secret": {"consumer-secret"}, "refresh_token": {tr.RefreshToken}}); resp.StatusCode != 400 {
		t.Fatalf("refresh after revoke: %d", resp.StatusCode)
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	e := newEnv(t, Config{ClientID: "ck", ClientSecret: "cs", Now: time.Now, WebServer: WebServerConfig{RotateRefreshTokens: true}}, baseSeed)
	q := url.Values{"response_type": {"code"}, "client_id": {"ck"}, "redirect_uri": {"http://127.0.0.1/cb"}, "decision": {"allow"}, "username": {"ada@acme.example"}}
	resp, _ := postForm(t, noRedirect, e.srv.URL+"/services/oauth2/authorize", q)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	_, body := postForm(t, http.DefaultClient, e.srv.URL+"/services/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"ck"}, "client_secret": {"cs"}, "redirect_uri": {"http://127.0.0.1/cb"}, "code": {loc.Query().Get("code")}})
	var tr TokenResponse
	_ = json.Unmarshal(body, &tr)
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"ck"}, "client_secret": {"cs"}, "refresh_token": {tr.RefreshToken}}
	_, body = postForm(t, http.DefaultClient, e.srv.URL+"/services/oauth2/token", refresh)
	var tr2 TokenResponse
	_ = json.Unmarshal(body, &tr2)
	if tr2.RefreshToken == "" || tr2.RefreshToken == tr.RefreshToken {
		t.Fatalf("rotating refresh: %s", body)
	}
	if resp, _ := postForm(t, http.DefaultClient, e.srv.URL+"/services/oauth2/token", refresh); resp.StatusCode != 400 {
		t.Fatalf("old refresh token after rotation: %d", resp.StatusCode)
	}
}
