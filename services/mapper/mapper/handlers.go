package mapper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

func servicekitStart(ctx context.Context, cfg config.Config, getenv func(string) string, stdout io.Writer) (*servicekit.Base, error) {
	return servicekit.Start(ctx, cfg.Base, getenv, stdout)
}

type handlers struct {
	store *mongostore.Store
	log   *slog.Logger
}

var errBadEvent = errors.New("invalid event")

// platformUserChanged stores the platform user (idempotent; older changes are ignored).
func (h *handlers) platformUserChanged(ctx context.Context, m *natsbus.Message) error {
	var ev ownersyncv1.PlatformUserChanged
	if err := m.Decode(&ev); err != nil {
		return err
	}
	tenant := ev.GetMeta().GetTenantId()
	if tenant != m.Tenant() || !streams.ValidTenant(tenant) || ev.GetUser().GetId() == "" {
		return natsbus.Permanent(fmt.Errorf("%w: tenant %q on subject %s, user %q", errBadEvent, tenant, m.Subject(), ev.GetUser().GetId()))
	}
	u := ev.GetUser()
	_, err := h.store.UpsertPlatformUser(ctx, mongostore.PlatformUser{
		Tenant:     tenant,
		ID:         u.GetId(),
		Email:      strings.TrimSpace(u.GetEmail()),
		FirstName:  u.GetFirstName(),
		LastName:   u.GetLastName(),
		Status:     platformStatus(u.GetStatus()),
		Kind:       platformKind(u.GetKind()),
		TeamID:     u.GetTeamId(),
		SourceTime: ev.GetMeta().GetOccurredAt().AsTime(),
	})
	return err
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
