package mongostore

import (
	"context"

	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// RecordHistory returns the ownership changes of one CRM record, oldest first (at most
// ownerhistory.MaxRead), from the writer's ownership_history collection (libs/ownerhistory).
func (s *Store) RecordHistory(ctx context.Context, tenant string, prov provider.Provider, recordType, recordID string) ([]domain.HistoryEntry, error) {
	docs, err := ownerhistory.Read(ctx, s.db, ownerhistory.Record{Tenant: tenant, Provider: provider.Provider(prov), RecordType: recordType, RecordID: recordID})
	if err != nil {
		return nil, err
	}
	out := make([]domain.HistoryEntry, len(docs))
	for i, d := range docs {
		out[i] = historyEntry(d)
	}
	return out, nil
}

func historyEntry(d ownerhistory.Doc) domain.HistoryEntry {
	return domain.HistoryEntry{ID: d.ID, Tenant: d.Tenant, Provider: d.Provider, RecordType: d.RecordType,
		RecordID: d.RecordID, At: d.At, Direction: d.Direction, Outcome: d.Outcome, OwnerBefore: d.OwnerBefore,
		OwnerAfter: d.OwnerAfter, PlatformUserID: d.PlatformUserID, EventID: d.EventID, Reason: d.Reason,
		PlatformRecordID: d.PlatformRecordID, OccurredAt: d.OccurredAt, ErrorCode: d.ErrorCode}
}

// FailedWrites returns a tenant's failed record writes, newest first (at most limit), and their
// number, from the writer's ownership_history (libs/ownerhistory.ReadOutcome).
func (s *Store) FailedWrites(ctx context.Context, tenant string, limit int) (domain.FailedWrites, error) {
	docs, total, err := ownerhistory.ReadOutcome(ctx, s.db, tenant, ownerhistory.Failed, limit)
	if err != nil {
		return domain.FailedWrites{}, err
	}
	out := domain.FailedWrites{Total: int(total), Entries: make([]domain.HistoryEntry, len(docs))}
	for i, d := range docs {
		out.Entries[i] = historyEntry(d)
	}
	return out, nil
}
