package mapper_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestConnectFlowAcrossReplicas is issue 15 with issue 16's Connect flows, on whole mapper
// processes sharing one NATS and one MongoDB: Connect HubSpot clicked on replica A finishes when
// HubSpot's redirect reaches replica B (no sticky sessions), the same callback replayed on A is
// refused, and a flow started on A before A restarts finishes on the restarted A.
func TestConnectFlowAcrossReplicas(t *testing.T) {
	const admin = "https://admin.example.test"
	acct, err := hssim.New(hssim.Config{ClientID: "hs-app", ClientSecret: "hs-secret", AppID: 3100456,
		App: hssim.AppConfig{RedirectURIs: []string{admin + "/admin/connect/hubspot/callback"}}})
	if err != nil {
		t.Fatal(err)
	}
	hsURL, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte("tenants:\n  - id: acme\n    name: Acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	infra := harness.Start(t)
	getenv := infra.Env(map[string]string{
		"OWNERSYNC_OPERATOR_TOKEN":            operatorToken,
		"OWNERSYNC_TENANTS_FILE":              file,
		"OWNERSYNC_ADMIN_URL":                 admin,
		"OWNERSYNC_STORED_SECRET_KEYS":        secretbox.NewKey("k1"),
		"OWNERSYNC_HUBSPOT_APP_CLIENT_ID":     "hs-app",
		"OWNERSYNC_HUBSPOT_APP_CLIENT_SECRET": "hs-secret",
		"OWNERSYNC_HUBSPOT_AUTHORIZE_URL":     hsURL + "/oauth/authorize",
		"OWNERSYNC_HUBSPOT_API_URL":           hsURL,
		"OWNERSYNC_CRM_ANY_HOST":              "true", // the sandbox listens on loopback
	})
	a, stopA := runMapper(t, getenv)
	b, _ := runMapper(t, getenv)

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, addr, path string, form url.Values) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(body)
	}
	csrf := func(addr, path string) string {
		t.Helper()
		_, _, page := do(http.MethodGet, addr, path, nil)
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no form on %s%s: %s", addr, path, page)
		}
		return m[1]
	}
	if st, _, _ := do(http.MethodPost, a, "/admin/signin", url.Values{"csrf": {csrf(a, "/admin/signin")}, "token": {operatorToken}}); st != http.StatusSeeOther {
		t.Fatalf("sign in on A: %d", st)
	}
	// connectOn clicks Connect HubSpot on addr and grants consent at the sandbox; it returns the
	// callback's path and query as HubSpot redirects to it.
	connectOn := func(addr string) string {
		t.Helper()
		st, loc, body := do(http.MethodPost, addr, "/admin/t/acme/connections/hubspot/connect", url.Values{"csrf": {csrf(addr, "/admin/t/acme/connections")}})
		if st != http.StatusSeeOther || !strings.HasPrefix(loc, hsURL) {
			t.Fatalf("Connect HubSpot on %s: %d %q %s", addr, st, loc, body)
		}
		cb := consent(t, loc)
		if !strings.HasPrefix(cb.String(), admin+"/admin/connect/hubspot/callback?") {
			t.Fatalf("HubSpot redirected to %s", cb)
		}
		return cb.Path + "?" + cb.RawQuery
	}
	done := "/admin/t/acme/connections?done=connected-hubspot"

	cb := connectOn(a)
	if st, loc, body := do(http.MethodGet, b, cb, nil); st != http.StatusSeeOther || loc != done {
		t.Fatalf("callback on B of a flow started on A: %d %q %s", st, loc, body)
	}
	if st, _, body := do(http.MethodGet, a, cb, nil); st != http.StatusBadRequest || !strings.Contains(body, "has expired") {
		t.Fatalf("replayed callback on A: %d %s", st, body)
	}

	cb = connectOn(a)
	stopA()
	a2, _ := runMapper(t, getenv)
	if st, loc, body := do(http.MethodGet, a2, cb, nil); st != http.StatusSeeOther || loc != done {
		t.Fatalf("callback on A after a restart: %d %q %s", st, loc, body)
	}
}

// consent grants HubSpot's consent page at authorizeURL and returns where HubSpot redirects.
func consent(t *testing.T, authorizeURL string) *url.URL {
	t.Helper()
	u, _ := url.Parse(authorizeURL)
	form := u.Query()
	form.Set("decision", "grant")
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("consent answered %d %v", res.StatusCode, err)
	}
	return loc
}
