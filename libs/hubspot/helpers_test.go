package hubspot_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
)

const privateToken = "pat-na1-11111111-2222-3333-4444-555555555555"

// account is an httptest HubSpot account: tests register handlers on mux; every request is
// recorded, and every response carries the rate-limit headers in limits.
type account struct {
	t   testing.TB
	srv *httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	requests []recorded
	limits   http.Header
}

type recorded struct {
	Method, Path, EscapedPath, Auth string
	Query                           map[string][]string
	Body                            []byte
}

func newAccount(t testing.TB) *account {
	t.Helper()
	a := &account{t: t, mux: http.NewServeMux(), limits: http.Header{
		"X-Hubspot-Ratelimit-Max":                   {"190"},
		"X-Hubspot-Ratelimit-Remaining":             {"189"},
		"X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"},
		"X-Hubspot-Ratelimit-Daily":                 {"625000"},
		"X-Hubspot-Ratelimit-Daily-Remaining":       {"624000"},
	}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		a.mu.Lock()
		a.requests = append(a.requests, recorded{r.Method, r.URL.Path, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.URL.Query(), body})
		for k, v := range a.limits {
			w.Header()[k] = v
		}
		a.mu.Unlock()
		a.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *account) recorded() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]recorded(nil), a.requests...)
}

func (a *account) client(t *testing.T, mod ...func(*hubspot.Config)) *hubspot.Client {
	t.Helper()
	cfg := hubspot.Config{BaseURL: a.srv.URL, AccessToken: privateToken, HTTPClient: a.srv.Client()}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := hubspot.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

func sameJSON(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("JSON mismatch (-want +got):\n%s", diff)
	}
}
