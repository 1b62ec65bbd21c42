package events

import (
	"context"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	libtenant "github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Core is what the consumers hand their events to (app.Service).
type Core interface {
	PlatformUserChanged(ctx context.Context, eventID string, u domain.PlatformUser) error
	CRMUserChanged(ctx context.Context, tenant string, provider provider.Provider, eventID string, u domain.CRMUser, fields []string) error
	RefreshCRMUser(ctx context.Context, tenant string, provider provider.Provider, crmUserID, eventID string) error
	OwnerChanged(ctx context.Context, tenant string, provider provider.Provider, eventID, ownerID string) (app.ProvisionOutcome, error)
}

// Failures records dead-lettered messages where the admin sees them (mongostore.Store).
type Failures interface {
	PutFailure(ctx context.Context, f domain.Failure) error
}

// Handlers are the consumers' message handlers.
type Handlers struct {
	core     Core
	failures Failures
	log      *slog.Logger
}

// NewHandlers returns the handlers.
func NewHandlers(core Core, failures Failures, log *slog.Logger) *Handlers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handlers{core: core, failures: failures, log: log}
}

var errBadEvent = errors.New("invalid event")

// eventID is the event's id, or one made from the stream position when the producer sent none
// (still stable across redeliveries).
func eventID(meta *ownersyncv1.EventMeta, m *natsbus.Message) string {
	if id := meta.GetEventId(); id != "" {
		return id
	}
	if m.Meta != nil {
		return "seq:" + m.Meta.Stream + ":" + strconv.FormatUint(m.Meta.Sequence.Stream, 10)
	}
	return m.Headers().Get("Nats-Msg-Id")
}

// Classify maps the core's error codes to the consume loop's acknowledgements, as httpapi maps them
// to statuses: not found (an unknown tenant), invalid (a provider not connected) and conflict are
// permanent (terminated, dead-lettered and recorded), busy is retried after a minute, and an error
// without a code (storage, the CRM) is retried with the loop's backoff.
func Classify(err error) error {
	switch domain.ErrorCode(err) {
	case domain.CodeNotFound, domain.CodeInvalid, domain.CodeConflict:
		return natsbus.Permanent(err)
	case domain.CodeBusy:
		// A Sync Users run is writing this tenant's mappings: come back after it. Ten deliveries
		// a minute apart give the run ten minutes before the event is dead-lettered (replayable).
		return natsbus.RetryAfter(err, time.Minute)
	}
	return err
}

// PlatformUserChanged stores the platform user (older changes are ignored) and applies the rules.
func (h *Handlers) PlatformUserChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.PlatformUserChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant := ev.GetMeta().GetTenantId()
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || ev.GetUser().GetId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q on subject %s, user %q", errBadEvent, tenant, m.Subject(), ev.GetUser().GetId()))
	}
	u := ev.GetUser()
	return Classify(h.core.PlatformUserChanged(ctx, eventID(ev.GetMeta(), m), domain.PlatformUser{
		Tenant:     tenant,
		ID:         u.GetId(),
		Email:      strings.TrimSpace(u.GetEmail()),
		FirstName:  u.GetFirstName(),
		LastName:   u.GetLastName(),
		Status:     platformStatus(u.GetStatus()),
		Kind:       platformKind(u.GetKind()),
		TeamID:     u.GetTeamId(),
		SourceTime: ev.GetMeta().GetOccurredAt().AsTime(),
	}))
}

// CRMUserChanged stores the CRM user (merging a partial change) and applies the rules.
func (h *Handlers) CRMUserChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.CrmUserChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant, provider := ev.GetMeta().GetTenantId(), ProviderName(ev.GetProvider())
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || provider == "" || provider != streams.ProviderOf(m.Subject()) || ev.GetUser().GetId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q provider %q on subject %s, user %q", errBadEvent, tenant, provider, m.Subject(), ev.GetUser().GetId()))
	}
	u := ev.GetUser()
	kind := mapping.CRMKindUser
	if u.GetKind() == ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE {
		kind = mapping.CRMKindQueue
	}
	cu := domain.CRMUser{
		CRMUser: mapping.CRMUser{ID: u.GetId(), Email: strings.TrimSpace(u.GetEmail()), FirstName: u.GetFirstName(), LastName: u.GetLastName(),
			Active: u.GetActive(), Kind: kind, Username: u.GetUsername(), UserType: u.GetUserType()},
		HubSpotUserID: u.GetHubspotUserId(),
		SourceTime:    ev.GetMeta().GetOccurredAt().AsTime(),
	}
	return Classify(h.core.CRMUserChanged(ctx, tenant, provider, eventID(ev.GetMeta(), m), cu, ev.GetFields()))
}

// UserRefresh re-reads one CRM user from the CRM and applies it.
func (h *Handlers) UserRefresh(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.UserRefresh
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant, provider := ev.GetMeta().GetTenantId(), ProviderName(ev.GetProvider())
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || provider == "" || provider != streams.ProviderOf(m.Subject()) || ev.GetCrmUserId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q provider %q on subject %s, user %q", errBadEvent, tenant, provider, m.Subject(), ev.GetCrmUserId()))
	}
	return Classify(h.core.RefreshCRMUser(ctx, tenant, provider, ev.GetCrmUserId(), eventID(ev.GetMeta(), m)))
}

// OwnerChanged applies auto-provisioning (rule 7) to a CRM owner change whose owner is a user.
func (h *Handlers) OwnerChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.CrmOwnerChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant, provider := ev.GetMeta().GetTenantId(), ProviderName(ev.GetProvider())
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || provider == "" || provider != streams.ProviderOf(m.Subject()) {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q provider %q on subject %s", errBadEvent, tenant, provider, m.Subject()))
	}
	if ev.GetOwnerId() == "" || ev.GetOwnerKind() == ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE {
		return nil
	}
	_, err := h.core.OwnerChanged(ctx, tenant, provider, eventID(ev.GetMeta(), m), ev.GetOwnerId())
	if errors.Is(err, domain.ErrUnknownTenant) || errors.Is(err, domain.ErrNotConnected) {
		// Owner changes of a tenant or provider mapper does not serve are the writer's business
		// (it records them); nothing to provision.
		return nil
	}
	return Classify(err)
}

// DeadLetter records a dead-lettered message where the admin sees it.
func (h *Handlers) DeadLetter(ctx context.Context, m *natsbus.Message, err error) {
	id := m.Subject()
	if m.Meta != nil {
		id = m.Meta.Stream + ":" + strconv.FormatUint(m.Meta.Sequence.Stream, 10)
	}
	f := domain.Failure{ID: "dlq:" + id, Tenant: m.Tenant(), Service: "mapper", Subject: m.Subject(),
		MsgID: m.Headers().Get("Nats-Msg-Id"), Error: err.Error()}
	if m.Meta != nil {
		f.Time = m.Meta.Timestamp
	}
	if perr := h.failures.PutFailure(ctx, f); perr != nil {
		h.log.ErrorContext(ctx, "record dead letter", "subject", m.Subject(), "err", perr)
	}
}

func platformStatus(s ownersyncv1.PlatformUserStatus) string {
	switch s {
	case ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_SUSPENDED:
		return "suspended"
	case ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_DELETED:
		return "deleted"
	}
	return "active"
}

func platformKind(k ownersyncv1.PlatformUserKind) string {
	switch k {
	case ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_EXTENSION:
		return "extension"
	case ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_CALL_DESTINATION:
		return "call_destination"
	}
	return "user"
}
