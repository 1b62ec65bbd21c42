// Package mapper runs the mapper service: the one way to start it, used by its main, the dev stack
// and tests.
package mapper

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/libs/webhookstats"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/services/mapper/internal/coordkv"
	"github.com/ownersync/ownersync/services/mapper/internal/crm"
	"github.com/ownersync/ownersync/services/mapper/internal/events"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi/dlq"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
)

// Run starts mapper and blocks until ctx is cancelled or a part fails.
func Run(ctx context.Context, env servicekit.Env) error {
	return servicekit.Run(ctx, env, config.Load, run)
}

// run builds the core with its stores, views, CRM directories, Sync Users, the admin API, the
// console and the consumers on the started base.
func run(ctx context.Context, env servicekit.Env, cfg config.Config, base *servicekit.Base) error {
	getenv := env.Getenv

	tenants := tenantstore.New(base.Mongo.DB, nil)
	// Tenants saved before the unique source indexes get their keys first, so that the indexes
	// can be built; a source two tenants share stays refused until the operator resolves it.
	conflicts, err := tenants.ClaimSources(ctx)
	if err != nil {
		return err
	}
	for _, c := range conflicts {
		base.Log.Error("a source is claimed by more than one tenant; its webhooks are refused until an operator changes one tenant", "source", c)
	}
	idx := append(append(append(append([]mongodb.Index{}, tenantstore.Indexes...), mongostore.Indexes...), auth.Indexes...), auth.SessionIndexes...)
	idx = append(idx, connect.FlowIndexes...)
	if err := mongodb.EnsureIndexes(ctx, base.Mongo.DB, idx); err != nil {
		return err
	}
	tenants.Policy = &cfg.Base.Connections
	// The core reads tenants through a cache, refreshed here at once when mapper itself saves a
	// tenant (so a change is visible to the next request) and announced to the other services'
	// caches (and other mapper replicas, which follow the announcements).
	cache := tenantstore.NewCache(tenants, cfg.Base.TenantCache)
	announce := tenantstore.Announce(base.Bus.NC)
	tenants.OnChange = func(ctx context.Context, id string) {
		if err := cache.Refresh(ctx); err != nil {
			base.Log.Warn("refresh tenant cache", "tenant", id, "err", err)
		}
		announce(ctx, id)
	}
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
	stopFollow, err := base.FollowTenants(ctx, cache)
	if err != nil {
		return err
	}
	defer stopFollow()
	buckets, err := natsbus.DeclareKV(ctx, base.Bus.JS, streams.KVConfigs(cfg.Base.Streams))
	if err != nil {
		return err
	}
	store := mongostore.New(base.Mongo.DB, mongostore.Options{BulkWrites: cfg.BulkWrites})
	view := kvview.New(base.Bus.JS, buckets[streams.MappingsBucket])
	userDir := kvview.NewDirectory(base.Bus.JS, buckets[streams.CRMUsersBucket])
	pub := events.NewPublisher(base.Pub, nil)
	writer := changes.New(store, view, pub, nil)
	rewrapStored(ctx, base.Stored, base.Log)
	// Rule runs of a tenant and provider, and scheduled Sync Users firings, are agreed between the
	// mapper replicas in the ownersync_coord bucket.
	shared := coordkv.New(coordkv.Options{KV: buckets[streams.CoordBucket], Log: base.Log})
	writer.UseLeases(shared)
	resolver := secretbox.Resolver(base.Stored, &secretref.Resolver{Namespace: cfg.Base.Connections.Secrets, Getenv: getenv})
	migrateSharedKeys(ctx, tenants, resolver, base.Stored, base.Log)
	clients := crmconn.New(crmconn.Config{Tenants: cache, Secrets: resolver, Stored: base.Stored, AnyCRMHost: cfg.Base.Connections.AnyCRMHost,
		Timeout: cfg.CRMTimeout, TracerProvider: base.Tel.TracerProvider, Metrics: crmcall.NewMetrics(base.Tel.MeterProvider)})
	dirs := crm.Factory{Clients: clients}
	runner := syncusers.New(ctx, syncusers.Options{Writer: writer, Store: store, Tenants: cache, Directories: dirs, UserDirectory: userDir, TimeZones: tenants, Reports: pub,
		AdminURL: cfg.AdminURL, ListCap: cfg.SyncListCap, LockTTL: cfg.SyncLockTTL, Log: base.Log, Claims: shared,
		MaxUsers: cfg.SyncMaxUsers, MaxPages: cfg.SyncMaxPages, Deadline: cfg.SyncRunDeadline,
		Meter: base.Tel.MeterProvider, Tracer: base.Tel.TracerProvider})
	defer runner.Wait()
	svc := app.New(app.Options{Writer: writer, Store: store, View: view, Tenants: cache, Directories: dirs, UserDirectory: userDir, Runner: runner,
		Provisions: pub, LockWait: cfg.EventLockWait, Log: base.Log})

	all, err := tenants.List(ctx)
	if err != nil {
		return err
	}
	rebuilt, err := svc.RebuildViewIfBehind(ctx, all)
	if err != nil {
		return fmt.Errorf("rebuild %s view: %w", streams.MappingsBucket, err)
	}
	if len(rebuilt) > 0 {
		base.Log.Info("mappings view rebuilt from MongoDB", "providers", rebuilt)
	}
	if rebuilt, err = svc.RebuildDirectoryIfMissing(ctx, all); err != nil {
		return fmt.Errorf("rebuild %s view: %w", streams.CRMUsersBucket, err)
	}
	if len(rebuilt) > 0 {
		base.Log.Info("crm user directory view rebuilt from MongoDB", "providers", rebuilt)
	}

	tokens, err := auth.New(auth.Options{OperatorToken: cfg.OperatorToken, PreviousOperatorToken: cfg.PreviousOperatorToken,
		PreviousOperatorTokenUntil: cfg.PreviousOperatorTokenUntil, TenantTokens: cfg.TenantTokens, DB: base.Mongo.DB})
	if err != nil {
		return err
	}
	dlqs := dlq.New(base.Bus.JS)
	readTenants := cachedTenants{Store: tenants, cache: cache}
	httpapi.New(cfg.Admin, svc, readTenants, tokens, dlqs, base.Log).Register(base.HTTP.E)
	console.New(console.Config{Secure: strings.HasPrefix(cfg.AdminURL, "https://"), PlatformUserURL: cfg.PlatformUserURL,
		Sessions:               auth.NewSessions(base.Mongo.DB),
		ClientSignInsPerMinute: float64(cfg.SignInClientPerMinute), ClientSignInBurst: cfg.SignInClientPerMinute,
		SignInsPerSecond: float64(cfg.SignInGlobalPerSecond), SignInBurst: 10 * cfg.SignInGlobalPerSecond},
		svc, readTenants, tokens, dlqs, base.Log).WithConnections(console.Connections{
		Service: connectService(cfg, connect.NewFlows(base.Mongo.DB), tenants, base.Stored, clients), Receipts: webhookstats.NewReader(base.Mongo.DB),
		KeyOverlap: cfg.Admin.KeyOverlap}).Register(base.HTTP.E)

	h := events.NewHandlers(svc, store, base.Log)
	cs := h.Consumers()
	consumers := make([]*natsbus.Consumer, len(cs))
	for i, c := range cs {
		if consumers[i], err = base.Consumer(ctx, c.Options); err != nil {
			return err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return cache.Run(gctx) })
	for i, c := range cs {
		g.Go(func() error { return consumers[i].Run(gctx, c.Handle) })
	}
	g.Go(func() error {
		return runner.Schedule(gctx, cfg.SchedulerInterval, func(ctx context.Context) ([]tenant.Tenant, error) { return tenants.List(ctx) })
	})
	g.Go(func() error { base.Ready(gctx); return nil })
	return g.Wait()
}
