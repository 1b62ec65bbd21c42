// Package writer runs the writer service: the one way to start it, used by its main, the dev stack
// and tests.
package writer

import (
	"context"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/writer/internal/app"
	"github.com/ownersync/ownersync/services/writer/internal/config"
)

// Run starts writer and blocks until ctx is cancelled or a part fails; it then stops the consumers,
// flushes pending CRM writes and history, and closes NATS, MongoDB and telemetry.
func Run(ctx context.Context, env servicekit.Env) error {
	getenv := env.Getenv
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	base, err := servicekit.Start(ctx, cfg.Base, env)
	if err != nil {
		return err
	}
	defer base.Close(context.WithoutCancel(ctx))

	if err := mongodb.EnsureIndexes(ctx, base.Mongo.DB, ownerhistory.Indexes()); err != nil {
		return err
	}
	buckets, err := natsbus.DeclareKV(ctx, base.Bus.JS, streams.KVConfigs(cfg.Base.Streams))
	if err != nil {
		return err
	}
	tenants := tenantstore.NewCache(tenantstore.New(base.Mongo.DB, nil))
	if err := tenants.Refresh(ctx); err != nil {
		return err
	}
	stopFollow, err := tenants.Follow(base.Bus.NC)
	if err != nil {
		return err
	}
	defer stopFollow()
	core, err := app.New(ctx, app.Options{
		Records:        buckets[streams.RecordsBucket],
		Mappings:       buckets[streams.MappingsBucket],
		Coord:          buckets[streams.CoordBucket],
		CRMUsers:       buckets[streams.CRMUsersBucket],
		DB:             base.Mongo.DB,
		Tenants:        tenants,
		Publisher:      base.Pub,
		Secrets:        secretbox.Resolver(base.Stored, &secretref.Resolver{Getenv: getenv, ReadFile: os.ReadFile}),
		Stored:         base.Stored,
		TracerProvider: base.Tel.TracerProvider,
		MeterProvider:  base.Tel.MeterProvider,
		Tuning:         cfg.Tuning,
		Log:            base.Log,
	})
	if err != nil {
		return err
	}

	// Both consumers keep up to Concurrency changes in flight so that batches of 200 (Salesforce)
	// and 100 (HubSpot) fill while earlier ones are being written. AckWait 60 s: the loop marks a
	// message in progress every 20 s while it waits for its batch, so a slow CRM does not cause a
	// redelivery. MaxDeliver 20 with a NAK delay growing to 5 minutes rides out a CRM outage of about
	// an hour (rate-limit pauses ask for their own delay) before a change is dead-lettered.
	consumer := func(durable, stream, filter string) (*natsbus.Consumer, error) {
		return natsbus.NewConsumer(ctx, base.Bus, base.ConsumerOptions(natsbus.ConsumerOptions{
			Stream: stream,
			Config: jetstream.ConsumerConfig{
				Durable:        durable,
				FilterSubjects: []string{filter},
				AckWait:        60 * time.Second,
				MaxDeliver:     20,
				MaxAckPending:  cfg.Concurrency,
			},
			Concurrency: cfg.Concurrency,
			NakBase:     time.Second,
			NakMax:      5 * time.Minute,
		}))
	}
	crmOwners, err := consumer("writer-owners", streams.CRM, "crm.owner.changed.>")
	if err != nil {
		return err
	}
	platformOwners, err := consumer("writer-platform-owners", streams.Platform, "platform.owner.changed.>")
	if err != nil {
		return err
	}
	base.Health.Add("consumer writer-owners", crmOwners.Ready)
	base.Health.Add("consumer writer-platform-owners", platformOwners.Ready)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return tenants.Run(gctx) })
	g.Go(func() error { return crmOwners.Run(gctx, core.CRMHandler) })
	g.Go(func() error { return platformOwners.Run(gctx, core.PlatformHandler) })
	g.Go(func() error { base.Ready(gctx); return nil })
	err = g.Wait()
	if cerr := core.Close(context.WithoutCancel(ctx)); err == nil {
		err = cerr
	}
	return err
}
