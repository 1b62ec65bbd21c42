// Package ingress runs the ingress service: the one way to start it, used by its main, the dev
// stack and tests.
package ingress

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/libs/webhookstats"
	"github.com/ownersync/ownersync/services/ingress/internal/bodybudget"
	"github.com/ownersync/ownersync/services/ingress/internal/config"
	"github.com/ownersync/ownersync/services/ingress/internal/platformapi"
)

// Run starts ingress and blocks until ctx is cancelled or a part fails; it then shuts down HTTP,
// NATS, MongoDB and telemetry in that order.
func Run(ctx context.Context, env servicekit.Env) error {
	return servicekit.Run(ctx, env, config.Load, run)
}

// run connects the webhook edge (tenant cache, body budget, receipts, the platform API) on the
// started base.
func run(ctx context.Context, env servicekit.Env, cfg config.Config, base *servicekit.Base) error {
	getenv := env.Getenv

	tenants := tenantstore.NewCache(tenantstore.New(base.Mongo.DB, nil), cfg.Base.TenantCache)
	tenants.Logger = base.Log
	stopFollow, err := base.FollowTenants(ctx, tenants)
	if err != nil {
		return err
	}
	defer stopFollow()
	meter := base.Tel.Meter("github.com/ownersync/ownersync/services/ingress")
	// One cap of in-flight body bytes for every endpoint of the process.
	bodies := bodybudget.New(cfg.MaxInflightBodyBytes, meter)
	platformapi.New(platformapi.Config{
		Bodies:         bodies,
		Tenants:        tenants,
		Token:          cfg.PlatformToken,
		BodyLimit:      cfg.PlatformBodyLimit,
		PublishTimeout: cfg.PublishTimeout,
		Logger:         base.Log,
		Meter:          meter,
	}, base.Pub).Register(base.HTTP.E)
	receipts := webhookstats.NewRecorder(base.Mongo.DB, base.Log)
	if err := registerWebhooks(cfg, base, tenants, bodies, receipts, getenv); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return tenants.Run(gctx) })
	g.Go(func() error { return receipts.Run(gctx) })
	g.Go(func() error { base.Ready(gctx); return nil })
	return g.Wait()
}
