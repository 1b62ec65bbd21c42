// Package harness is the one test harness of ownersync: embedded NATS with JetStream, FerretDB in a
// child process, polling, and services run in process on a listener the harness binds. Tests of
// libs and the services import it; production code never does (it imports testing).
//
// FerretDB runs out of process (package mongoproc) so that a module whose tests use Mongo does not
// require FerretDB, pgx and SQLite in its go.mod.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/workbench/embednats"
	"github.com/ownersync/ownersync/workbench/mongoproc"
	"github.com/ownersync/ownersync/workbench/readiness"
)

// NATS is an embedded nats-server with JetStream for one test and a connection to it.
type NATS struct {
	Server *embednats.Server
	URL    string
	// Conn is connected as "test"; JetStream declares the streams on it, KV the KV buckets too.
	*natsbus.Conn
	// opts start the server again on the same port and store (Restart).
	opts embednats.Options
}

// NATSServer starts nats-server with JetStream in t's temp dir on a port it binds itself; it stops at
// cleanup.
func NATSServer(t testing.TB) *embednats.Server {
	t.Helper()
	return NATSServerWith(t, embednats.Options{})
}

// NATSServerWith starts nats-server as NATSServer does with o's settings (Dir defaults to a temp dir
// of t's, Port to one the server binds itself); it stops at cleanup.
func NATSServerWith(t testing.TB, o embednats.Options) *embednats.Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Port == 0 {
		o.Port = -1
	}
	ns, err := embednats.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	return ns
}

// JetStream starts a server, connects to it and declares ownersync's streams in memory storage.
func JetStream(t testing.TB) *NATS {
	t.Helper()
	return JetStreamWith(t, streams.Options{MemoryStorage: true})
}

// JetStreamWith starts a server as JetStream does and declares ownersync's streams with so (file
// storage, for a test whose streams must outlive a Restart).
func JetStreamWith(t testing.TB, so streams.Options) *NATS {
	t.Helper()
	n := &NATS{opts: embednats.Options{Dir: t.TempDir(), Port: -1}}
	n.start(t)
	t.Cleanup(func() { n.Server.Stop() })
	c, err := natsbus.Connect(context.Background(), natsbus.Options{URL: n.URL, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := natsbus.DeclareStreams(context.Background(), c.JS, streams.Configs(so)); err != nil {
		t.Fatal(err)
	}
	n.Conn = c
	return n
}

func (n *NATS) start(t testing.TB) {
	t.Helper()
	ns, err := embednats.Start(n.opts)
	if err != nil {
		t.Fatal(err)
	}
	n.Server, n.URL = ns, ns.URL()
	// A restarted server comes back where it was: the port it bound the first time.
	n.opts.Port = ns.Addr().(*net.TCPAddr).Port
}

// Stop stops the server (NATS goes away); Restart brings it back.
func (n *NATS) Stop() { n.Server.Stop() }

// Restart stops the server if it runs and starts it again on the same port and store directory, as
// a restarted nats-server comes back; Conn reconnects on its own. Streams in file storage keep their
// messages, those in memory storage come back empty.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Server.Stop()
	n.start(t)
}

// KV starts a server as JetStream does and returns ownersync's KV bucket named bucket (memory
// storage), for a test of one bucket's reader or writer.
func KV(t testing.TB, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, ok := JetStream(t).KV(t)[bucket]
	if !ok {
		t.Fatalf("harness: no KV bucket %q", bucket)
	}
	return kv
}

// KV declares ownersync's KV buckets (memory storage) and returns them by name.
func (n *NATS) KV(t testing.TB) map[string]jetstream.KeyValue {
	t.Helper()
	kvs, err := natsbus.DeclareKV(context.Background(), n.JS, streams.KVConfigs(streams.Options{MemoryStorage: true}))
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}

// ExternalMongoEnv names a MongoDB-compatible server the tests use instead of starting FerretDB
// (issue 18: the suite against MongoDB, or anything else that speaks the protocol). Tests pick
// their own database names, so run packages one at a time against it (go test -p 1); every
// database a test creates is dropped when it ends. With OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL set
// instead, every FerretDB started here runs on its PostgreSQL backend (scripts/ferretdb-postgres.sh).
const ExternalMongoEnv = "OWNERSYNC_TEST_MONGODB_URI"

// Mongo starts FerretDB (SQLite, in t's temp dir) in a child process and returns its mongodb:// URI;
// it stops at cleanup. With ExternalMongoEnv set it returns that server's URI instead.
func Mongo(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv(ExternalMongoEnv); uri != "" {
		dropNewDatabases(t, uri)
		return uri
	}
	s, err := mongoproc.Start(context.Background(), mongoproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.URI()
}

// MongoDB starts FerretDB as Mongo does and connects to database db; the connection closes at cleanup.
func MongoDB(t testing.TB, db string) *mongodb.Conn {
	t.Helper()
	c, err := mongodb.Connect(context.Background(), mongodb.Options{URI: Mongo(t), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.WithoutCancel(context.Background())) })
	return c
}

// dropNewDatabases drops, when t ends, every database of the server at uri that did not exist when
// it began (only ever called for ExternalMongoEnv).
func dropNewDatabases(t testing.TB, uri string) {
	t.Helper()
	ctx := context.Background()
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.Client.ListDatabaseNames(ctx, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer c.Close(context.WithoutCancel(ctx))
		after, err := c.Client.ListDatabaseNames(ctx, map[string]any{})
		if err != nil {
			t.Errorf("list databases of %s: %v", ExternalMongoEnv, err)
			return
		}
		for _, db := range after {
			if !slices.Contains(before, db) {
				_ = c.Client.Database(db).Drop(ctx)
			}
		}
	})
}

// PackageMongo starts one FerretDB for a whole test package (from TestMain, where there is no t);
// stop ends it and removes its files. With ExternalMongoEnv set it returns that server's URI and
// a stop that does nothing.
func PackageMongo() (uri string, stop func(), err error) {
	if uri := os.Getenv(ExternalMongoEnv); uri != "" {
		return uri, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "ownersync-mongo")
	if err != nil {
		return "", nil, err
	}
	s, err := mongoproc.Start(context.Background(), mongoproc.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return s.URI(), func() { s.Stop(); os.RemoveAll(dir) }, nil
}

// MainWithMongo is a whole TestMain: one FerretDB for the package (each test then uses a database
// of its own), its URI in *uri, the tests, the stop, the exit.
func MainWithMongo(m *testing.M, uri *string) {
	u, stop, err := PackageMongo()
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
	*uri = u
	code := m.Run()
	stop()
	os.Exit(code)
}

// Infra is NATS and FerretDB for a test that runs whole services.
type Infra struct {
	NATS     *embednats.Server
	NATSURL  string
	MongoURI string
}

// Start starts NATS and FerretDB in t's temp dirs; both stop at cleanup.
func Start(t testing.TB) *Infra {
	t.Helper()
	ns := NATSServer(t)
	return &Infra{NATS: ns, NATSURL: ns.URL(), MongoURI: Mongo(t)}
}

// Env returns a getenv over the infra's URLs plus extra variables.
func (i *Infra) Env(extra map[string]string) func(string) string {
	env := map[string]string{"NATS_URL": i.NATSURL, "MONGODB_URI": i.MongoURI, "OWNERSYNC_MONGODB_DATABASE": "ownersync"}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// Listen binds 127.0.0.1:0 for a server the test starts; the listener closes at cleanup.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// Service runs a service in process on a listener bound here until t ends, waits until its /readyz
// answers 200, and returns the bound address (host:port).
func Service(t testing.TB, name string, run servicekit.RunFunc, getenv func(string) string) string {
	t.Helper()
	return serve(t, name, run, servicekit.Env{Listener: Listen(t)}, getenv)
}

// ServiceInternal runs a service as Service does with a second, internal listener for /healthz,
// /readyz and /metrics (OWNERSYNC_INTERNAL_ADDR's), waits on the internal /readyz, and returns both
// bound addresses.
func ServiceInternal(t testing.TB, name string, run servicekit.RunFunc, getenv func(string) string) (public, internal string) {
	t.Helper()
	env := servicekit.Env{Listener: Listen(t), InternalListener: Listen(t)}
	return serve(t, name, run, env, getenv), env.InternalListener.Addr().String()
}

// Serve runs a service in process on l (bound by the caller, who needs its address before the
// service starts) until t ends, waits until its /readyz answers 200, and returns l's address.
func Serve(t testing.TB, name string, run servicekit.RunFunc, l net.Listener, getenv func(string) string) string {
	t.Helper()
	return serve(t, name, run, servicekit.Env{Listener: l}, getenv)
}

// serve runs the service on env's listeners; it must return within 10 s of cancellation.
func serve(t testing.TB, name string, run servicekit.RunFunc, env servicekit.Env, getenv func(string) string) string {
	t.Helper()
	addr := env.Listener.Addr().String()
	ready := addr
	if env.InternalListener != nil {
		ready = env.InternalListener.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env.Args, env.Getenv, env.Stdout = []string{name}, getenv, &testWriter{t: t, name: name}
	go func() { done <- run(ctx, env) }()
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
	if err := readiness.Wait(ctx, "http://"+ready+"/readyz", 30*time.Second, done); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return addr
}

// Eventually polls cond every 20 ms until it holds, failing t if within passes first.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyState(t, within, what, func() (bool, string) { return cond(), "" })
}

// EventuallyState polls cond as Eventually does; cond also describes the state it saw, and the
// failure names the last one.
func EventuallyState(t testing.TB, within time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if state != "" {
				t.Fatalf("timed out after %s waiting for %s; last state: %s", within, what, state)
			}
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

// Buffer is a bytes.Buffer safe for concurrent writers (a service's log while the test reads it).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
