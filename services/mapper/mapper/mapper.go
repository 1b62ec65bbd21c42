// Package mapper runs the mapper service: the one way to start it, used by its main, the dev stack
// and tests.
package mapper

import (
	"context"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

// Run starts mapper and blocks until ctx is cancelled or a part fails.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	base, err := servicekitStart(ctx, cfg, getenv, stdout)
	if err != nil {
		return err
	}
	defer base.Close(context.WithoutCancel(ctx))

	idx := append(append([]mongodb.Index{}, tenantstore.Indexes...), mongostore.Indexes...)
	if err := mongodb.EnsureIndexes(ctx, base.Mongo.DB, idx); err != nil {
		return err
	}
	tenants := tenantstore.New(base.Mongo.DB, nil)
	if cfg.TenantsFile != "" {
		seed, err := tenantstore.LoadSeed(cfg.TenantsFile)
		if err != nil {
			return err
		}
		for i := range seed {
			if err := tenants.Put(ctx, &seed[i]); err != nil {
				return err
			}
		}
		base.Log.Info("tenants seeded", "file", cfg.TenantsFile, "count", len(seed))
	}
	store := mongostore.New(base.Mongo.DB, nil)
	h := &handlers{store: store, log: base.Log}

	// mapper-users: platform user changes. AckWait 30 s covers a slow MongoDB write; MaxDeliver 10
	// with backoff up to a minute rides out a MongoDB failover before dead-lettering.
	platformUsers, err := natsbus.NewConsumer(ctx, base.Bus, base.ConsumerOptions(natsbus.ConsumerOptions{
		Stream: streams.Platform,
		Config: jetstream.ConsumerConfig{
			Durable:        "mapper-users",
			FilterSubjects: []string{"platform.user.changed.>"},
			AckWait:        30 * time.Second,
			MaxDeliver:     10,
			MaxAckPending:  256,
		},
		Concurrency: 8,
	}))
	if err != nil {
		return err
	}
	base.Health.Add("consumer mapper-users", platformUsers.Ready)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return platformUsers.Run(gctx, h.platformUserChanged) })
	g.Go(func() error { base.Ready(gctx); return nil })
	return g.Wait()
}
