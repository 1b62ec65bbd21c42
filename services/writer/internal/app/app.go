// Package app assembles the writer's core from its parts, so that the service's run function only
// connects infrastructure and starts consumers: records and mappings KV buckets, the mappings view,
// per-tenant CRM clients, the rate limiter, the batcher with both CRM adapters, the history store,
// the publisher and the writeback engine, plus the consumer handlers.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/budget"
	"github.com/ownersync/ownersync/services/writer/internal/config"
	"github.com/ownersync/ownersync/services/writer/internal/crmclients"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/events"
	"github.com/ownersync/ownersync/services/writer/internal/historystore"
	"github.com/ownersync/ownersync/services/writer/internal/mappingview"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/services/writer/internal/recordstate"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// Options are the writer core's collaborators and tuning.
type Options struct {
	// Records and Mappings are the ownersync_records and ownersync_mappings buckets.
	Records, Mappings jetstream.KeyValue
	// Coord is the ownersync_coord bucket holding the CRM API budget per (tenant, provider) that all
	// writer replicas share (package budget). nil: this process paces alone (a single replica).
	Coord jetstream.KeyValue
	// CRMUsers is the ownersync_crm_users directory bucket (every CRM user's kind and active flag);
	// without it the writer knows only mapped users and trusts the fallback owner.
	CRMUsers jetstream.KeyValue
	// DB holds the ownership_history collection (its indexes: ownerhistory.Indexes()).
	DB *mongo.Database
	// Tenants returns tenant configuration; *tenantstore.Cache implements it.
	Tenants crmconn.Tenants
	// Publisher publishes to JetStream; libs/natsbus's Publisher implements it.
	Publisher events.ProtoPublisher
	// Secrets resolves secret references inside the operator's namespace (nil: nothing resolves;
	// secretbox.Resolver adds the stored: references of Connect flows).
	Secrets crmconn.Resolver
	// Stored keeps refresh tokens a CRM rotates (nil: not kept).
	Stored *secretbox.Store
	// AnyCRMHost lets the CRM clients call any host (crmconn.Config.AnyCRMHost).
	AnyCRMHost bool
	// HTTPClient and TracerProvider are the CRM clients' transport and tracing.
	HTTPClient     *http.Client
	TracerProvider trace.TracerProvider
	// MeterProvider records the CRM call, verdict and batch metrics (nil: not recorded).
	MeterProvider metric.MeterProvider
	// Tuning is the configuration's (config.Load holds the defaults); it is used as it is.
	Tuning config.Tuning
	// DetachedHistory lets handlers go on without waiting for their history inserts (see
	// historystore.Options.Detached): faster on FerretDB/SQLite, at the risk of losing the newest
	// entries in a crash. Insert failures are logged.
	DetachedHistory bool
	// Log receives what goes wrong outside a message's handling (quota alerts that fail to publish).
	Log *slog.Logger
}

// App is the assembled core.
type App struct {
	Engine  *writeback.Engine
	Limiter *ratelimit.Limiter
	Clients *crmclients.Clients

	batch     *batcher.Batcher[crmwrite.BatchKey, crmwrite.Write, crmwrite.Written]
	finder    *crmwrite.Finder
	history   *historystore.Store
	stopWatch context.CancelFunc
}

// New assembles the core. ctx bounds the initial read of the mappings bucket, whose watch then
// runs until Close.
func New(ctx context.Context, o Options) (*App, error) {
	switch {
	case o.Records == nil || o.Mappings == nil:
		return nil, errors.New("writer app: the records and mappings buckets are required")
	case o.DB == nil || o.Tenants == nil || o.Publisher == nil:
		return nil, errors.New("writer app: DB, Tenants and Publisher are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if tn := o.Tuning; tn.SalesforceCallsPerSecond < 1 || tn.HubSpotCallsPer10s < 1 || tn.MaxInFlight < 1 || tn.Linger <= 0 || tn.MaxLinger < tn.Linger ||
		tn.EchoWindow <= 0 || tn.QuotaReserve < 0 || tn.QuotaReserve >= 1 {
		return nil, fmt.Errorf("writer app: tuning out of range (take it from config.Load): %+v", tn)
	}
	tn := o.Tuning
	sfPerSecond := max(int(tn.SalesforceCallsPerSecond), 1)
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	var shared ratelimit.Shared
	if o.Coord != nil {
		b := budget.New(budget.Config{KV: o.Coord})
		if err := b.Watch(watchCtx); err != nil {
			stopWatch()
			return nil, fmt.Errorf("writer app: watch the shared CRM budget: %w", err)
		}
		shared = b
	}
	limiter := ratelimit.New(ratelimit.Config{
		Shared: shared,
		Limits: func(k ratelimit.Key) ratelimit.Limits {
			if k.Provider == provider.Salesforce {
				return ratelimit.ForWindow(sfPerSecond, time.Second, 1)
			}
			return ratelimit.ForWindow(tn.HubSpotCallsPer10s, 10*time.Second, 5)
		},
		QuotaThreshold: tn.QuotaReserve,
	})
	if o.TracerProvider == nil {
		o.TracerProvider = tracenoop.NewTracerProvider()
	}
	obs := newObserved(o.MeterProvider, o.TracerProvider, o.Log)
	clients := crmclients.New(crmconn.Config{Tenants: o.Tenants, Secrets: o.Secrets, Stored: o.Stored, AnyCRMHost: o.AnyCRMHost, Timeout: tn.CRMTimeout,
		HTTPClient: o.HTTPClient, TracerProvider: o.TracerProvider, Metrics: crmcall.NewMetrics(o.MeterProvider)})
	pub := events.NewPublisher(o.Publisher, nil)
	onNotice := func(n ratelimit.Notice) {
		a, ok := writeback.QuotaAlert(n)
		if !ok {
			o.Log.Info("daily quota recovered, writes resume", "tenant", n.Key.Tenant, "provider", n.Key.Provider)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pub.Alert(ctx, a); err != nil {
			o.Log.Error("raise quota alert", "tenant", n.Key.Tenant, "provider", n.Key.Provider, "error", err)
		}
	}
	wcfg := crmwrite.Config{Limiter: limiter, OnNotice: onNotice,
		// A time zone in the tenant's HubSpot connection wins; without one the adapter reads the
		// account's from the account info API when it first uses the tenant's client.
		HubSpotZone: func(ctx context.Context, tenantID string) (*time.Location, bool) {
			t, err := o.Tenants.Get(ctx, tenantID)
			if err != nil {
				return nil, false
			}
			return t.HubSpot.Location()
		}}
	sfw := crmwrite.NewSalesforce(wcfg, clients.SalesforceWriter)
	hsw := crmwrite.NewHubSpot(wcfg, clients.HubSpotWriter)
	flush := func(ctx context.Context, k crmwrite.BatchKey, b []batcher.Item[crmwrite.Write]) ([]batcher.Result[crmwrite.Written], error) {
		switch k.Provider {
		case provider.Salesforce:
			return sfw.Flush(ctx, k, b)
		case provider.HubSpot:
			return hsw.Flush(ctx, k, b)
		}
		return nil, &crmwrite.Error{Provider: k.Provider, Class: ownership.Classification{Class: ownership.Permanent},
			Message: fmt.Sprintf("unknown provider %q", k.Provider)}
	}
	bt := batcher.New(obs.flush(flush), batcher.Options[crmwrite.BatchKey, crmwrite.Write]{
		MaxSize: func(k crmwrite.BatchKey) int {
			if k.Provider == provider.Salesforce {
				return salesforce.MaxCollectionRecords
			}
			return hubspot.MaxBatchInputs
		},
		// A partial batch goes once no write joined it for Linger (the short linger of
		// docs/architecture.md#owner-writeback) and at the latest MaxLinger after its first write,
		// and waits while a call of its key is in flight: a burst, whose writes trickle in as their
		// records are claimed, fills whole batches, and a lone write still goes after Linger.
		Idle: tn.Linger, Linger: tn.MaxLinger, HoldPartial: true, MaxInFlight: tn.MaxInFlight, Supersedes: crmwrite.Supersedes,
	})
	obs.bt = bt
	// Record lookups by email share the writes' adapters, so the same limiter paces them.
	finder := crmwrite.NewFinder(sfw, hsw, crmwrite.FinderOptions{MaxInFlight: tn.MaxInFlight})
	history := historystore.New(o.DB, historystore.Options{Detached: o.DetachedHistory, OnError: func(err error) {
		o.Log.Error("ownership history insert failed", "error", err)
	}})
	stopLoad := context.AfterFunc(ctx, stopWatch)
	var dir mappingview.Watcher
	if o.CRMUsers != nil {
		dir = o.CRMUsers
	}
	view, err := mappingview.NewWatched(watchCtx, o.Mappings, dir)
	if !stopLoad() && err == nil {
		err = context.Cause(ctx) // ctx ended as the load finished: the watch is already stopping
	}
	if err != nil {
		stopWatch()
		return nil, fmt.Errorf("writer app: %w", err)
	}
	records := recordstate.NewJetStreamKV(o.Records)
	engine := writeback.New(writeback.Config{EchoWindow: tn.EchoWindow}, writeback.Deps{
		Policies:  writeback.TenantPolicies{Tenants: o.Tenants},
		View:      view,
		States:    recordstate.NewStore(records),
		Writes:    obs,
		Links:     recordstate.NewLinks(records),
		Finder:    finder,
		Publisher: pub,
		History:   obs.history(history),
	})
	return &App{Engine: engine, Limiter: limiter, Clients: clients,
		batch: bt, finder: finder, history: history, stopWatch: stopWatch}, nil
}

// Close flushes pending record lookups and CRM writes, then pending history entries. Call it after the consumers have
// stopped handing out messages.
func (a *App) Close(ctx context.Context) error {
	defer a.stopWatch()
	return errors.Join(a.finder.Close(ctx), a.batch.Close(ctx), a.history.Close(ctx))
}

// The edges implement the engine's interfaces (the engine imports none of them).
var (
	_ writeback.States = (*recordstate.Store)(nil)
	_ writeback.Links  = (*recordstate.Links)(nil)
	_ writeback.Finder = (*crmwrite.Finder)(nil)
	_ writeback.Writes = (*batcher.Batcher[crmwrite.BatchKey, crmwrite.Write, crmwrite.Written])(nil)
)
