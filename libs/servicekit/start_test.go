package servicekit_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestStartFailureClosesWhatOpened: a failure after NATS connected (MongoDB unreachable) returns an
// error and closes NATS and telemetry instead of panicking on a half-built Base.
func TestStartFailureClosesWhatOpened(t *testing.T) {
	ns := harness.NATSServer(t)
	env := map[string]string{"NATS_URL": ns.URL(), "MONGODB_URI": "mongodb://127.0.0.1:1/"}
	getenv := func(k string) string { return env[k] }
	cfg := servicekit.ReadConfig(envconfig.New(getenv), "test", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := servicekit.Start(ctx, cfg, servicekit.Env{Getenv: getenv, Stdout: io.Discard})
	if err == nil || b != nil {
		t.Fatalf("Start = %v, %v; want an error and no Base", b, err)
	}
	harness.Eventually(t, 5*time.Second, "no NATS client left connected", func() bool { return ns.NumClients() == 0 })
}

// TestHTTPListenerFromInheritedDescriptor: OWNERSYNC_HTTP_LISTEN_FD names a listening socket the
// service serves on (what a parent that restarts the service hands down), instead of binding.
func TestHTTPListenerFromInheritedDescriptor(t *testing.T) {
	parent := harness.Listen(t)
	f, err := parent.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	getenv := func(k string) string {
		return map[string]string{"OWNERSYNC_HTTP_LISTEN_FD": strconv.Itoa(int(f.Fd()))}[k]
	}
	cfg := servicekit.ReadConfig(envconfig.New(getenv), "test", "127.0.0.1:1")
	l, err := servicekit.HTTPListener(cfg, servicekit.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().String() != parent.Addr().String() {
		t.Fatalf("listener on %s, want the inherited %s", l.Addr(), parent.Addr())
	}
	none, err := servicekit.HTTPListener(servicekit.ReadConfig(envconfig.New(func(string) string { return "" }), "test", ":0"), servicekit.Env{})
	if err != nil || none != nil {
		t.Fatalf("without a descriptor: %v, %v; want nil (bind OWNERSYNC_HTTP_ADDR)", none, err)
	}
}
