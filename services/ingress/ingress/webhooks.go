package ingress

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/ingress/internal/bodybudget"
	"github.com/ownersync/ownersync/services/ingress/internal/config"
	"github.com/ownersync/ownersync/services/ingress/internal/lograte"
	"github.com/ownersync/ownersync/services/ingress/internal/webhook"
)

// registerWebhooks wires the Salesforce and HubSpot webhook handlers.
func registerWebhooks(cfg config.Config, base *servicekit.Base, tenants *tenantstore.Cache, bodies *bodybudget.Budget, receipts webhook.Receipts, getenv func(string) string) error {
	meter := base.Tel.Meter("github.com/ownersync/ownersync/services/ingress")
	h, err := webhook.New(webhook.Config{
		PublicURL:           cfg.PublicURL,
		SalesforceBodyLimit: cfg.SalesforceBodyLimit,
		HubSpotBodyLimit:    cfg.HubSpotBodyLimit,
		PublishTimeout:      cfg.PublishTimeout,
		MaxSourceSkew:       cfg.MaxSourceSkew,
		RequireSharedKey:    cfg.RequireSharedKey,
		Bodies:              bodies,
		Logger:              base.Log,
		Meter:               meter,
		Alerts:              newUnknownSourceAlerts(base.Log, meter),
		Receipts:            receipts,
	}, base.Pub, tenants, secretbox.Resolver(base.Stored, secretref.Resolver{Namespace: base.Config.Connections.Secrets, Getenv: getenv}))
	if err != nil {
		return err
	}
	h.Register(base.HTTP.E)
	return nil
}

// unknownSourceAlerts tells the operator about webhooks from an org or portal no tenant is
// configured for. There is no tenant to alert, so it is an error log line (someone must act:
// configure the tenant, or remove the outbound message / app subscription) once per source per
// ten minutes, and a metric on every delivery, since the CRM keeps retrying for 24 hours.
// A flood of made-up org ids or portals must not grow state or logs (issue 13 item 12): at most
// maxUnknownSources sources are remembered (expired ones are dropped when the map is full, all of
// them if none expired), and at most unknownSourceLogBurst lines per provider and minute are
// written; the metric still counts every delivery.
const (
	maxUnknownSources     = 1000
	unknownSourceLogBurst = 10
	unknownSourceEvery    = 10 * time.Minute
)

type unknownSourceAlerts struct {
	log   *slog.Logger
	count metric.Int64Counter
	logs  *lograte.Limiter
	mu    sync.Mutex
	last  map[string]time.Time
}

func newUnknownSourceAlerts(log *slog.Logger, meter metric.Meter) *unknownSourceAlerts {
	c, _ := meter.Int64Counter("ownersync_ingress_unknown_source_total",
		metric.WithDescription("webhook deliveries from an org or portal that no tenant is configured for"))
	return &unknownSourceAlerts{log: log, count: c, last: map[string]time.Time{}, logs: lograte.New(unknownSourceLogBurst, time.Minute, nil)}
}

func (a *unknownSourceAlerts) UnknownSource(ctx context.Context, p provider.Provider, sourceID string) {
	a.count.Add(ctx, 1, metric.WithAttributes(attribute.String("provider", string(p))))
	key := string(p) + ":" + sourceID
	now := time.Now()
	a.mu.Lock()
	due := now.Sub(a.last[key]) > unknownSourceEvery
	if due {
		if len(a.last) >= maxUnknownSources {
			for k, at := range a.last {
				if now.Sub(at) > unknownSourceEvery {
					delete(a.last, k)
				}
			}
			if len(a.last) >= maxUnknownSources {
				clear(a.last)
			}
		}
		a.last[key] = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if ok, dropped := a.logs.Allow(string(p)); ok {
		a.log.ErrorContext(ctx, "webhook from a source no tenant is configured for; the CRM will retry for 24 h",
			"provider", p, "source", sourceID, "suppressed", dropped,
			"fix", "configure the tenant's org id / portal id, or remove the outbound message or app subscription")
	}
}
