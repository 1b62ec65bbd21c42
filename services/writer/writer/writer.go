// Package writer runs the writer service: the one way to start it, used by its main, the dev stack
// and tests.
package writer

import (
	"context"

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
	"github.com/ownersync/ownersync/services/writer/internal/events"
)

// Run starts writer and blocks until ctx is cancelled or a part fails; it then stops the consumers,
// flushes pending CRM writes and history, and closes NATS, MongoDB and telemetry.
func Run(ctx context.Context, env servicekit.Env) error {
	return servicekit.Run(ctx, env, config.Load, run)
}

// run assembles the writeback engine, its history and the consumers on the started base.
func run(ctx context.Context, env servicekit.Env, cfg config.Config, base *servicekit.Base) error {
	getenv := env.Getenv

	if err := mongodb.EnsureIndexes(ctx, base.Mongo.DB, ownerhistory.Indexes()); err != nil {
		return err
	}
	buckets, err := natsbus.DeclareKV(ctx, base.Bus.JS, streams.KVConfigs(cfg.Base.Streams))
	if err != nil {
		return err
	}
	tenants := tenantstore.NewCache(tenantstore.New(base.Mongo.DB, nil), cfg.Base.TenantCache)
	stopFollow, err := base.FollowTenants(ctx, tenants)
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
		Secrets:        secretbox.Resolver(base.Stored, &secretref.Resolver{Namespace: cfg.Base.Connections.Secrets, Getenv: getenv}),
		Stored:         base.Stored,
		AnyCRMHost:     cfg.Base.Connections.AnyCRMHost,
		TracerProvider: base.Tel.TracerProvider,
		MeterProvider:  base.Tel.MeterProvider,
		Tuning:         cfg.Tuning,
		Log:            base.Log,
	})
	if err != nil {
		return err
	}

	cs := events.Consumers(core.Engine, cfg.Concurrency)
	consumers := make([]*natsbus.Consumer, len(cs))
	for i, c := range cs {
		if consumers[i], err = base.Consumer(ctx, c.Options); err != nil {
			return err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return tenants.Run(gctx) })
	for i, c := range consumers {
		g.Go(func() error { return c.Run(gctx, cs[i].Handle) })
	}
	g.Go(func() error { base.Ready(gctx); return nil })
	err = g.Wait()
	if cerr := core.Close(context.WithoutCancel(ctx)); err == nil {
		err = cerr
	}
	return err
}
