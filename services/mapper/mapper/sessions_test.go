package mapper_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/mapper/mapper"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/readiness"
)

// runMapper starts a mapper replica that the test can stop (a restart is stop + start).
func runMapper(t *testing.T, getenv func(string) string) (addr string, stop func()) {
	t.Helper()
	l := harness.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- mapper.Run(ctx, servicekit.Env{Args: []string{"mapper"}, Getenv: getenv, Stdout: io.Discard, Listener: l})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mapper: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("mapper did not stop within 15 s")
		}
	}
	t.Cleanup(stop)
	if err := readiness.Wait(ctx, "http://"+l.Addr().String()+"/readyz", 60*time.Second, done); err != nil {
		t.Fatal(err)
	}
	return l.Addr().String(), stop
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsoleSessionsAcrossReplicas is issue 15 (console sessions) with whole mapper processes on
// one NATS and one MongoDB: a cookie from replica A works on replica B and on A after a restart;
// signing out on B ends the session on both.
func TestConsoleSessionsAcrossReplicas(t *testing.T) {
	infra := harness.Start(t)
	getenv := infra.Env(map[string]string{"OWNERSYNC_OPERATOR_TOKEN": operatorToken})
	a, stopA := runMapper(t, getenv)
	b, _ := runMapper(t, getenv)

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(addr, path string) (int, string) {
		t.Helper()
		res, err := hc.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	post := func(addr, path string, form url.Values) int {
		t.Helper()
		res, err := hc.PostForm("http://"+addr+path, form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	_, page := get(a, "/admin/signin")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form on A: %s", page)
	}
	if st := post(a, "/admin/signin", url.Values{"csrf": {m[1]}, "token": {operatorToken}}); st != http.StatusSeeOther {
		t.Fatalf("sign in on A: %d", st)
	}
	signedIn := func(who, addr string) (bool, string) {
		t.Helper()
		st, body := get(addr, "/admin/")
		if st == http.StatusOK && strings.Contains(body, "Sign out") {
			return true, body
		}
		if st != http.StatusSeeOther {
			t.Fatalf("%s: GET /admin/ = %d", who, st)
		}
		return false, ""
	}
	if ok, _ := signedIn("A", a); !ok {
		t.Fatal("not signed in on A after signing in there")
	}
	ok, body := signedIn("B", b)
	if !ok {
		t.Fatal("replica B does not know A's session")
	}
	stopA()
	a2, _ := runMapper(t, getenv)
	if ok, _ := signedIn("A after a restart", a2); !ok {
		t.Fatal("the session did not survive A's restart")
	}
	// Sign out on B (with the session's CSRF token from B's page).
	m = csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on B's page")
	}
	u, _ := url.Parse("http://" + b + "/admin/")
	cookies := jar.Cookies(u)
	if st := post(b, "/admin/signout", url.Values{"csrf": {m[1]}}); st != http.StatusSeeOther {
		t.Fatalf("sign out on B: %d", st)
	}
	jar.SetCookies(u, cookies) // replay the old cookie: it must be dead everywhere
	for who, addr := range map[string]string{"A": a2, "B": b} {
		if ok, _ := signedIn(who, addr); ok {
			t.Errorf("%s still accepts the signed-out session", who)
		}
	}
}
