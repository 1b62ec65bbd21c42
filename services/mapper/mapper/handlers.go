package mapper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/streams"
	libtenant "github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

func servicekitStart(ctx context.Context, cfg config.Config, getenv func(string) string, stdout io.Writer) (*servicekit.Base, error) {
	return servicekit.Start(ctx, cfg.Base, getenv, stdout)
}

type handlers struct {
	svc   *app.Service
	store *mongostore.Store
	log   *slog.Logger
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

// classify turns the core's errors into the consume loop's classes: unknown tenants and
// providers are permanent (dead-lettered and recorded), everything else is retried.
func classify(err error) error {
	switch {
	case errors.Is(err, app.ErrUnknownTenant) || errors.Is(err, app.ErrNotConnected):
		return natsbus.Permanent(err)
	case errors.Is(err, changes.ErrBusy):
		// A Sync Users run is writing this tenant's mappings: come back after it. Ten deliveries
		// a minute apart give the run ten minutes before the event is dead-lettered (replayable).
		return natsbus.RetryAfter(err, time.Minute)
	}
	return err
}

// platformUserChanged stores the platform user (older changes are ignored) and applies the rules.
func (h *handlers) platformUserChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.PlatformUserChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant := ev.GetMeta().GetTenantId()
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || ev.GetUser().GetId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q on subject %s, user %q", errBadEvent, tenant, m.Subject(), ev.GetUser().GetId()))
	}
	u := ev.GetUser()
	return classify(h.svc.PlatformUserChanged(ctx, eventID(ev.GetMeta(), m), mongostore.PlatformUser{
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

// crmUserChanged stores the CRM user (merging a partial change) and applies the rules.
func (h *handlers) crmUserChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.CrmUserChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant, provider := ev.GetMeta().GetTenantId(), changes.ProviderName(ev.GetProvider())
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || provider == "" || provider != string(streams.ProviderOf(m.Subject())) || ev.GetUser().GetId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q provider %q on subject %s, user %q", errBadEvent, tenant, provider, m.Subject(), ev.GetUser().GetId()))
	}
	u := ev.GetUser()
	kind := mapping.CRMKindUser
	if u.GetKind() == ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE {
		kind = mapping.CRMKindQueue
	}
	cu := mongostore.CRMUser{
		CRMUser: mapping.CRMUser{ID: u.GetId(), Email: strings.TrimSpace(u.GetEmail()), FirstName: u.GetFirstName(), LastName: u.GetLastName(),
			Active: u.GetActive(), Kind: kind, Username: u.GetUsername(), UserType: u.GetUserType()},
		HubSpotUserID: u.GetHubspotUserId(),
		SourceTime:    ev.GetMeta().GetOccurredAt().AsTime(),
	}
	return classify(h.svc.CRMUserChanged(ctx, tenant, provider, eventID(ev.GetMeta(), m), cu, ev.GetFields()))
}

// userRefresh re-reads one CRM user from the CRM and applies it.
func (h *handlers) userRefresh(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.UserRefresh
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant, provider := ev.GetMeta().GetTenantId(), changes.ProviderName(ev.GetProvider())
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || provider == "" || provider != string(streams.ProviderOf(m.Subject())) || ev.GetCrmUserId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q provider %q on subject %s, user %q", errBadEvent, tenant, provider, m.Subject(), ev.GetCrmUserId()))
	}
	return classify(h.svc.RefreshCRMUser(ctx, tenant, provider, ev.GetCrmUserId(), eventID(ev.GetMeta(), m)))
}

// ownerChanged applies auto-provisioning (rule 7) to a CRM owner change whose owner is a user.
func (h *handlers) ownerChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.CrmOwnerChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant, provider := ev.GetMeta().GetTenantId(), changes.ProviderName(ev.GetProvider())
	if tenant != m.Tenant() || !libtenant.ValidID(tenant) || provider == "" || provider != string(streams.ProviderOf(m.Subject())) {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q provider %q on subject %s", errBadEvent, tenant, provider, m.Subject()))
	}
	if ev.GetOwnerId() == "" || ev.GetOwnerKind() == ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE {
		return nil
	}
	_, err := h.svc.OwnerChanged(ctx, tenant, provider, eventID(ev.GetMeta(), m), ev.GetOwnerId())
	if errors.Is(err, app.ErrUnknownTenant) || errors.Is(err, app.ErrNotConnected) {
		// Owner changes of a tenant or provider mapper does not serve are the writer's business
		// (it records them); nothing to provision.
		return nil
	}
	return classify(err)
}

// deadLetter records a dead-lettered message where the admin sees it.
func (h *handlers) deadLetter(ctx context.Context, m *natsbus.Message, err error) {
	id := m.Subject()
	if m.Meta != nil {
		id = m.Meta.Stream + ":" + strconv.FormatUint(m.Meta.Sequence.Stream, 10)
	}
	f := mongostore.Failure{ID: "dlq:" + id, Tenant: m.Tenant(), Service: "mapper", Subject: m.Subject(),
		MsgID: m.Headers().Get("Nats-Msg-Id"), Error: err.Error()}
	if m.Meta != nil {
		f.Time = m.Meta.Timestamp
	}
	if perr := h.store.PutFailure(ctx, f); perr != nil {
		h.log.Error("record dead letter", "subject", m.Subject(), "err", perr)
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
