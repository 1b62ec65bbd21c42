// Package platformapi is the HTTP bridge for platform services that do not publish to NATS:
// POST /v1/platform/events takes a PlatformEventBatch in protojson, validates every event, and
// publishes each to the PLATFORM stream, answering only after JetStream stored all of them. Events
// of tenants that do not exist are refused one by one, with the reason in the answer; the message
// id of every event is scoped by its tenant (MsgID).
package platformapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/bodybudget"
)

// MaxEvents is the largest batch accepted in one request.
const MaxEvents = 500

type publisher interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (duplicate bool, err error)
}

// Tenants finds a tenant by id; it returns tenant.ErrNotFound for an id no tenant has.
// tenantstore.Cache satisfies it.
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Config configures the handler.
type Config struct {
	// Tenants finds a tenant by id (required); events for tenants it does not know are refused
	// per event.
	Tenants Tenants
	Token   string
	// Bodies caps the body bytes the process holds at once (shared with the webhooks); a budget
	// of bodybudget.DefaultMax when nil.
	Bodies         *bodybudget.Budget
	BodyLimit      int64
	PublishTimeout time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
	Meter          metric.Meter
}

// API serves POST /v1/platform/events.
type API struct {
	cfg       Config
	tokenHash [32]byte
	pub       publisher
	events    metric.Int64Counter
}

// New returns the API.
func New(cfg Config, pub publisher) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 5 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Bodies == nil {
		cfg.Bodies = bodybudget.New(0, nil)
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 4 * time.Second
	}
	a := &API{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token)), pub: pub}
	if cfg.Meter != nil {
		a.events, _ = cfg.Meter.Int64Counter("ownersync_ingress_platform_events_total",
			metric.WithDescription("platform events received over HTTP by outcome"))
	}
	return a
}

// Register adds the route.
func (a *API) Register(e *echo.Echo) { e.POST("/v1/platform/events", a.post) }

// Response is the answer to a valid batch: how many events were stored (duplicates included) and
// which were refused, each with its reason. It is sent with 200 when at least one event was
// accepted, and with 422 when every event was refused.
type Response struct {
	Accepted   int        `json:"accepted"`
	Duplicates int        `json:"duplicates"`
	Rejected   []Rejected `json:"rejected,omitempty"`
}

// Rejected is one refused event: where it is in the batch, its ids and a stable reason.
type Rejected struct {
	Event    string `json:"event"`
	EventID  string `json:"event_id"`
	TenantID string `json:"tenant_id"`
	Reason   string `json:"reason"`
}

// ReasonUnknownTenant refuses an event whose tenant does not exist.
const ReasonUnknownTenant = "unknown_tenant"

type item struct {
	where, tenant, eventID string
	subject, id            string
	msg                    proto.Message
}

// MsgID is the Nats-Msg-Id of a platform event: scoped by tenant, so one tenant's event id can
// never make JetStream drop another tenant's event as a duplicate.
func MsgID(tenantID, eventID string) string { return "platform:" + tenantID + ":" + eventID }

func (a *API) post(c echo.Context) error {
	if !a.authorized(c.Request()) {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="ownersync"`)
		return echoserver.Errorf(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
	}
	if ct := c.Request().Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return echoserver.Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	}
	body, release, err := a.cfg.Bodies.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, a.cfg.BodyLimit))
	defer release()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, bodybudget.ErrBusy) {
			c.Response().Header().Set("Retry-After", "5")
			return echoserver.Errorf(http.StatusServiceUnavailable, "busy", "%v", err)
		}
		if errors.As(err, &mbe) {
			return echoserver.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "body exceeds %d bytes", a.cfg.BodyLimit)
		}
		return echoserver.Errorf(http.StatusBadRequest, "bad_body", "read body: %v", err)
	}
	var batch ownersyncv1.PlatformEventBatch
	if err := (protojson.UnmarshalOptions{}).Unmarshal(body, &batch); err != nil {
		return echoserver.Errorf(http.StatusBadRequest, "malformed_json", "body is not a PlatformEventBatch: %v", err)
	}
	items, problems := a.validate(&batch)
	if len(problems) > 0 {
		a.count(c.Request().Context(), "rejected", len(batch.GetUserChanges())+len(batch.GetOwnerChanges()))
		return echoserver.Errorf(http.StatusBadRequest, "invalid_events", "%s", strings.Join(problems, "; "))
	}
	items, rejected, err := a.known(c.Request().Context(), items)
	if err != nil {
		a.cfg.Logger.WarnContext(c.Request().Context(), "tenant lookup failed; client must retry", "error", err)
		c.Response().Header().Set("Retry-After", "1")
		return echoserver.Errorf(http.StatusServiceUnavailable, "unavailable", "tenants could not be looked up; retry the whole batch")
	}
	a.count(c.Request().Context(), "rejected", len(rejected))
	if len(items) == 0 {
		return c.JSON(http.StatusUnprocessableEntity, Response{Rejected: rejected})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), a.cfg.PublishTimeout)
	defer cancel()
	dups := make([]bool, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, it := range items {
		g.Go(func() error {
			d, err := a.pub.Publish(gctx, it.subject, it.id, it.msg)
			dups[i] = d
			return err
		})
	}
	if err := g.Wait(); err != nil {
		a.cfg.Logger.WarnContext(ctx, "platform events not stored; client must retry", "events", len(items), "error", err)
		a.count(ctx, "unavailable", len(items))
		c.Response().Header().Set("Retry-After", "1")
		return echoserver.Errorf(http.StatusServiceUnavailable, "unavailable", "events could not be stored; retry the whole batch (it is idempotent by event_id)")
	}
	resp := Response{Accepted: len(items), Rejected: rejected}
	for _, d := range dups {
		if d {
			resp.Duplicates++
		}
	}
	a.count(ctx, "published", len(items)-resp.Duplicates)
	a.count(ctx, "duplicate", resp.Duplicates)
	return c.JSON(http.StatusOK, resp)
}

// known splits items into those whose tenant exists and a refusal for each other one. Each
// distinct tenant is looked up once; the tenant cache refreshes on a miss at most once a second, so
// a batch of made-up tenants cannot hammer MongoDB.
func (a *API) known(ctx context.Context, items []item) ([]item, []Rejected, error) {
	exists := map[string]bool{}
	var ok []item
	var rejected []Rejected
	for _, it := range items {
		e, seen := exists[it.tenant]
		if !seen {
			_, err := a.cfg.Tenants.Get(ctx, it.tenant)
			switch {
			case err == nil:
				e = true
			case errors.Is(err, tenant.ErrNotFound):
			default:
				return nil, nil, err
			}
			exists[it.tenant] = e
		}
		if e {
			ok = append(ok, it)
		} else {
			rejected = append(rejected, Rejected{Event: it.where, EventID: it.eventID, TenantID: it.tenant, Reason: ReasonUnknownTenant})
		}
	}
	return ok, rejected, nil
}

func (a *API) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || a.cfg.Token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) == 1
}

func (a *API) validate(b *ownersyncv1.PlatformEventBatch) ([]item, []string) {
	n := len(b.GetUserChanges()) + len(b.GetOwnerChanges())
	if n == 0 {
		return nil, []string{"the batch holds no events"}
	}
	if n > MaxEvents {
		return nil, []string{fmt.Sprintf("the batch holds %d events, more than %d", n, MaxEvents)}
	}
	now := timestamppb.New(a.cfg.Now())
	var items []item
	var problems []string
	meta := func(where string, m *ownersyncv1.EventMeta) bool {
		if m == nil || !tenant.ValidID(m.GetTenantId()) {
			problems = append(problems, where+": meta.tenant_id must match [a-z0-9][a-z0-9_-]{0,62}")
			return false
		}
		if m.EventId == "" {
			id, _ := uuid.NewV7()
			m.EventId = id.String()
		}
		if len(m.EventId) > 200 {
			problems = append(problems, where+": meta.event_id is longer than 200 characters")
			return false
		}
		if m.OccurredAt == nil {
			m.OccurredAt = now
		}
		m.ReceivedAt = now
		if m.Source == "" {
			m.Source = "platform"
		}
		return true
	}
	for i, ev := range b.GetUserChanges() {
		where := fmt.Sprintf("user_changes[%d]", i)
		ok := meta(where, ev.Meta)
		u := ev.GetUser()
		switch {
		case u.GetId() == "":
			problems = append(problems, where+": user.id is required")
		case u.GetStatus() == ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_UNSPECIFIED:
			problems = append(problems, where+": user.status is required")
		case u.GetKind() == ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_UNSPECIFIED:
			problems = append(problems, where+": user.kind is required")
		default:
			if ok {
				items = append(items, newItem(where, streams.PlatformUserChanged(ev.Meta.TenantId), ev.Meta, ev))
			}
		}
	}
	for i, ev := range b.GetOwnerChanges() {
		where := fmt.Sprintf("owner_changes[%d]", i)
		ok := meta(where, ev.Meta)
		switch {
		case ev.GetPlatformRecordId() == "":
			problems = append(problems, where+": platform_record_id is required")
		case ev.GetRecordType() == ownersyncv1.RecordType_RECORD_TYPE_UNSPECIFIED:
			problems = append(problems, where+": record_type is required")
		default:
			if ok {
				items = append(items, newItem(where, streams.PlatformOwnerChanged(ev.Meta.TenantId), ev.Meta, ev))
			}
		}
	}
	return items, problems
}

func newItem(where, subject string, m *ownersyncv1.EventMeta, msg proto.Message) item {
	return item{where: where, tenant: m.TenantId, eventID: m.EventId, subject: subject, id: MsgID(m.TenantId, m.EventId), msg: msg}
}

func (a *API) count(ctx context.Context, outcome string, n int) {
	if a.events != nil && n > 0 {
		a.events.Add(ctx, int64(n), metric.WithAttributes(attribute.String("outcome", outcome)))
	}
}
