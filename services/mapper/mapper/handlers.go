package mapper

import (
	"context"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
)

// cachedTenants reads tenants from the cache and lists and writes them through the store, so that
// the admin API and the console check a tenant without a MongoDB read (the store's OnChange
// refreshes the cache at once after a write).
type cachedTenants struct {
	*tenantstore.Store
	cache *tenantstore.Cache
}

// Get returns a copy of the cached tenant (callers may change it before a Put).
func (c cachedTenants) Get(ctx context.Context, id string) (*tenant.Tenant, error) {
	t, err := c.cache.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	cp := *t
	return &cp, nil
}
