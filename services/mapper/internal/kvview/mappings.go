package kvview

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

func entries(tenant string, es []domain.ViewEntry) []mappingkv.Entry {
	out := make([]mappingkv.Entry, len(es))
	for i, e := range es {
		t := e.Tenant
		if t == "" {
			t = tenant
		}
		out[i] = NewEntry(t, e.Mapping, e.CRMUser)
	}
	return out
}

// SyncMappings is Sync over the core's view entries (the mapping and its CRM user), converted here.
func (v *View) SyncMappings(ctx context.Context, tenant string, provider provider.Provider, before, after []domain.ViewEntry, generation int64) error {
	return v.Sync(ctx, tenant, provider, entries(tenant, before), entries(tenant, after), generation)
}

// RebuildMappings is Rebuild over the core's view entries.
func (v *View) RebuildMappings(ctx context.Context, tenant string, provider provider.Provider, es []domain.ViewEntry, generation int64) error {
	return v.Rebuild(ctx, tenant, provider, entries(tenant, es), generation)
}
