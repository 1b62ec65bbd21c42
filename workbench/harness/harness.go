// Package harness starts the embedded infrastructure (nats-server with JetStream, FerretDB) for
// tests and runs services in process until they answer /readyz.
package harness

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/embedmongo"
	"github.com/ownersync/ownersync/workbench/embednats"
	"github.com/ownersync/ownersync/workbench/readiness"
)

// Infra is the embedded infrastructure of one test.
type Infra struct {
	NATS     *embednats.Server
	Mongo    *embedmongo.Server
	NATSURL  string
	MongoURI string
}

// Start starts NATS and FerretDB in t's temp dirs; both stop at cleanup.
func Start(t testing.TB) *Infra {
	t.Helper()
	ns, err := embednats.Start(embednats.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	ms, err := embedmongo.Start(context.Background(), embedmongo.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Stop)
	return &Infra{NATS: ns, Mongo: ms, NATSURL: ns.URL(), MongoURI: ms.URI()}
}

// Env returns a getenv over the infra's URLs plus extra variables.
func (i *Infra) Env(extra map[string]string) func(string) string {
	env := map[string]string{"NATS_URL": i.NATSURL, "MONGODB_URI": i.MongoURI, "OWNERSYNC_MONGODB_DATABASE": "ownersync"}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// FreeAddr returns a free loopback address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// RunFunc is a service's exported Run.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// Service runs a service in process until t ends, waiting for http://addr/readyz to answer 200.
// The service must return within 10 s of cancellation.
func Service(t testing.TB, name string, run RunFunc, addr string, getenv func(string) string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{name}, getenv, &testWriter{t: t, name: name}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop within 10 s", name)
		}
	})
	if err := readiness.Wait(ctx, "http://"+addr+"/readyz", 30*time.Second, done); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testWriter sends a service's logs to t.Log when -v, keeping failures readable.
type testWriter struct {
	t    testing.TB
	name string
	mu   sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if testing.Verbose() {
		w.t.Logf("%s: %s", w.name, p)
	}
	return len(p), nil
}

// NotFound fails t unless every path answers GET http://addr<path> with 404 (routes a listener
// must not serve, such as /metrics on a public port).
func NotFound(t testing.TB, addr string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET http://%s%s = %d, want 404", addr, p, resp.StatusCode)
		}
	}
}
