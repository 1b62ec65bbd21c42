// Package webhook serves the CRM webhook endpoints of ingress (docs/architecture.md#ingress):
// Salesforce Outbound Messages on POST /webhooks/salesforce and HubSpot webhooks on POST
// /webhooks/hubspot.
//
// Every request is verified, normalised into one event per notification or owner change, and
// published to JetStream with the event id of docs/architecture.md#event-ids as Nats-Msg-Id. The
// CRM gets its acknowledgement only after JetStream acknowledged every event of the request; any
// failure answers 503 (a SOAP fault for Salesforce) so that the CRM delivers again, and a
// redelivery publishes nothing new because JetStream drops the duplicate ids. Nothing is
// acknowledged that was not stored.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/redact"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/ingress/internal/bodybudget"
	"github.com/ownersync/ownersync/services/ingress/internal/lograte"
)

// Route paths.
const (
	SalesforcePath = "/webhooks/salesforce"
	HubSpotPath    = "/webhooks/hubspot"
)

// LogBurst is how many lines one class of log line (provider, outcome, reason) may write per
// LogWindow; the rest are counted and reported with the next line of the class.
const (
	LogBurst  = 5
	LogWindow = time.Minute
)

// Defaults of Config.
const (
	DefaultSalesforceBodyLimit = 5 << 20
	DefaultHubSpotBodyLimit    = 1 << 20
	// DefaultPublishTimeout leaves a second of HubSpot's 5-second delivery timeout for the rest.
	DefaultPublishTimeout = 4 * time.Second
	// DefaultMaxSourceSkew is how far a CRM's clock may run ahead of ours before a source time is
	// clamped (docs/architecture.md#event-ids: source times are not trusted beyond the clock).
	DefaultMaxSourceSkew = 5 * time.Minute
)

// Publisher stores one event durably. natsbus.Publisher satisfies it: it publishes with
// Nats-Msg-Id = msgID and returns after the JetStream ack; duplicate is true when the stream already
// held msgID (success: nothing new stored).
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (duplicate bool, err error)
}

// Tenants finds the tenant a webhook belongs to. Both methods return tenant.ErrNotFound when no
// tenant is configured for the org or portal.
type Tenants interface {
	BySalesforceOrg(ctx context.Context, orgID18 string) (*tenant.Tenant, error)
	ByHubSpotPortal(ctx context.Context, portalID int64) (*tenant.Tenant, error)
}

// SecretResolver resolves a tenant's secret reference at use; secretref.Resolver satisfies it.
type SecretResolver interface {
	Resolve(ref string) (string, error)
}

// Alerter is told about webhooks from a Salesforce org or HubSpot portal that no tenant is
// configured for. The CRM keeps retrying for 24 hours, so an operator who reacts in time loses
// nothing. Implementations must be fast and must not block the request.
type Alerter interface {
	UnknownSource(ctx context.Context, p provider.Provider, sourceID string)
}

// Config configures the handlers.
type Config struct {
	// PublicURL is the public base URL HubSpot calls (OWNERSYNC_PUBLIC_URL): scheme, host, port and
	// optional path prefix. The signed URI is PublicURL + route path + "?" + raw query; the Host
	// header and the path a proxy passed on are never used.
	PublicURL string
	// SalesforceBodyLimit caps Outbound Message bodies (default 5 MB).
	SalesforceBodyLimit int64
	// HubSpotBodyLimit caps webhook bodies (default 1 MB).
	HubSpotBodyLimit int64
	// PublishTimeout bounds publishing all events of one request (default 4 s).
	PublishTimeout time.Duration
	// MaxSourceSkew is how far past the receive time a source time (LastModifiedDate, occurredAt)
	// may lie; a later one is clamped to receive time + MaxSourceSkew, counted and logged, so a
	// forged or broken clock cannot make every later real change look stale. Default 5 minutes.
	MaxSourceSkew time.Duration
	// Now is the clock (signature windows, received_at); default time.Now.
	Now func() time.Time
	// Logger logs rejections and failures, never secrets or payloads at info level.
	Logger *slog.Logger
	// Meter records the metrics; default a no-op meter.
	Meter metric.Meter
	// Alerts is told about unknown orgs and portals; optional.
	Alerts Alerter
	// RequireSharedKey refuses (403) every Outbound Message of a Salesforce connection that has no
	// shared key configured; without it such a connection accepts messages without a key.
	RequireSharedKey bool
	// Receipts is told which tenant's requests were accepted or rejected, and why (the console's
	// "last webhook received"); optional. It must not block (webhookstats.Recorder counts in memory).
	Receipts Receipts
	// Bodies caps the request body bytes held at once by the process; a budget of
	// bodybudget.DefaultMax when nil. Share one between every handler of the process.
	Bodies *bodybudget.Budget
}

// Receipts records accepted and rejected requests per tenant (webhookstats.Recorder implements it).
type Receipts interface {
	Accepted(tenantID, provider string)
	Rejected(tenantID, provider, reason string)
}

// Handler serves both webhook endpoints.
type Handler struct {
	cfg     Config
	base    string
	pub     Publisher
	tenants Tenants
	secrets SecretResolver
	log     *slog.Logger
	m       instruments
	// logs rate-limits the log lines requests cause, per class (provider, outcome, reason).
	logs *lograte.Limiter
	// bodies is the per-process cap of body bytes in flight.
	bodies *bodybudget.Budget
	// attrSets caches measurement options by their key/value pairs: building an attribute set per
	// measurement costs more than the rest of a small request's bookkeeping. The key is a struct,
	// not a concatenated string, so a lookup allocates nothing.
	attrMu   sync.RWMutex
	attrSets map[attrKey]metric.MeasurementOption
}

type attrKey struct{ k1, v1, k2, v2 string }

// attrs returns the measurement option for two attributes (k1=v1, k2=v2), or one when k2 is "". The values are bounded
// sets (providers, outcomes, reasons, event types), so the cache stays small.
func (h *Handler) attrs(k1, v1, k2, v2 string) metric.MeasurementOption {
	key := attrKey{k1, v1, k2, v2}
	h.attrMu.RLock()
	o, ok := h.attrSets[key]
	h.attrMu.RUnlock()
	if ok {
		return o
	}
	if k2 == "" {
		o = metric.WithAttributeSet(attribute.NewSet(attribute.String(k1, v1)))
	} else {
		o = metric.WithAttributeSet(attribute.NewSet(attribute.String(k1, v1), attribute.String(k2, v2)))
	}
	h.attrMu.Lock()
	if h.attrSets == nil {
		h.attrSets = map[attrKey]metric.MeasurementOption{}
	}
	h.attrSets[key] = o
	h.attrMu.Unlock()
	return o
}

// New validates cfg and returns the handler.
func New(cfg Config, pub Publisher, tenants Tenants, secrets SecretResolver) (*Handler, error) {
	if pub == nil || tenants == nil || secrets == nil {
		return nil, errors.New("webhook: publisher, tenants and secrets are required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("webhook: public URL %q must be an absolute http(s) URL without query", redact.URL(cfg.PublicURL))
	}
	if cfg.SalesforceBodyLimit <= 0 {
		cfg.SalesforceBodyLimit = DefaultSalesforceBodyLimit
	}
	if cfg.HubSpotBodyLimit <= 0 {
		cfg.HubSpotBodyLimit = DefaultHubSpotBodyLimit
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.MaxSourceSkew <= 0 {
		cfg.MaxSourceSkew = DefaultMaxSourceSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = noop.NewMeterProvider().Meter("")
	}
	if cfg.Bodies == nil {
		cfg.Bodies = bodybudget.New(0, cfg.Meter)
	}
	m, err := newInstruments(cfg.Meter)
	if err != nil {
		return nil, err
	}
	return &Handler{
		cfg:     cfg,
		base:    strings.TrimRight(cfg.PublicURL, "/"),
		pub:     pub,
		tenants: tenants,
		secrets: secrets,
		log:     cfg.Logger.With("component", "webhook"),
		m:       m,
		logs:    lograte.New(LogBurst, LogWindow, nil),
		bodies:  cfg.Bodies,
	}, nil
}

// Router is what routes are registered on: *echo.Echo and *echo.Group both satisfy it.
type Router interface {
	POST(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
}

// Register adds POST /webhooks/salesforce and POST /webhooks/hubspot.
func (h *Handler) Register(r Router) {
	r.POST(SalesforcePath, h.Salesforce)
	r.POST(HubSpotPath, h.HubSpot)
}

// instruments are the handler's metrics.
type instruments struct {
	requests   metric.Int64Counter
	published  metric.Int64Counter
	duplicates metric.Int64Counter
	ignored    metric.Int64Counter
	rejected   metric.Int64Counter
	failed     metric.Int64Counter
	clamped    metric.Int64Counter
	duration   metric.Float64Histogram
}

func newInstruments(m metric.Meter) (instruments, error) {
	var (
		in   instruments
		errs []error
		err  error
	)
	in.requests, err = m.Int64Counter("ownersync.ingress.requests", metric.WithDescription("Webhook requests by provider and outcome (acked, rejected, failed)."))
	errs = append(errs, err)
	in.published, err = m.Int64Counter("ownersync.ingress.events.published", metric.WithDescription("Events newly stored in JetStream, by provider and event type."))
	errs = append(errs, err)
	in.duplicates, err = m.Int64Counter("ownersync.ingress.events.duplicates", metric.WithDescription("Events JetStream already held (redeliveries), by provider and event type."))
	errs = append(errs, err)
	in.ignored, err = m.Int64Counter("ownersync.ingress.events.ignored", metric.WithDescription("Notifications and events acknowledged but not published, by provider and kind."))
	errs = append(errs, err)
	in.rejected, err = m.Int64Counter("ownersync.ingress.rejected", metric.WithDescription("Requests refused with a 4xx, by provider and reason."))
	errs = append(errs, err)
	in.failed, err = m.Int64Counter("ownersync.ingress.failed", metric.WithDescription("Requests answered 503 so that the CRM retries, by provider and reason."))
	errs = append(errs, err)
	in.clamped, err = m.Int64Counter("ownersync.ingress.source_time_clamped", metric.WithDescription("Source times later than receipt plus the allowed skew, clamped, by provider."))
	errs = append(errs, err)
	in.duration, err = m.Float64Histogram("ownersync.ingress.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Webhook request latency by provider and outcome."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return in, fmt.Errorf("webhook: metrics: %w", err)
	}
	return in, nil
}

// Outcomes of a request.
const (
	outcomeAcked    = "acked"
	outcomeRejected = "rejected"
	outcomeFailed   = "failed"
)

// result is how a request ended; the handlers fill it and finish records it.
type result struct {
	status  int
	outcome string
	reason  string
	err     error // logged, never sent to the CRM
	// tenants are the tenants the request was matched to (none before the lookup).
	tenants []string
}

func (h *Handler) finish(ctx context.Context, p provider.Provider, start time.Time, r result) {
	byOutcome := h.attrs("provider", string(p), "outcome", r.outcome)
	h.m.requests.Add(ctx, 1, byOutcome)
	h.m.duration.Record(ctx, time.Since(start).Seconds(), byOutcome)
	if h.cfg.Receipts != nil {
		for _, t := range r.tenants {
			switch r.outcome {
			case outcomeAcked:
				h.cfg.Receipts.Accepted(t, string(p))
			case outcomeRejected:
				h.cfg.Receipts.Rejected(t, string(p), r.reason)
			}
		}
	}
	switch r.outcome {
	case outcomeRejected:
		h.m.rejected.Add(ctx, 1, h.attrs("provider", string(p), "reason", r.reason))
		if ok, dropped := h.logs.Allow(string(p) + ":rejected:" + r.reason); ok {
			h.log.WarnContext(ctx, "webhook rejected", "provider", p, "status", r.status, "reason", r.reason, "error", errString(r.err),
				"suppressed", dropped)
		}
	case outcomeFailed:
		h.m.failed.Add(ctx, 1, h.attrs("provider", string(p), "reason", r.reason))
		if ok, dropped := h.logs.Allow(string(p) + ":failed:" + r.reason); ok {
			h.log.ErrorContext(ctx, "webhook not acknowledged, the CRM will retry", "provider", p, "status", r.status, "reason", r.reason, "error", errString(r.err),
				"suppressed", dropped)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// readBody reads at most limit bytes; a longer body is a 413, and a body past the process's
// in-flight cap a 503 with Retry-After. The buffer grows with the bytes that arrive, never with the
// declared length (issue 13 item 5). The caller calls release when it no longer needs the body.
func (h *Handler) readBody(c echo.Context, limit int64) (body []byte, release func(), _ *result) {
	req := c.Request()
	if req.ContentLength > limit {
		return nil, func() {}, &result{status: http.StatusRequestEntityTooLarge, outcome: outcomeRejected, reason: "too_large",
			err: fmt.Errorf("content length %d over the %d-byte limit", req.ContentLength, limit)}
	}
	b, release, err := h.bodies.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, release, &result{status: http.StatusRequestEntityTooLarge, outcome: outcomeRejected, reason: "too_large",
				err: fmt.Errorf("body over the %d-byte limit", limit)}
		case errors.Is(err, bodybudget.ErrBusy):
			c.Response().Header().Set("Retry-After", "5")
			return nil, release, &result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "busy", err: err}
		}
		return nil, release, &result{status: http.StatusBadRequest, outcome: outcomeRejected, reason: "read_failed", err: err}
	}
	return b, release, nil
}

// checkContentType accepts one of the media types, with no charset or a UTF-8 charset.
func checkContentType(c echo.Context, types ...string) *result {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	// What the CRMs send ("text/xml; charset=utf-8", "application/json") is accepted without
	// parsing; ParseMediaType decides everything else.
	for _, t := range types {
		if ct == t || len(ct) == len(t)+len("; charset=utf-8") && strings.EqualFold(ct, t+"; charset=utf-8") {
			return nil
		}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			err = fmt.Errorf("charset %q", cs)
		}
	}
	if err == nil {
		for _, t := range types {
			if mt == t {
				return nil
			}
		}
		err = fmt.Errorf("media type %q", mt)
	}
	return &result{status: http.StatusUnsupportedMediaType, outcome: outcomeRejected, reason: "unsupported_media_type",
		err: fmt.Errorf("content type %q: %w; want %s", ct, err, strings.Join(types, " or "))}
}

// Event kinds (the metric label "type").
const (
	kindOwnerChanged = "owner_changed"
	kindUserChanged  = "user_changed"
)

// event is one message to publish.
type event struct {
	subject string
	id      string
	kind    string // metric label: owner_changed, user_changed
	msg     proto.Message
}

// publishAll publishes every event within the publish timeout — user changes in their order,
// owner changes concurrently — and returns the first error; on error the CRM is not acknowledged, and the events already stored deduplicate on retry.
func (h *Handler) publishAll(ctx context.Context, p provider.Provider, events []event) error {
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	count := func(ev *event, dup bool) {
		attrs := h.attrs("provider", string(p), "type", ev.kind)
		if dup {
			h.m.duplicates.Add(ctx, 1, attrs)
		} else {
			h.m.published.Add(ctx, 1, attrs)
		}
	}
	if len(events) == 1 {
		// The common case (HubSpot sends most changes one by one): no goroutine.
		dup, err := h.pub.Publish(ctx, events[0].subject, events[0].id, events[0].msg)
		if err != nil {
			return fmt.Errorf("publish %s: %w", events[0].id, err)
		}
		count(&events[0], dup)
		return nil
	}
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	// publish stores one event; false stops a chain after a failure.
	publish := func(ev *event) bool {
		dup, err := h.pub.Publish(ctx, ev.subject, ev.id, ev.msg)
		if err != nil {
			once.Do(func() {
				firstErr = fmt.Errorf("publish %s: %w", ev.id, err)
				cancel()
			})
			return false
		}
		count(ev, dup)
		return true
	}
	// User changes are stored one after the other in the message's order, so mapper's consumer
	// gets them in the order the CRM made them (a deactivation and the users created around it,
	// docs/architecture.md#rule-4-remap-on-deactivation). Owner changes are ordered by their source
	// times in the writer, so they go at once.
	var users []*event
	for i := range events {
		ev := &events[i]
		if ev.kind == kindUserChanged {
			users = append(users, ev)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			publish(ev)
		}()
	}
	if len(users) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range users {
				if !publish(ev) {
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// sourceTime returns the time a source says a change happened, clamped to received +
// MaxSourceSkew: a time further ahead would make every later real change of the record look stale
// (issue 13 item 4). A clamp is counted and logged.
func (h *Handler) sourceTime(ctx context.Context, p provider.Provider, tenantID, eventID string, t, received time.Time) time.Time {
	limit := received.Add(h.cfg.MaxSourceSkew)
	if !t.After(limit) {
		return t
	}
	h.m.clamped.Add(ctx, 1, h.attrs("provider", string(p), "", ""))
	if ok, dropped := h.logs.Allow(string(p) + ":clamped"); ok {
		h.log.WarnContext(ctx, "source time in the future; clamped to receipt plus the allowed skew",
			"provider", p, "tenant", tenantID, "event", eventID, "source_time", t, "clamped_to", limit, "suppressed", dropped)
	}
	return limit
}

func (h *Handler) ignore(ctx context.Context, p provider.Provider, kind string, n int) {
	if n > 0 {
		h.m.ignored.Add(ctx, int64(n), h.attrs("provider", string(p), "kind", kind))
	}
}
