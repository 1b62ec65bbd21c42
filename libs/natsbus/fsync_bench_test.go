package natsbus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPublishFsync measures what deployments/nats ships, sync_interval: always (fsync every
// write before the acknowledgement, after Jepsen's 2025 NATS analysis), against the server default
// (fsync every two minutes), on this machine's disk: one publisher waiting for each ack (ingress
// publishes a webhook's events and waits), and many at once.
func BenchmarkPublishFsync(b *testing.B) {
	for _, mode := range []struct {
		name   string
		always bool
	}{{"default", false}, {"always", true}} {
		b.Run("sync="+mode.name, func(b *testing.B) {
			opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.TempDir(),
				SyncAlways: mode.always, NoLog: true, NoSigs: true}
			if mode.always {
				opts.SyncInterval = 2 * time.Minute // as the config parser sets it with "always"
			}
			ns, err := server.NewServer(opts)
			if err != nil {
				b.Fatal(err)
			}
			ns.Start()
			defer ns.Shutdown()
			if !ns.ReadyForConnections(10 * time.Second) {
				b.Fatal("nats-server not ready")
			}
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "B", Subjects: []string{"b.>"}, Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 512) // about one owner-change event
			b.Run("sequential", func(b *testing.B) {
				b.SetBytes(int64(len(payload)))
				for i := range b.N {
					if _, err := js.Publish(ctx, "b.seq", payload, jetstream.WithMsgID("s"+strconv.Itoa(i))); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetBytes(int64(len(payload)))
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := js.Publish(ctx, "b.par", payload); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
