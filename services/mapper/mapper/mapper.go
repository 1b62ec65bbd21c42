// Package mapper runs the mapper service: the one way to start it, used by its main, the dev stack
// and tests.
package mapper

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/services/mapper/internal/crm"
	"github.com/ownersync/ownersync/services/mapper/internal/events"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi/dlq"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
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

	idx := append(append(append([]mongodb.Index{}, tenantstore.Indexes...), mongostore.Indexes...), auth.Indexes...)
	if err := mongodb.EnsureIndexes(ctx, base.Mongo.DB, idx); err != nil {
		return err
	}
	tenants := tenantstore.New(base.Mongo.DB, nil)
	// The core reads tenants through a cache, refreshed here at once when mapper itself saves a
	// tenant (so a change is visible to the next request) and announced to the other services'
	// caches (and other mapper replicas, which follow the announcements).
	cache := tenantstore.NewCache(tenants)
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
	if err := cache.Refresh(ctx); err != nil {
		return err
	}
	stopFollow, err := cache.Follow(base.Bus.NC)
	if err != nil {
		return err
	}
	defer stopFollow()
	buckets, err := natsbus.DeclareKV(ctx, base.Bus.JS, streams.KVConfigs(cfg.Base.Streams))
	if err != nil {
		return err
	}
	store := mongostore.New(base.Mongo.DB, nil)
	view := kvview.New(base.Bus.JS, buckets[streams.MappingsBucket])
	pub := events.NewPublisher(base.Pub, nil)
	writer := changes.New(store, view, pub, nil)
	dirs := crm.Factory{Clients: crmconn.New(crmconn.Config{Secrets: &secretref.Resolver{Getenv: getenv, ReadFile: os.ReadFile},
		Timeout: cfg.CRMTimeout, TracerProvider: base.Tel.TracerProvider, Metrics: crmcall.NewMetrics(base.Tel.MeterProvider)})}
	runner := syncusers.New(ctx, syncusers.Options{Writer: writer, Store: store, Tenants: cache, Directories: dirs, Reports: pub,
		AdminURL: cfg.AdminURL, Log: base.Log, Meter: base.Tel.MeterProvider, Tracer: base.Tel.TracerProvider})
	defer runner.Wait()
	svc := app.New(app.Options{Writer: writer, Store: store, View: view, Tenants: cache, Directories: dirs, Runner: runner,
		Provisions: pub, Log: base.Log})

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

	tokens, err := auth.New(auth.Options{OperatorToken: cfg.OperatorToken, TenantTokens: cfg.TenantTokens, DB: base.Mongo.DB})
	if err != nil {
		return err
	}
	dlqs := dlq.New(base.Bus.JS)
	admin := httpapi.FromCore(svc)
	readTenants := cachedTenants{Store: tenants, cache: cache}
	httpapi.New(httpapi.Config{}, admin, readTenants, tokens, dlqs, base.Log).Register(base.HTTP.E)
	console.New(console.Config{Secure: strings.HasPrefix(cfg.AdminURL, "https://"), PlatformUserURL: cfg.PlatformUserURL},
		admin, readTenants, tokens, dlqs, base.Log).Register(base.HTTP.E)

	h := events.NewHandlers(svc, store, base.Log)
	onDead := func(ctx context.Context, m *natsbus.Message, err error) { h.DeadLetter(ctx, m, err) }

	// Two consumer contracts. No consumer sets BackOff: with BackOff the server uses its first step
	// as the first delivery's AckWait, which would redeliver a message still being handled. Failed
	// handlings are retried by the loop's NakWithDelay (NakBase doubling to NakMax, or a handler's
	// RetryAfter) instead, and natsbus marks slow handlings in progress every AckWait/3.
	//
	// storeWork — a few MongoDB lookups and writes per event: AckWait 30 s covers a slow MongoDB
	// write plus the rule run of every connected provider; MaxDeliver 10 with NAK delays doubling
	// from 1 s to a minute rides out a MongoDB failover before dead-lettering (the DLQ is
	// replayable, and Salesforce's own retry window is 24 h); MaxAckPending 256 keeps a burst (a
	// directory import) flowing while the per-tenant lock serialises the writes.
	storeWork := natsbus.ConsumerOptions{
		Config:      jetstream.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 256},
		Concurrency: 8, NakBase: time.Second, NakMax: time.Minute,
	}
	// crmCalls — work that may call the CRM: AckWait 2 min covers the client's 30 s timeout with a
	// token refresh and a retry; MaxDeliver 8 with NAK delays doubling from 5 s to 5 minutes rides
	// out a CRM outage or a rate-limit pause of several minutes; MaxAckPending is kept small
	// (set per consumer) because these calls share the tenant's API quota with the writer.
	crmCalls := natsbus.ConsumerOptions{
		Config:  jetstream.ConsumerConfig{AckWait: 2 * time.Minute, MaxDeliver: 8},
		NakBase: 5 * time.Second, NakMax: 5 * time.Minute,
	}
	consumer := func(contract natsbus.ConsumerOptions, stream, durable, filter string, maxAckPending, concurrency int) (*natsbus.Consumer, error) {
		o := contract
		o.Service, o.Stream, o.OnDeadLetter = "mapper", stream, onDead
		o.Config.Durable, o.Config.FilterSubjects = durable, []string{filter}
		if maxAckPending > 0 {
			o.Config.MaxAckPending, o.Concurrency = maxAckPending, concurrency
		}
		c, err := natsbus.NewConsumer(ctx, base.Bus, base.ConsumerOptions(o))
		if err == nil {
			base.Health.Add("consumer "+durable, c.Ready)
		}
		return c, err
	}
	// mapper-users and mapper-crm-users: platform and CRM user changes (Salesforce User outbound
	// messages, Sync Users diffs).
	platformUsers, err := consumer(storeWork, streams.Platform, "mapper-users", "platform.user.changed.>", 0, 0)
	if err != nil {
		return err
	}
	crmUsers, err := consumer(storeWork, streams.CRM, "mapper-crm-users", "crm.user.changed.>", 0, 0)
	if err != nil {
		return err
	}
	// mapper-refresh: re-read one CRM user from the CRM (32 in flight, 2 at a time).
	refresh, err := consumer(crmCalls, streams.Sync, "mapper-refresh", "user.refresh.>", 32, 2)
	if err != nil {
		return err
	}
	// mapper-owner-activity: CRM owner changes, for auto-provisioning (rule 7). Most cost one tenant
	// lookup (the setting is off by default); a change to an unknown owner re-reads it from the CRM,
	// hence crmCalls, with 64 in flight so an owner-change burst gets through. Redelivery is
	// harmless: the request's event id deduplicates it and a recorded request is not published again.
	ownerActivity, err := consumer(crmCalls, streams.CRM, "mapper-owner-activity", "crm.owner.changed.>", 64, 4)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return cache.Run(gctx) })
	g.Go(func() error { return platformUsers.Run(gctx, h.PlatformUserChanged) })
	g.Go(func() error { return crmUsers.Run(gctx, h.CRMUserChanged) })
	g.Go(func() error { return refresh.Run(gctx, h.UserRefresh) })
	g.Go(func() error { return ownerActivity.Run(gctx, h.OwnerChanged) })
	g.Go(func() error {
		return runner.Schedule(gctx, cfg.SchedulerInterval, func(ctx context.Context) ([]tenant.Tenant, error) { return tenants.List(ctx) })
	})
	g.Go(func() error { base.Ready(gctx); return nil })
	return g.Wait()
}
