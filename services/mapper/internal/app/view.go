package app

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// RebuildViewIfBehind rebuilds the ownersync_mappings view of every tenant's provider whose stored
// generation is missing from the view or behind MongoDB's (a crash between the MongoDB write and
// the view update, or a lost bucket). It returns the "tenant/provider" pairs it rebuilt.
func (s *Service) RebuildViewIfBehind(ctx context.Context, tenants []tenant.Tenant) ([]string, error) {
	var rebuilt []string
	for _, t := range tenants {
		for _, p := range mapping.Providers {
			gen, err := s.store.Generation(ctx, t.ID, p)
			if err != nil {
				return rebuilt, err
			}
			have, err := s.view.Generation(ctx, t.ID, p)
			if err != nil {
				return rebuilt, err
			}
			if gen == 0 || have >= gen {
				continue
			}
			if err := s.RebuildView(ctx, t.ID, p); err != nil {
				return rebuilt, err
			}
			rebuilt = append(rebuilt, t.ID+"/"+string(p))
		}
	}
	return rebuilt, nil
}

// RebuildView rewrites the view of a tenant's provider from MongoDB.
func (s *Service) RebuildView(ctx context.Context, tenantID string, provider provider.Provider) error {
	unlock := s.w.Lock(tenantID, provider)
	defer unlock()
	gen, err := s.store.Generation(ctx, tenantID, provider)
	if err != nil {
		return err
	}
	ms, err := s.store.Mappings(ctx, tenantID, provider)
	if err != nil {
		return err
	}
	crm, err := s.store.CRMUsers(ctx, tenantID, provider)
	if err != nil {
		return err
	}
	_, entries := changes.Entries(tenantID, nil, ms, nil, nil, func(id string) (mapping.CRMUser, bool) { u, ok := crm[id]; return u.CRMUser, ok })
	return s.view.RebuildMappings(ctx, tenantID, provider, entries, gen)
}

// RebuildDirectoryIfMissing writes the CRM user directory view of every tenant's provider that
// was never written whole (its meta key is missing: a new or lost bucket) from the stored CRM
// users. It returns the "tenant/provider" pairs it rebuilt.
func (s *Service) RebuildDirectoryIfMissing(ctx context.Context, tenants []tenant.Tenant) ([]string, error) {
	if s.userDir == nil {
		return nil, nil
	}
	var rebuilt []string
	for _, t := range tenants {
		for _, p := range mapping.Providers {
			built, err := s.userDir.DirectoryBuilt(ctx, t.ID, p)
			if err != nil || built {
				if err != nil {
					return rebuilt, err
				}
				continue
			}
			unlock := s.w.Lock(t.ID, p)
			crm, err := s.store.CRMUsers(ctx, t.ID, p)
			if err == nil {
				users := make([]domain.CRMUser, 0, len(crm))
				for _, u := range crm {
					users = append(users, u)
				}
				err = s.userDir.RebuildDirectory(ctx, t.ID, p, users)
			}
			unlock()
			if err != nil {
				return rebuilt, err
			}
			rebuilt = append(rebuilt, t.ID+"/"+string(p))
		}
	}
	return rebuilt, nil
}
