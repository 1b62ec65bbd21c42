package writeback

import (
	"context"
	"errors"
	"fmt"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// TenantGetter returns a tenant's configuration; *tenantstore.Cache implements it.
type TenantGetter interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// TenantPolicies adapts a TenantGetter to Policies: tenant.ErrNotFound becomes ErrUnknownTenant.
type TenantPolicies struct {
	Tenants TenantGetter
}

// Policy returns the writeback policy of tenant id.
func (p TenantPolicies) Policy(ctx context.Context, id string) (ownership.Policy, error) {
	t, err := p.Tenants.Get(ctx, id)
	if errors.Is(err, tenant.ErrNotFound) {
		return ownership.Policy{}, fmt.Errorf("%w: %w", ErrUnknownTenant, err)
	}
	if err != nil {
		return ownership.Policy{}, err
	}
	return PolicyOf(t), nil
}

// PolicyOf converts a tenant's configuration
// (docs/architecture.md#tenant-configuration-and-secrets) into its writeback policy.
func PolicyOf(t *tenant.Tenant) ownership.Policy {
	pol := ownership.Policy{Tenant: t.ID, Providers: map[provider.Provider]ownership.ProviderPolicy{}}
	for _, p := range provider.All {
		s, ok := t.ProviderSettings(p)
		if !ok {
			continue
		}
		pp := ownership.ProviderPolicy{Enabled: s.Enabled, Direction: ownership.Direction(s.Direction), FallbackOwnerID: s.FallbackOwnerID,
			AutoProvisioning: s.AutoProvisioning}
		for _, m := range s.ObjectModules {
			pp.RecordTypes = append(pp.RecordTypes, ownership.RecordType(m))
		}
		pol.Providers[p] = pp
	}
	return pol
}
