package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// ProvisionEventID is the event id (and NATS message id) of the provisioning request for one CRM
// user, the same for every repeat so that JetStream deduplicates them (rule 7).
func ProvisionEventID(prov provider.Provider, crmUserID string) string {
	return "prov:" + string(prov) + ":" + crmUserID
}

// ProvisionOutcome says what OwnerChanged did.
type ProvisionOutcome struct {
	// Published is true when a provisioning request was published (possibly a JetStream duplicate
	// of an earlier one whose recording was lost).
	Published bool
	// Reason explains why no request was published.
	Reason string
}

// OwnerChanged applies rule 7 to a CRM owner change naming ownerID (a user, not a queue): when the
// provider's auto_provisioning setting is on and the owner is an active CRM user whom no mapping
// and no platform user's email names, it publishes a PlatformUserProvision to
// platform.user.provision.<tenant> and records the request, so that the owner is listed as
// pending_team and the platform user the request yields is mapped auto_provisioned. An owner the
// store does not know yet is read from the CRM first (as RefreshCRMUser does).
//
// Idempotent: the request is published before it is recorded, under an event id that is the same
// for every repeat, so a redelivery after a lost recording is a JetStream duplicate, and one after
// the recording is refused by the rules (a request is outstanding) and publishes nothing.
func (s *Service) OwnerChanged(ctx context.Context, tenantID string, prov provider.Provider, eventID, ownerID string) (ProvisionOutcome, error) {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return ProvisionOutcome{}, err
	}
	if _, ok := t.ProviderSettings(provider.Provider(prov)); !ok {
		return ProvisionOutcome{}, fmt.Errorf("%w: %s %s", domain.ErrNotConnected, tenantID, prov)
	}
	st := settingsOf(t, prov)
	if !st.AutoProvisioning {
		return ProvisionOutcome{Reason: "auto-provisioning is off for this tenant"}, nil
	}
	if ownerID == "" {
		return ProvisionOutcome{Reason: "the owner was cleared"}, nil
	}
	owner, err := s.store.CRMUser(ctx, tenantID, prov, ownerID)
	if errors.Is(err, domain.ErrNotFound) {
		if err := s.RefreshCRMUser(ctx, tenantID, prov, ownerID, eventID); err != nil {
			return ProvisionOutcome{}, err
		}
		owner, err = s.store.CRMUser(ctx, tenantID, prov, ownerID)
		if errors.Is(err, domain.ErrNotFound) {
			return ProvisionOutcome{Reason: "the CRM does not know the owner"}, nil
		}
	}
	if err != nil {
		return ProvisionOutcome{}, err
	}

	// Under the tenant's lock, so that a Sync Users run or a user event does not map the owner
	// between the look-ups and the recording.
	unlock, err := s.w.LockWithin(ctx, tenantID, prov, s.lockWait)
	if err != nil {
		return ProvisionOutcome{}, err
	}
	defer unlock()
	q := mapping.ProvisionQuery{Settings: st, Provider: prov, Owner: owner.CRMUser, Now: s.now().UTC().Truncate(time.Millisecond)}
	ms, err := s.store.MappingsNaming(ctx, tenantID, prov, nil, []string{ownerID})
	if err != nil {
		return ProvisionOutcome{}, err
	}
	q.OwnerMapped = len(ms) > 0
	if email := mapping.NormalizeEmail(owner.Email); email != "" {
		ps, err := s.store.PlatformUsersByEmail(ctx, tenantID, []string{owner.Email})
		if err != nil {
			return ProvisionOutcome{}, err
		}
		for _, p := range ps {
			q.SameEmail = append(q.SameEmail, p.Rules())
		}
	}
	switch _, err := s.store.Provision(ctx, tenantID, prov, ownerID); {
	case err == nil:
		q.Pending = true
	case !errors.Is(err, domain.ErrNotFound):
		return ProvisionOutcome{}, err
	}
	d := mapping.DecideProvision(q)
	if !d.Request {
		return ProvisionOutcome{Reason: d.Reason}, nil
	}
	if s.provisions == nil {
		return ProvisionOutcome{}, errors.New("auto-provisioning: no publisher configured")
	}
	id := ProvisionEventID(prov, ownerID)
	req := domain.ProvisionRequest{ID: id, Tenant: tenantID, Provider: prov, Owner: owner, Email: d.Provision.Email,
		RequestedAt: d.Provision.RequestedAt, SourceEventID: eventID}
	if err := s.provisions.ProvisionRequested(ctx, req); err != nil {
		return ProvisionOutcome{}, fmt.Errorf("publish provisioning request %s: %w", id, err)
	}
	if _, err := s.store.PutProvision(ctx, tenantID, d.Provision); err != nil {
		return ProvisionOutcome{}, err
	}
	s.log.Info("platform user provisioning requested", "tenant", tenantID, "provider", prov, "crm_user", ownerID)
	return ProvisionOutcome{Published: true}, nil
}
