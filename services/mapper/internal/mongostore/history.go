package mongostore

import (
	"context"

	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// RecordHistory returns the ownership changes of one CRM record, oldest first (at most
// ownerhistory.MaxRead), from the writer's ownership_history collection (libs/ownerhistory).
func (s *Store) RecordHistory(ctx context.Context, tenant, prov, recordType, recordID string) ([]domain.HistoryEntry, error) {
	docs, err := ownerhistory.Read(ctx, s.db, ownerhistory.Record{Tenant: tenant, Provider: provider.Provider(prov), RecordType: recordType, RecordID: recordID})
	if err != nil {
		return nil, err
	}
	out := make([]domain.HistoryEntry, len(docs))
	for i, d := range docs {
		out[i] = domain.HistoryEntry{ID: d.ID, Tenant: d.Tenant, Provider: string(d.Provider), RecordType: d.RecordType,
			RecordID: d.RecordID, At: d.At, Direction: d.Direction, Outcome: d.Outcome, OwnerBefore: d.OwnerBefore,
			OwnerAfter: d.OwnerAfter, PlatformUserID: d.PlatformUserID, EventID: d.EventID, Reason: d.Reason,
			PlatformRecordID: d.PlatformRecordID, OccurredAt: d.OccurredAt}
	}
	return out, nil
}
