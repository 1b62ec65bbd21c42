package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/workbench/harness"
)

var mongoURI string

// TestMain starts one embedded FerretDB for the package; every test uses its own database.
func TestMain(m *testing.M) { harness.MainWithMongo(m, &mongoURI) }

func start(t *testing.T, svc *consoletest.Service, cfg console.Config) *consoletest.Env {
	t.Helper()
	return consoletest.Start(t, mongoURI, svc, cfg)
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
	// client, when set, is sent as X-Forwarded-For: the address this browser signs in from as seen
	// through the test's trusted proxy (loopback).
	client string
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) location() string { return r.header.Get("Location") }

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	if b.client != "" {
		req.Header.Set("X-Forwarded-For", b.client)
	}
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) resp {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	r := b.do(req)
	if m := csrfRE.FindStringSubmatch(r.body); m != nil && !strings.HasSuffix(path, "/signin") && !strings.Contains(path, "/signin?") {
		b.csrf = m[1]
	}
	return r
}

// post sends form; the session's CSRF token is added unless form sets "csrf" (even to "").
func (b *browser) post(path string, form url.Values) resp {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// postRaw sends form exactly as given (no CSRF token added).
func (b *browser) postRaw(path string, form url.Values) resp {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in with token and returns the redirect response.
func (b *browser) signIn(token string, extra url.Values) resp {
	b.t.Helper()
	page := b.get("/admin/signin")
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		b.t.Fatalf("sign-in form has no csrf field: %s", page.body)
	}
	form := url.Values{"csrf": {m[1]}, "token": {token}}
	for k, v := range extra {
		form[k] = v
	}
	r := b.post("/admin/signin", form)
	if r.status == http.StatusSeeOther {
		// Pick up the session's CSRF token from the sign-out form of the landing page.
		if home := b.get("/admin/"); home.status == http.StatusSeeOther {
			b.get(strings.TrimPrefix(home.location(), b.base))
		}
	}
	return r
}

func signedIn(t *testing.T, env *consoletest.Env, token string) *browser {
	t.Helper()
	b := newBrowser(t, env.URL)
	if r := b.signIn(token, nil); r.status != http.StatusSeeOther {
		t.Fatalf("sign in: status %d: %s", r.status, r.body)
	}
	if b.csrf == "" {
		t.Fatal("no CSRF token after sign-in")
	}
	return b
}

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body:\n%s", r.status, want, r.body)
	}
}

func wantContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("body lacks %q", s)
		}
	}
	if t.Failed() {
		t.Logf("body:\n%s", body)
	}
}
