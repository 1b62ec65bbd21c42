package natsbus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ownersync/ownersync/workbench/embednats"
	"github.com/ownersync/ownersync/workbench/harness"
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
			o := embednats.Options{SyncAlways: mode.always}
			if mode.always {
				o.SyncInterval = 2 * time.Minute // as the config parser sets it with "always"
			}
			ns := harness.NATSServerWith(b, o)
			nc, err := nats.Connect(ns.URL())
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
