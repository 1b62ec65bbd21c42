package console_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// actor is the audit name of a token's principal.
func actor(token string) string {
	h := auth.Hash(token)
	if token == consoletest.OperatorToken {
		return "operator:" + hex.EncodeToString(h[:4])
	}
	return "tenant:acme:" + hex.EncodeToString(h[:4])
}

func TestUnsignedRequestsGoToSignIn(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := newBrowser(t, env.URL)
	for _, path := range []string{"/admin/", "/admin/t/acme/", "/admin/t/acme/p/salesforce/mappings?q=ada", "/admin/t/acme/settings"} {
		r := b.get(path)
		wantStatus(t, r, http.StatusSeeOther)
		if want := "/admin/signin?next=" + url.QueryEscape(path); r.location() != want {
			t.Errorf("GET %s: Location = %q, want %q", path, r.location(), want)
		}
	}
	r := b.post("/admin/t/acme/sync", url.Values{"csrf": {"x"}})
	wantStatus(t, r, http.StatusUnauthorized)
	if calls := env.Svc.Calls("StartSync"); len(calls) != 0 {
		t.Errorf("StartSync called without a session: %v", calls)
	}
	if r := b.get("/admin"); r.status != http.StatusFound || r.location() != "/admin/" {
		t.Errorf("GET /admin = %d %q, want 302 to /admin/", r.status, r.location())
	}
}

func TestSignInAndOut(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := start(t, nil, console.Config{SessionTTL: time.Hour, Now: clock})

	t.Run("wrong token", func(t *testing.T) {
		b := newBrowser(t, env.URL)
		r := b.signIn("not-a-valid-token-at-all", nil)
		wantStatus(t, r, http.StatusUnauthorized)
		wantContains(t, r.body, "That token was not accepted")
		if env.Console.SessionCount() != 0 {
			t.Error("a session was created for a wrong token")
		}
	})
	t.Run("sign-in form without its CSRF cookie", func(t *testing.T) {
		b := newBrowser(t, env.URL)
		r := b.post("/admin/signin", url.Values{"csrf": {"forged"}, "token": {consoletest.OperatorToken}})
		wantStatus(t, r, http.StatusForbidden)
	})
	t.Run("operator sees the tenant picker", func(t *testing.T) {
		b := newBrowser(t, env.URL)
		r := b.signIn(consoletest.OperatorToken, nil)
		wantStatus(t, r, http.StatusSeeOther)
		if r.location() != "/admin/" {
			t.Errorf("Location = %q", r.location())
		}
		var sc *http.Cookie
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == console.SessionCookie {
				sc = c
			}
		}
		if sc == nil {
			t.Fatal("no session cookie")
		}
		if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/admin/" || sc.MaxAge != 3600 || sc.Secure {
			t.Errorf("cookie = %+v, want HttpOnly, SameSite=Strict, Path=/admin/, MaxAge=3600, not Secure over plain HTTP", sc)
		}
		home := b.get("/admin/")
		wantStatus(t, home, http.StatusOK)
		wantContains(t, home.body, `href="/admin/t/acme/"`, `href="/admin/t/globex/"`, "Acme Corp", "Operator")
	})
	t.Run("tenant token lands on its tenant", func(t *testing.T) {
		b := newBrowser(t, env.URL)
		b.signIn(consoletest.AcmeToken, nil)
		r := b.get("/admin/")
		if r.status != http.StatusSeeOther || r.location() != "/admin/t/acme/" {
			t.Errorf("GET /admin/ = %d %q, want 303 to /admin/t/acme/", r.status, r.location())
		}
	})
	t.Run("sign-in returns to the page asked for", func(t *testing.T) {
		b := newBrowser(t, env.URL)
		r := b.get("/admin/t/acme/settings")
		form := b.get(strings.TrimPrefix(r.location(), env.URL))
		wantContains(t, form.body, `name="next" value="/admin/t/acme/settings"`)
		m := csrfRE.FindStringSubmatch(form.body)
		r = b.post("/admin/signin", url.Values{"csrf": {m[1]}, "token": {consoletest.AcmeToken}, "next": {"/admin/t/acme/settings"}})
		if r.status != http.StatusSeeOther || r.location() != "/admin/t/acme/settings" {
			t.Errorf("sign-in = %d %q, want 303 to /admin/t/acme/settings", r.status, r.location())
		}
		wantStatus(t, b.get("/admin/t/acme/settings"), http.StatusOK)
	})
	t.Run("next stays inside the console", func(t *testing.T) {
		for next, want := range map[string]string{
			"/admin/t/acme/settings": "/admin/t/acme/settings",
			"https://evil.example/":  "/admin/",
			"//evil.example/admin/":  "/admin/",
		} {
			b := newBrowser(t, env.URL)
			r := b.signIn(consoletest.OperatorToken, url.Values{"next": {next}})
			if r.location() != want {
				t.Errorf("next %q: Location = %q, want %q", next, r.location(), want)
			}
		}
	})
	t.Run("sign out needs CSRF and ends the session", func(t *testing.T) {
		b := signedIn(t, env, consoletest.OperatorToken)
		wantStatus(t, b.post("/admin/signout", url.Values{"csrf": {""}}), http.StatusForbidden)
		wantStatus(t, b.get("/admin/t/acme/"), http.StatusOK)
		r := b.post("/admin/signout", nil)
		wantStatus(t, r, http.StatusSeeOther)
		if r.location() != "/admin/signin?done=signedout" {
			t.Errorf("Location = %q", r.location())
		}
		wantStatus(t, b.get("/admin/t/acme/"), http.StatusSeeOther)
	})
	t.Run("sessions expire", func(t *testing.T) {
		b := signedIn(t, env, consoletest.OperatorToken)
		wantStatus(t, b.get("/admin/t/acme/"), http.StatusOK)
		mu.Lock()
		now = now.Add(time.Hour + time.Second)
		mu.Unlock()
		wantStatus(t, b.get("/admin/t/acme/"), http.StatusSeeOther)
	})
}

func TestSignInAttemptsAreLimited(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := start(t, nil, console.Config{Now: clock, SignInsPerSecond: 1, SignInBurst: 3})
	b := newBrowser(t, env.URL)
	for i := 0; i < 3; i++ {
		wantStatus(t, b.signIn("wrong-token-0123456789", nil), http.StatusUnauthorized)
	}
	r := b.signIn(consoletest.OperatorToken, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	wantStatus(t, b.signIn(consoletest.OperatorToken, nil), http.StatusSeeOther)
}

func TestSecureCookieWhenConfigured(t *testing.T) {
	env := start(t, nil, console.Config{Secure: true})
	b := newBrowser(t, env.URL)
	page := b.get("/admin/signin")
	for _, c := range (&http.Response{Header: page.header}).Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure with Config.Secure", c.Name)
		}
	}
}

func TestSecurityHeadersAndAssets(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := newBrowser(t, env.URL)
	r := b.get("/admin/signin")
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers = %v", r.header)
	}
	for path, ctype := range map[string]string{"/admin/static/console.css": "text/css", "/admin/static/console.js": "javascript"} {
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		if !strings.Contains(r.header.Get("Content-Type"), ctype) {
			t.Errorf("%s: Content-Type %q", path, r.header.Get("Content-Type"))
		}
	}
	if strings.Contains(r.body, "http://") || strings.Contains(r.body, "https://") {
		t.Errorf("the sign-in page references a remote asset:\n%s", r.body)
	}
	wantStatus(t, b.get("/admin/static/"), http.StatusNotFound)
	r = b.get("/admin/no/such/page")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r.body, "There is no such page.")
}

var postRoutes = []string{
	"/admin/t/%s/p/salesforce/map", "/admin/t/%s/p/salesforce/unmap", "/admin/t/%s/sync",
	"/admin/t/%s/settings", "/admin/t/%s/dlq/replay",
}

func TestFormsRejectMissingOrWrongCSRF(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	env.Svc.TakeCalls()
	for _, tmpl := range postRoutes {
		path := strings.ReplaceAll(tmpl, "%s", "acme")
		for _, tok := range []string{"", "wrong-token"} {
			form := url.Values{"csrf": {tok}, "platform_user_id": {"u901"}, "crm_user_id": {consoletest.SFUserID(902)}, "confirm": {"yes"}, "id": {"4"}, "name": {"Hacked"}}
			r := b.post(path, form)
			if r.status != http.StatusForbidden {
				t.Errorf("POST %s with csrf %q: status %d, want 403", path, tok, r.status)
			}
		}
	}
	for _, c := range env.Svc.TakeCalls() {
		if !strings.HasPrefix(c, "Runs ") {
			t.Errorf("a rejected form reached the core: %s", c)
		}
	}
	if calls := env.DLQ.TakeCalls(); len(calls) != 0 {
		t.Errorf("a rejected form reached the DLQ: %v", calls)
	}
	got, err := env.Tenants.Get(context.Background(), "acme")
	if err != nil || got.Name != "Acme Corp" {
		t.Errorf("tenant changed by a rejected form: %+v %v", got, err)
	}
}

func TestTenantTokenSeesOnlyItsTenant(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.AcmeToken)
	wantStatus(t, b.get("/admin/t/acme/"), http.StatusOK)
	env.Svc.TakeCalls()
	env.DLQ.TakeCalls() // the own tenant's overview counts its dead letters
	for _, path := range []string{"/admin/t/globex/", "/admin/t/globex/p/salesforce/mappings", "/admin/t/globex/p/salesforce/unmapped-platform",
		"/admin/t/globex/p/salesforce/unmapped-crm", "/admin/t/globex/p/salesforce/errors", "/admin/t/globex/p/salesforce/map",
		"/admin/t/globex/sync", "/admin/t/globex/runs/run-0", "/admin/t/globex/runs/run-0/progress", "/admin/t/globex/settings",
		"/admin/t/globex/history?provider=salesforce&type=contact&id=003000000000001AAA", "/admin/t/globex/dlq", "/admin/t/globex/failed-writes",
		"/admin/t/globex/p/salesforce/errors.csv", "/admin/t/nosuch/"} {
		r := b.get(path)
		if r.status != http.StatusForbidden {
			t.Errorf("GET %s: status %d, want 403", path, r.status)
		}
		if strings.Contains(r.body, "Globex") {
			t.Errorf("GET %s leaks the other tenant's name", path)
		}
	}
	for _, tmpl := range postRoutes {
		path := strings.ReplaceAll(tmpl, "%s", "globex")
		r := b.post(path, url.Values{"platform_user_id": {"u901"}, "crm_user_id": {consoletest.SFUserID(902)}, "confirm": {"yes"}, "id": {"4"}, "name": {"Hacked"}})
		if r.status != http.StatusForbidden {
			t.Errorf("POST %s: status %d, want 403", path, r.status)
		}
	}
	if calls := env.Svc.TakeCalls(); len(calls) != 0 {
		t.Errorf("another tenant's request reached the core: %v", calls)
	}
	if calls := env.DLQ.TakeCalls(); len(calls) != 0 {
		t.Errorf("another tenant's request reached the DLQ: %v", calls)
	}
	g, err := env.Tenants.Get(context.Background(), "globex")
	if err != nil || g.Name != "Globex" {
		t.Errorf("globex changed: %+v %v", g, err)
	}

	op := signedIn(t, env, consoletest.OperatorToken)
	r := op.get("/admin/t/nosuch/")
	wantStatus(t, r, http.StatusNotFound)
	wantStatus(t, op.get("/admin/t/globex/p/hubspot/mappings"), http.StatusNotFound) // globex has no HubSpot
	wantStatus(t, op.get("/admin/t/acme/p/pipedrive/mappings"), http.StatusNotFound)
}

const escapedHostile = "&lt;script&gt;alert(1)&lt;/script&gt;"

func TestHostileNamesAreEscaped(t *testing.T) {
	svc := consoletest.NewDemo(5)
	svc.AddCRMUser(consoletest.User{Provider: "hubspot", ID: "666", Name: consoletest.Hostile, Email: `"><img src=x onerror=alert(2)>@x.example`, Active: true})
	svc.SetProblems([]domain.Problem{{Problem: mapping.Problem{Provider: "salesforce", Code: "email_conflict", Email: consoletest.Hostile, Message: "conflict for " + consoletest.Hostile, Fix: consoletest.Hostile}}})
	env := start(t, svc, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	// Map the hostile Salesforce user so its name shows in the mapped list too.
	if _, err := svc.MapManually(context.Background(), "acme", "salesforce", "u901", consoletest.SFUserID(901), "test"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/admin/t/acme/p/salesforce/mappings", "/admin/t/acme/p/salesforce/mappings?q=" + url.QueryEscape(consoletest.Hostile),
		"/admin/t/acme/p/hubspot/unmapped-crm", "/admin/t/acme/p/salesforce/errors", "/admin/t/acme/p/hubspot/map",
		"/admin/t/acme/settings", "/admin/t/acme/dlq",
	} {
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		if strings.Contains(r.body, consoletest.Hostile) || strings.Contains(r.body, "<img src=x") {
			t.Errorf("GET %s: hostile markup appears unescaped", path)
		}
		if !strings.Contains(r.body, escapedHostile) {
			t.Errorf("GET %s: the escaped name is missing", path)
		}
	}
}

func TestPagesShowTheirData(t *testing.T) {
	env := start(t, nil, console.Config{PlatformUserURL: "https://platform.example/admin/{tenant}/users/{id}"})
	b := signedIn(t, env, consoletest.OperatorToken)
	tests := []struct {
		name, path string
		want       []string
	}{
		{"overview", "/admin/t/acme/", []string{"Salesforce", "HubSpot", "Unmapped platform users", "Conflicts", "Last sync:", "2026-11-20 09:30:04 UTC"}},
		{"mappings", "/admin/t/acme/p/salesforce/mappings", []string{"Showing 1–25 of 60", "Page 1 of 3", `rel="next"`, "status-conflict", "⚠", "conflict",
			"<summary>Why</summary>", "two active Salesforce users have the email user002@acme.example", "✕", "error", "✓", "synced", "First name", "Last name"}},
		{"unmapped platform", "/admin/t/acme/p/salesforce/unmapped-platform", []string{"Nina New", "(3)", `href="https://platform.example/admin/acme/users/u901"`, "map?platform_user_id=u901"}},
		{"unmapped crm", "/admin/t/acme/p/salesforce/unmapped-crm", []string{"Otto Other", "otto.other@acme.example", consoletest.SFUserID(902)}},
		{"errors", "/admin/t/acme/p/salesforce/errors", []string{"(1 error, 1 conflict)", "Cyd Lovelace", "two active Salesforce users have the email user002@acme.example", "Suggested fix:", "map the platform user manually", "ambiguous_email"}},
		{"map form", "/admin/t/acme/p/salesforce/map?platform_user_id=u902", []string{`value="u902"`, `<option value="u901">`}},
		{"sync", "/admin/t/acme/sync", []string{"Dry run", "Recent runs", "schedule", "succeeded", "60 mapped"}},
		{"finished run", "/admin/t/acme/runs/run-0", []string{"Finished", "64", "Result"}},
		{"settings", "/admin/t/acme/settings", []string{"env:ACME_SF_SECRET", "file:/run/secrets/acme-hs-token", "env:ACME_HS_CLIENT_SECRET", "admin@acme.example",
			`<option value="bidirectional" selected>`, `value="` + consoletest.SFUserID(1) + `" selected`, "Remap on deactivation", "Auto-provisioning", `value="1h"`}},
		{"history form", "/admin/t/acme/history", []string{"Record id", "Look up"}},
		{"history", "/admin/t/acme/history?provider=salesforce&type=contact&id=003000000000001", []string{"assigned", "crm_to_platform", consoletest.SFUserID(1)}},
		{"dlq", "/admin/t/acme/dlq", []string{"(2)", "INVALID_CROSS_REFERENCE_KEY", "crm.owner.changed.acme.salesforce", "Replay selected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.get(tt.path)
			wantStatus(t, r, http.StatusOK)
			wantContains(t, r.body, tt.want...)
			if !strings.Contains(r.body, `<main id="main"`) || !strings.Contains(r.body, `lang="en"`) {
				t.Error("page lacks its landmarks")
			}
		})
	}
}

func TestEmptyStates(t *testing.T) {
	env := start(t, consoletest.NewService(), console.Config{})
	env.DLQ.Letters = nil
	b := signedIn(t, env, consoletest.OperatorToken)
	for path, want := range map[string]string{
		"/admin/t/acme/p/salesforce/mappings":                        "Nobody is mapped yet",
		"/admin/t/acme/p/salesforce/mappings?q=zzz":                  "Try another search",
		"/admin/t/acme/p/salesforce/unmapped-platform":               "Every platform user is mapped",
		"/admin/t/acme/p/salesforce/unmapped-crm":                    "Every active Salesforce user is mapped",
		"/admin/t/acme/p/salesforce/errors":                          "No errors",
		"/admin/t/acme/sync":                                         "No run yet",
		"/admin/t/acme/dlq":                                          "No dead letters",
		"/admin/t/acme/history?provider=hubspot&type=contact&id=123": "No owner change of this record",
		"/admin/t/acme/":                                             "Last sync: never",
	} {
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r.body, want)
	}
}

func TestCoreFailureShowsAnErrorPage(t *testing.T) {
	svc := consoletest.NewDemo(3)
	env := start(t, svc, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	svc.SetErr(context.DeadlineExceeded)
	r := b.get("/admin/t/acme/p/salesforce/mappings")
	wantStatus(t, r, http.StatusInternalServerError)
	wantContains(t, r.body, "Something went wrong")
	if strings.Contains(r.body, "deadline") {
		t.Error("the internal error text reached the page")
	}
	svc.SetErr(domain.Errorf(domain.CodeNotFound, "no run run-9"))
	r = b.get("/admin/t/acme/runs/run-9")
	wantStatus(t, r, http.StatusNotFound)
	wantContains(t, r.body, "no run run-9")
}

func TestProviderlessLinksFromReports(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.AcmeToken)
	for path, want := range map[string]string{
		"/admin/t/acme/mappings?provider=hubspot":          "/admin/t/acme/p/hubspot/mappings",
		"/admin/t/acme/mappings?provider=salesforce&q=ada": "/admin/t/acme/p/salesforce/mappings?q=ada",
		"/admin/t/acme/errors":                             "/admin/t/acme/p/salesforce/errors",
		"/admin/t/acme/unmapped-platform?provider=hubspot": "/admin/t/acme/p/hubspot/unmapped-platform",
	} {
		r := b.get(path)
		if r.status != http.StatusSeeOther || r.location() != want {
			t.Errorf("GET %s = %d %q, want 303 to %q", path, r.status, r.location(), want)
		}
	}
	wantStatus(t, b.get("/admin/t/acme/mappings?provider=pipedrive"), http.StatusNotFound)
	wantStatus(t, b.get("/admin/t/globex/mappings?provider=salesforce"), http.StatusForbidden)
}

func TestMappingsSearchAndPaging(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	env.Svc.TakeCalls()
	r := b.get("/admin/t/acme/p/salesforce/mappings?q=+Ada+&status=synced&page=2&per_page=2")
	wantStatus(t, r, http.StatusOK)
	want := []string{`ListMappings acme {Provider:salesforce Status:synced Q:Ada Page:2 PerPage:2}`}
	if d := cmp.Diff(want, env.Svc.Calls("ListMappings")); d != "" {
		t.Errorf("ListMappings calls (-want +got):\n%s", d)
	}
	wantContains(t, r.body, "Showing 3–4 of 6", "Page 2 of 3", `href="?page=1&amp;per_page=2&amp;q=Ada&amp;status=synced"`, `href="?page=3&amp;per_page=2&amp;q=Ada&amp;status=synced"`)

	env.Svc.TakeCalls()
	r = b.get("/admin/t/acme/p/salesforce/mappings?q=" + consoletest.SFUserID(7))
	wantContains(t, r.body, "Showing 1–1 of 1", "<code>u007</code>")
	r = b.get("/admin/t/acme/p/salesforce/mappings?page=-3&per_page=100000")
	wantStatus(t, r, http.StatusOK)
	if got := env.Svc.Calls("ListMappings"); len(got) != 2 || !strings.Contains(got[1], "Page:1 PerPage:200") {
		t.Errorf("out-of-range paging not clamped: %v", got)
	}
	wantStatus(t, b.get("/admin/t/acme/p/salesforce/mappings?status=bogus"), http.StatusBadRequest)
}

func TestManualMapping(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	path := "/admin/t/acme/p/salesforce/map"
	otto := consoletest.SFUserID(902)

	t.Run("invalid ids are refused before the core", func(t *testing.T) {
		env.Svc.TakeCalls()
		for _, form := range []url.Values{
			{"platform_user_id": {"has space"}, "crm_user_id": {otto}},
			{"platform_user_id": {"u902"}, "crm_user_id": {"00G000000000001AAA"}},
			{"platform_user_id": {"u902"}, "crm_user_id": {"<script>"}},
		} {
			r := b.post(path, form)
			wantStatus(t, r, http.StatusBadRequest)
			wantContains(t, r.body, `role="alert"`)
		}
		if calls := env.Svc.Calls("MapManually"); len(calls) != 0 {
			t.Errorf("MapManually called: %v", calls)
		}
	})
	t.Run("different emails need a confirmation", func(t *testing.T) {
		r := b.post(path, url.Values{"platform_user_id": {"u902"}, "crm_user_id": {otto[:15]}})
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r.body, "The emails differ", "otto@acme.example", "otto.other@acme.example", `name="confirm" value="yes"`)
		if calls := env.Svc.Calls("MapManually"); len(calls) != 0 {
			t.Errorf("MapManually called before confirmation: %v", calls)
		}
		r = b.post(path, url.Values{"platform_user_id": {"u902"}, "crm_user_id": {otto[:15]}, "confirm": {"yes"}})
		wantStatus(t, r, http.StatusSeeOther)
		if r.location() != "/admin/t/acme/p/salesforce/mappings?done=mapped&q=u902" {
			t.Errorf("Location = %q", r.location())
		}
		want := []string{"MapManually acme salesforce u902 " + otto + " " + actor(consoletest.OperatorToken)}
		if d := cmp.Diff(want, env.Svc.Calls("MapManually")); d != "" {
			t.Errorf("MapManually calls (-want +got):\n%s", d)
		}
		page := b.get(r.location())
		wantContains(t, page.body, "The users are now mapped.", "Otto Other", "(manual)")
	})
	t.Run("the core's refusal is shown next to the form", func(t *testing.T) {
		env.Svc.TakeCalls()
		r := b.post(path, url.Values{"platform_user_id": {"u903"}, "crm_user_id": {consoletest.SFUserID(3)}, "confirm": {"yes"}})
		wantStatus(t, r, http.StatusBadRequest)
		wantContains(t, r.body, "is inactive", `value="u903"`)
	})
	t.Run("tenant token maps in its tenant with its own actor", func(t *testing.T) {
		tb := signedIn(t, env, consoletest.AcmeToken)
		env.Svc.TakeCalls()
		r := tb.post("/admin/t/acme/p/hubspot/map", url.Values{"platform_user_id": {"u903"}, "crm_user_id": {"9002"}, "confirm": {"yes"}})
		wantStatus(t, r, http.StatusSeeOther)
		want := []string{"MapManually acme hubspot u903 9002 " + actor(consoletest.AcmeToken)}
		if d := cmp.Diff(want, env.Svc.Calls("MapManually")); d != "" {
			t.Errorf("MapManually calls (-want +got):\n%s", d)
		}
	})
}

func TestUnmapAsksFirst(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	env.Svc.TakeCalls()
	r := b.post("/admin/t/acme/p/salesforce/unmap", url.Values{"platform_user_id": {"u004"}, "confirm": {""}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "Confirm unmapping", "platform user u004", `name="confirm" value="yes"`, `name="platform_user_id" value="u004"`)
	if calls := env.Svc.Calls("Unmap"); len(calls) != 0 {
		t.Fatalf("Unmap called before confirmation: %v", calls)
	}
	r = b.post("/admin/t/acme/p/salesforce/unmap", url.Values{"platform_user_id": {"u004"}, "confirm": {"yes"}})
	wantStatus(t, r, http.StatusSeeOther)
	want := []string{"Unmap acme salesforce u004 " + actor(consoletest.OperatorToken)}
	if d := cmp.Diff(want, env.Svc.Calls("Unmap")); d != "" {
		t.Errorf("Unmap calls (-want +got):\n%s", d)
	}
	wantContains(t, b.get(r.location()).body, "The mapping was removed.", "Showing 1–25 of 59")
	r = b.post("/admin/t/acme/p/salesforce/unmap", url.Values{"platform_user_id": {"u004"}, "confirm": {"yes"}})
	wantStatus(t, r, http.StatusNotFound)
}

func TestSyncUsers(t *testing.T) {
	env := start(t, nil, console.Config{PollInterval: 1500 * time.Millisecond})
	b := signedIn(t, env, consoletest.OperatorToken)
	env.Svc.TakeCalls()
	r := b.post("/admin/t/acme/sync", url.Values{"dry_run": {"on"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.location() != "/admin/t/acme/runs/run-1" {
		t.Fatalf("Location = %q", r.location())
	}
	want := []string{`StartSync acme {Tenant:acme Trigger:manual DryRun:true EmailReport:false Actor:` + actor(consoletest.OperatorToken) + `}`}
	if d := cmp.Diff(want, env.Svc.Calls("StartSync")); d != "" {
		t.Errorf("StartSync calls (-want +got):\n%s", d)
	}
	again := b.post("/admin/t/acme/sync", nil)
	if again.location() != "/admin/t/acme/runs/run-1?done=already" {
		t.Errorf("second start: Location = %q", again.location())
	}

	page := b.get(r.location())
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.body, "In progress", `<noscript><meta http-equiv="refresh" content="2"></noscript>`,
		`data-progress-url="/admin/t/acme/runs/run-1/progress"`, `data-poll-ms="1500"`, "(dry run)", "a run is in progress")
	var last struct {
		State, Phase      string
		Pulled, Processed int
		Running           bool
	}
	for i := 0; i < 5 && (i == 0 || last.Running); i++ {
		p := b.get("/admin/t/acme/runs/run-1/progress")
		wantStatus(t, p, http.StatusOK)
		if err := json.Unmarshal([]byte(p.body), &last); err != nil {
			t.Fatal(err)
		}
	}
	if last.State != "succeeded" || last.Running || last.Pulled == 0 {
		t.Errorf("progress = %+v, want a finished run", last)
	}
	page = b.get(r.location())
	wantContains(t, page.body, "Finished", "Result")
	if strings.Contains(page.body, "http-equiv") {
		t.Error("a finished run still refreshes")
	}
	wantStatus(t, b.get("/admin/t/acme/runs/bad%20id"), http.StatusNotFound)
}

func TestSettings(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.AcmeToken)
	ctx := context.Background()
	valid := func() url.Values {
		return url.Values{
			"name": {"Acme Corporation"}, "report_recipients": {"ops@acme.example\nboss@acme.example"}, "reports_enabled": {"on"},
			"schedule_enabled": {"on"}, "schedule_interval": {"30m"}, "time_zone": {"Europe/Berlin"},
			"salesforce_enabled": {"on"}, "salesforce_direction": {"crm_to_platform"}, "salesforce_modules": {"lead"},
			"salesforce_autoprov": {"on"}, "salesforce_fallback": {consoletest.SFUserID(5)},
			"hubspot_enabled": {"on"}, "hubspot_direction": {"platform_to_crm"}, "hubspot_modules": {"contact"}, "hubspot_remap": {"on"}, "hubspot_fallback": {"9001"},
		}
	}
	t.Run("invalid values are shown and nothing is saved", func(t *testing.T) {
		for name, tc := range map[string]struct {
			change func(url.Values)
			want   string
		}{
			"short schedule":     {func(v url.Values) { v.Set("schedule_interval", "1m") }, "schedule interval &#34;1m&#34; must be a duration of at least 5m0s"},
			"bad recipient":      {func(v url.Values) { v.Set("report_recipients", "not-an-email") }, "report recipient &#34;not-an-email&#34; is not an email address"},
			"inactive fallback":  {func(v url.Values) { v.Set("salesforce_fallback", consoletest.SFUserID(3)) }, "the fallback owner must be one of the active Salesforce users"},
			"unknown fallback":   {func(v url.Values) { v.Set("hubspot_fallback", "424242") }, "the fallback owner must be one of the active HubSpot users"},
			"no module":          {func(v url.Values) { v.Del("salesforce_modules") }, "Salesforce: choose at least one object module"},
			"bad direction":      {func(v url.Values) { v.Set("hubspot_direction", "sideways") }, "hubspot.direction &#34;sideways&#34;"},
			"hubspot lead":       {func(v url.Values) { v.Set("hubspot_modules", "lead") }, "hubspot.object_modules"},
			"reports but nobody": {func(v url.Values) { v.Set("report_recipients", "") }, "reports are on but there is no report recipient"},
			"unknown time zone":  {func(v url.Values) { v.Set("time_zone", "Mars/Olympus_Mons") }, "time_zone &#34;Mars/Olympus_Mons&#34; is not a known time zone"},
		} {
			t.Run(name, func(t *testing.T) {
				form := valid()
				tc.change(form)
				r := b.post("/admin/t/acme/settings", form)
				wantStatus(t, r, http.StatusUnprocessableEntity)
				wantContains(t, r.body, "The settings were not saved", tc.want)
				got, err := env.Tenants.Get(ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				if got.Name != "Acme Corp" {
					t.Errorf("tenant saved despite the problem: %+v", got)
				}
			})
		}
	})
	t.Run("valid values are saved through the tenant store", func(t *testing.T) {
		r := b.post("/admin/t/acme/settings", valid())
		wantStatus(t, r, http.StatusSeeOther)
		got, err := env.Tenants.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		want := consoletest.Acme()
		want.Name = "Acme Corporation"
		want.ReportRecipients = []string{"ops@acme.example", "boss@acme.example"}
		want.Schedule.Interval = "30m"
		want.TimeZone = "Europe/Berlin"
		want.Salesforce.Direction, want.Salesforce.ObjectModules = tenant.CRMToPlatform, []string{"lead"}
		want.Salesforce.RemapOnDeactivation, want.Salesforce.AutoProvisioning = false, true
		want.Salesforce.FallbackOwnerID = consoletest.SFUserID(5)
		want.Salesforce.APIVersion = "62.0"
		want.HubSpot.Direction, want.HubSpot.ObjectModules, want.HubSpot.RemapOnDeactivation = tenant.PlatformToCRM, []string{"contact"}, true
		want.HubSpot.FallbackOwnerID = "9001"
		want.UpdatedAt = got.UpdatedAt
		if d := cmp.Diff(want, *got); d != "" {
			t.Errorf("stored tenant (-want +got):\n%s", d)
		}
		page := b.get(r.location())
		wantContains(t, page.body, "Settings saved.", `<option value="crm_to_platform" selected>`, `value="Acme Corporation"`,
			`<input id="time_zone" name="time_zone" value="Europe/Berlin"`)
	})
}

func TestRecordHistory(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	env.Svc.TakeCalls()
	wantStatus(t, b.get("/admin/t/acme/history?provider=salesforce&type=contact&id=003000000000001"), http.StatusOK)
	want := []string{"RecordHistory acme salesforce contact 003000000000001AAA"}
	if d := cmp.Diff(want, env.Svc.Calls("RecordHistory")); d != "" {
		t.Errorf("RecordHistory calls (-want +got):\n%s", d)
	}
	for _, q := range []string{"provider=salesforce&type=contact&id=005000000000001", "provider=hubspot&type=lead&id=1", "provider=hubspot&type=contact&id=12a", "provider=x&type=contact&id=1"} {
		r := b.get("/admin/t/acme/history?" + q)
		wantStatus(t, r, http.StatusBadRequest)
		wantContains(t, r.body, `class="error" role="alert"`)
	}
	if calls := env.Svc.Calls("RecordHistory"); len(calls) != 1 {
		t.Errorf("invalid lookups reached the core: %v", calls)
	}
}

func TestDeadLetterReplay(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	r := b.get("/admin/t/acme/dlq?service=writer")
	wantContains(t, r.body, "(1)", "INVALID_CROSS_REFERENCE_KEY")
	env.DLQ.TakeCalls()
	r = b.post("/admin/t/acme/dlq/replay", url.Values{"id": {"4", "7"}, "confirm": {""}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "Confirm replay", "Replay 2 dead letter(s) (4, 7)", `name="id" value="4"`, `name="id" value="7"`)
	if calls := env.DLQ.TakeCalls(); len(calls) != 0 {
		t.Fatalf("replayed before confirmation: %v", calls)
	}
	r = b.post("/admin/t/acme/dlq/replay", url.Values{"id": {"4"}, "confirm": {"yes"}})
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, "Replayed 1 dead letter(s).", "(1)")
	want := []string{"Replay acme {Service: Subject: IDs:[4] Limit:1}", "List acme {Service: Subject: IDs:[] Limit:100}"}
	if d := cmp.Diff(want, env.DLQ.TakeCalls()); d != "" {
		t.Errorf("DLQ calls (-want +got):\n%s", d)
	}
	for _, ids := range [][]string{nil, {"0"}, {"x"}} {
		wantStatus(t, b.post("/admin/t/acme/dlq/replay", url.Values{"id": ids, "confirm": {"yes"}}), http.StatusBadRequest)
	}
	wantStatus(t, b.get("/admin/t/acme/dlq?service=Bad%20Name"), http.StatusBadRequest)
}

// TestOneClientCannotLockOthersOut is issue 13 item 8: an attacker hammering the sign-in form
// from one address (or with one stolen, revoked token from many) is limited, while an admin at
// another address still signs in at once; the global ceiling is out of one client's reach.
func TestOneClientCannotLockOthersOut(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := start(t, nil, console.Config{Now: clock})

	attacker := newBrowser(t, env.URL)
	attacker.client = "203.0.113.7"
	limited := 0
	for i := 0; i < 60; i++ {
		r := attacker.signIn("wrong-token-"+strings.Repeat("x", 10)+string(rune('a'+i%26))+string(rune('a'+i/26)), nil)
		switch r.status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited++
			if r.header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("attempt %d: status %d", i, r.status)
		}
	}
	if limited == 0 {
		t.Fatal("60 attempts from one address in no time were never limited")
	}
	// The attacker's address is limited even with the right token.
	wantStatus(t, attacker.signIn(consoletest.OperatorToken, nil), http.StatusTooManyRequests)

	admin := newBrowser(t, env.URL)
	admin.client = "198.51.100.20"
	wantStatus(t, admin.signIn(consoletest.OperatorToken, nil), http.StatusSeeOther)

	// One failed token replayed from many addresses is refused after a few tries, without
	// hurting those addresses' other sign-ins.
	const stale = "stale-token-0123456789abcdef"
	refused := 0
	for i := 0; i < 20; i++ {
		b := newBrowser(t, env.URL)
		b.client = "192.0.2." + strconv.Itoa(i+1)
		if r := b.signIn(stale, nil); r.status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("one failing token tried from 20 addresses was never refused")
	}
	other := newBrowser(t, env.URL)
	other.client = "192.0.2.1"
	wantStatus(t, other.signIn(consoletest.AcmeToken, nil), http.StatusSeeOther)

	// After a while the attacker's address may try again.
	mu.Lock()
	now = now.Add(10 * time.Minute)
	mu.Unlock()
	wantStatus(t, attacker.signIn(consoletest.OperatorToken, nil), http.StatusSeeOther)
}

// TestCSRFTokenOnlyFromTheFormBody is issue 13 item 8: a CSRF token in the query string (which
// leaks through logs, history and Referer) is not accepted, on the sign-in form or any other.
func TestCSRFTokenOnlyFromTheFormBody(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	env.Svc.TakeCalls()
	r := b.postRaw("/admin/t/acme/sync?csrf="+url.QueryEscape(b.csrf), url.Values{"dry_run": {"1"}})
	wantStatus(t, r, http.StatusForbidden)
	r = b.postRaw("/admin/signout?csrf="+url.QueryEscape(b.csrf), nil)
	wantStatus(t, r, http.StatusForbidden)
	for _, c := range env.Svc.TakeCalls() {
		if !strings.HasPrefix(c, "Runs ") {
			t.Errorf("a form with its CSRF token in the query reached the core: %s", c)
		}
	}
	wantStatus(t, b.get("/admin/t/acme/"), http.StatusOK) // still signed in

	nb := newBrowser(t, env.URL)
	page := nb.get("/admin/signin")
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no csrf on the sign-in form")
	}
	r = nb.postRaw("/admin/signin?csrf="+url.QueryEscape(m[1]), url.Values{"token": {consoletest.OperatorToken}})
	wantStatus(t, r, http.StatusForbidden)
	// Nor is the token taken from the query.
	r = nb.post("/admin/signin?token="+url.QueryEscape(consoletest.OperatorToken), url.Values{"csrf": {m[1]}})
	if r.status == http.StatusSeeOther {
		t.Fatal("a token in the query string signed in")
	}
}

// TestTokensPage is issue 13 item 13 in the console: the operator lists a tenant's tokens, mints
// one (shown once) and revokes it; a console session opened with the revoked token ends at once.
// Tenant admins cannot reach the page.
func TestTokensPage(t *testing.T) {
	env := start(t, nil, console.Config{})
	op := signedIn(t, env, consoletest.OperatorToken)
	r := op.get("/admin/t/acme/tokens")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, actorID(consoletest.AcmeToken), "configured")

	r = op.post("/admin/t/acme/tokens/mint", url.Values{"name": {"Ops laptop"}, "expires_days": {"30"}})
	wantStatus(t, r, http.StatusOK)
	m := regexp.MustCompile(`<code id="new-token">([^<]+)</code>`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("the minted token is not shown:\n%s", r.body)
	}
	minted := m[1]
	wantContains(t, r.body, "Ops laptop", actorID(minted))

	holder := signedIn(t, env, minted)
	wantStatus(t, holder.get("/admin/t/acme/"), http.StatusOK)
	wantStatus(t, holder.get("/admin/t/acme/tokens"), http.StatusForbidden)
	wantStatus(t, holder.post("/admin/t/acme/tokens/revoke", url.Values{"id": {actorID(minted)}}), http.StatusForbidden)

	r = op.post("/admin/t/acme/tokens/revoke", url.Values{"id": {actorID(minted)}})
	wantStatus(t, r, http.StatusSeeOther)
	r = op.get("/admin/t/acme/tokens")
	if strings.Contains(r.body, actorID(minted)) {
		t.Errorf("the revoked token is still listed:\n%s", r.body)
	}
	if r := holder.get("/admin/t/acme/"); r.status != http.StatusSeeOther || !strings.Contains(r.location(), "/admin/signin") {
		t.Errorf("a session of a revoked token = %d %q, want a redirect to sign in", r.status, r.location())
	}
	wantStatus(t, newBrowser(t, env.URL).signIn(minted, nil), http.StatusUnauthorized)
	r = op.post("/admin/t/acme/tokens/revoke", url.Values{"id": {actorID(consoletest.AcmeToken)}})
	wantStatus(t, r, http.StatusConflict)
}

func actorID(token string) string { h := auth.Hash(token); return hex.EncodeToString(h[:4]) }

// TestSyncFormAsksForEmailedDryRun is issue 13 item 10: the Sync Users form's "email the dry
// run's report" box reaches the core with the dry run only.
func TestSyncFormAsksForEmailedDryRun(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	wantContains(t, b.get("/admin/t/acme/sync").body, `name="email_report"`)
	env.Svc.TakeCalls()
	wantStatus(t, b.post("/admin/t/acme/sync", url.Values{"dry_run": {"on"}, "email_report": {"on"}}), http.StatusSeeOther)
	calls := env.Svc.Calls("StartSync")
	if len(calls) != 1 || !strings.Contains(calls[0], "DryRun:true EmailReport:true") {
		t.Errorf("StartSync calls = %v, want a dry run asking for email", calls)
	}
}

// TestSessionsWorkOnEveryReplica is issue 15 (console sessions): sessions live in MongoDB, so a
// cookie from console A is accepted by a second console B on the same database, and by A again
// after a restart (a new instance); signing out on B revokes the session on both.
func TestSessionsWorkOnEveryReplica(t *testing.T) {
	db := "c_sessions_replicas"
	a := consoletest.StartOn(t, mongoURI, db, nil, console.Config{})
	bEnv := consoletest.StartOn(t, mongoURI, db, nil, console.Config{})

	br := signedIn(t, a, consoletest.OperatorToken)
	wantStatus(t, br.get("/admin/t/acme/"), http.StatusOK)

	// The same cookie jar against replica B (cookies are per host, not per port).
	br.base = bEnv.URL
	wantStatus(t, br.get("/admin/t/acme/"), http.StatusOK)
	// Forms too: the session's CSRF token is shared.
	wantStatus(t, br.post("/admin/t/acme/sync", url.Values{"dry_run": {"on"}}), http.StatusSeeOther)

	// A restarts: a new instance on the same database.
	a2 := consoletest.StartOn(t, mongoURI, db, nil, console.Config{})
	br.base = a2.URL
	wantStatus(t, br.get("/admin/t/acme/"), http.StatusOK)

	// Signing out on B ends the session everywhere.
	br.base = bEnv.URL
	jar := br.hc.Jar
	bu, _ := url.Parse(bEnv.URL + "/admin/")
	var sid string
	for _, c := range jar.Cookies(bu) {
		if c.Name == console.SessionCookie {
			sid = c.Value
		}
	}
	if sid == "" {
		t.Fatal("no session cookie in the jar")
	}
	wantStatus(t, br.post("/admin/signout", nil), http.StatusSeeOther)
	for _, base := range []string{a.URL, a2.URL, bEnv.URL} {
		// Replay the old cookie explicitly (the browser dropped it at sign-out).
		old := newBrowser(t, base)
		old.hc.Jar = jar
		u, _ := url.Parse(base + "/admin/")
		jar.SetCookies(u, []*http.Cookie{{Name: console.SessionCookie, Value: sid, Path: "/admin/"}})
		if r := old.get("/admin/t/acme/"); r.status != http.StatusSeeOther {
			t.Errorf("%s accepts a signed-out session: %d", base, r.status)
		}
	}
}

// TestRunPageShowsNotMappableApart: a finished run lists the Salesforce users who are not people
// (integration, automated users) in their own "Not mappable" list with the reason, outside the
// errors, and the count of errors does not include them (issue 16).
func TestRunPageShowsNotMappableApart(t *testing.T) {
	env := start(t, consoletest.NewDemo(5), console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	page := b.get("/admin/t/acme/runs/run-0")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.body, `id="not-mappable-salesforce"`, "Not mappable (1)", "Integration User",
		"integration@acme.example", consoletest.SFUserID(903), "Salesforce Integration",
		"used by other systems, not by a person", "<dt>Errors</dt><dd>0</dd>")
	unmapped := b.get("/admin/t/acme/p/salesforce/unmapped-crm")
	if strings.Contains(unmapped.body, consoletest.SFUserID(903)) {
		t.Errorf("the integration user is listed as an unmapped CRM user")
	}
}

// TestTimesInTheTenantsTimeZone: every time on a console page is shown in the tenant's time zone
// (its setting, else the HubSpot account's), in a <time> element whose datetime and title give
// the UTC time (issue 16).
func TestTimesInTheTenantsTimeZone(t *testing.T) {
	ctx := context.Background()
	env := start(t, consoletest.NewDemo(5), console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	// consoletest.T0 is 2026-11-20 09:30 UTC; run-0 started then.
	utc := `<time datetime="2026-11-20T09:30:00Z" title="2026-11-20 09:30:00 UTC">`
	for _, tt := range []struct{ name, tz, hubspot, want string }{
		{name: "UTC by default", want: utc + "2026-11-20 09:30:00 UTC</time>"},
		{name: "the HubSpot account's", hubspot: "America/New_York", want: utc + "2026-11-20 04:30:00 EST</time>"},
		{name: "the tenant's own", tz: "Europe/Berlin", hubspot: "America/New_York", want: utc + "2026-11-20 10:30:00 CET</time>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tn, err := env.Tenants.Get(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			tn.TimeZone, tn.HubSpot.TimeZone = tt.tz, tt.hubspot
			if err := env.Tenants.Put(ctx, tn); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/admin/t/acme/runs/run-0", "/admin/t/acme/sync"} {
				page := b.get(path)
				wantStatus(t, page, http.StatusOK)
				wantContains(t, page.body, tt.want)
			}
		})
	}
}

// TestCRMUsersAndRecordsLinkToTheCRM: CRM user ids link to the user's page in Salesforce
// (instance URL + /lightning/r/User/<id>/view) and to the account's users in HubSpot; a record's
// history links to the record in the CRM (issue 16).
func TestCRMUsersAndRecordsLinkToTheCRM(t *testing.T) {
	env := start(t, consoletest.NewDemo(5), console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	sfUser := `<a class="crm-link" href="https://acme.my.salesforce.com/lightning/r/User/` + consoletest.SFUserID(1) + `/view" target="_blank" rel="noopener noreferrer"><code>` + consoletest.SFUserID(1) + `</code>`
	for _, tt := range []struct{ path, want string }{
		{"/admin/t/acme/p/salesforce/mappings", sfUser},
		{"/admin/t/acme/p/salesforce/unmapped-crm", `href="https://acme.my.salesforce.com/lightning/r/User/` + consoletest.SFUserID(902) + `/view"`},
		{"/admin/t/acme/p/salesforce/errors", `href="https://acme.my.salesforce.com/lightning/r/User/` + consoletest.SFUserID(902) + `/view"`},
		{"/admin/t/acme/runs/run-0", `href="https://acme.my.salesforce.com/lightning/r/User/` + consoletest.SFUserID(903) + `/view"`},
		{"/admin/t/acme/p/hubspot/mappings", `href="https://app.hubspot.com/settings/4412345/users"`},
		{"/admin/t/acme/history?provider=salesforce&type=contact&id=003000000000001AAA",
			`href="https://acme.my.salesforce.com/lightning/r/Contact/003000000000001AAA/view"`},
		{"/admin/t/acme/history?provider=salesforce&type=contact&id=003000000000001AAA", sfUser},
	} {
		page := b.get(tt.path)
		wantStatus(t, page, http.StatusOK)
		if !strings.Contains(page.body, tt.want) {
			t.Errorf("%s lacks %s", tt.path, tt.want)
		}
	}
}

// TestOverviewCountsNotMappableApart: the overview counts the CRM users who are not people apart
// from the errors and the unmapped users, linking to the last run's list of them (issue 16).
func TestOverviewCountsNotMappableApart(t *testing.T) {
	env := start(t, consoletest.NewDemo(5), console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	page := b.get("/admin/t/acme/")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.body, `<a id="count-not-mappable-salesforce" href="/admin/t/acme/runs/run-0#not-mappable-salesforce">1</a>`)
	if strings.Contains(page.body, "count-not-mappable-hubspot") {
		t.Error("HubSpot has no user who is not a person, yet a count is shown")
	}
}
