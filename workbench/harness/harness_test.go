package harness_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestRestartComesBackWhereItWas: a restarted server serves the same URL and store, the connection
// reconnects by itself, and streams in file storage keep their messages.
func TestRestartComesBackWhereItWas(t *testing.T) {
	n := harness.JetStreamWith(t, streams.Options{})
	ctx := context.Background()
	if _, err := n.JS.Publish(ctx, "crm.owner.changed.acme.hubspot", []byte("x")); err != nil {
		t.Fatal(err)
	}
	url := n.URL
	n.Stop()
	harness.Eventually(t, 5*time.Second, "disconnect", func() bool { return !n.NC.IsConnected() })
	n.Restart(t)
	if n.URL != url {
		t.Fatalf("restarted on %s, want %s", n.URL, url)
	}
	harness.Eventually(t, 10*time.Second, "reconnect", n.NC.IsConnected)
	s, err := n.JS.Stream(ctx, "CRM")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("CRM stream holds %d messages after the restart, want 1", info.State.Msgs)
	}
}

// TestEventuallyStateNamesTheLastState: the failure message carries the last state cond saw.
func TestEventuallyStateNamesTheLastState(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		harness.EventuallyState(ft, 50*time.Millisecond, "never", func() (bool, string) { n++; return false, "seen " + string(rune('0'+n%10)) })
	}()
	<-done
	if ft.msg == "" {
		t.Fatal("EventuallyState returned without failing")
	}
	if want := "waiting for never; last state: seen "; !strings.Contains(ft.msg, want) {
		t.Fatalf("failure %q does not contain %q", ft.msg, want)
	}
}

type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

// TestNATSClusterElectsAndReplicates: three nodes behind the test's front doors form a JetStream
// cluster that holds an R3 stream.
func TestNATSClusterElectsAndReplicates(t *testing.T) {
	nodes := harness.NATSCluster(t, 3)
	harness.Eventually(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range nodes {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	nc, err := nats.Connect(nodes[0].URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	harness.Eventually(t, 30*time.Second, "an R3 stream", func() bool {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		return err == nil
	})
	if _, err := js.Publish(ctx, "r3.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
}
