package servicekit

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/embednats"
	"github.com/ownersync/ownersync/libs/envconfig"
)

// TestStartFailureClosesWhatOpened: a failure after NATS connected (MongoDB unreachable) returns an
// error and closes NATS and telemetry instead of panicking on a half-built Base.
func TestStartFailureClosesWhatOpened(t *testing.T) {
	ns, err := embednats.Start(embednats.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	env := map[string]string{"NATS_URL": ns.URL(), "MONGODB_URI": "mongodb://127.0.0.1:1/"}
	getenv := func(k string) string { return env[k] }
	cfg := ReadConfig(envconfig.New(getenv), "test", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg, getenv, io.Discard)
	if err == nil || b != nil {
		t.Fatalf("Start = %v, %v; want an error and no Base", b, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ns.NumClients() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d NATS clients left connected", ns.NumClients())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
