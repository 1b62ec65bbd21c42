// Package historystore appends the writer's ownership history to MongoDB in batched unordered
// inserts. The collection, its document, indexes, append and read are the contract in
// libs/ownerhistory (mapper's admin API reads it); this package converts writeback entries to
// documents and batches them.
package historystore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// FromEntry converts a history entry. A CRM change published to the platform is "assigned" or
// "unassigned" (its OwnerAssign outcome is in the reason); every other outcome keeps its name.
func FromEntry(e writeback.Entry) ownerhistory.Doc {
	d := ownerhistory.Doc{
		Tenant: e.Tenant, Provider: e.Provider, RecordType: string(e.RecordType), RecordID: e.CRMRecordID,
		At: e.At.UTC(), Direction: ownerhistory.PlatformToCRM, Outcome: string(e.Outcome), OwnerBefore: e.OwnerBefore,
		OwnerAfter: e.OwnerID, PlatformUserID: e.PlatformUserID, EventID: e.EventID, Reason: e.Reason,
		PlatformRecordID: e.PlatformRecordID, OccurredAt: e.OccurredAt.UTC(), ErrorCode: e.ErrorCode,
	}
	if e.Origin == ownership.FromCRM {
		d.Direction = ownerhistory.CRMToPlatform
		if e.Outcome == writeback.Applied {
			d.Outcome = ownerhistory.Unassigned
			if e.Assign == ownership.Assigned {
				d.Outcome = ownerhistory.Assigned
			}
			if e.Assign != "" {
				d.Reason = string(e.Assign) + ": " + e.Reason
			}
		}
	}
	d.ID = ownerhistory.DocID(d)
	return d
}

// Options tune a Store; zero values take the defaults.
type Options struct {
	// MaxBatch is the most documents one insert carries (default 500).
	MaxBatch int
	// Linger is how long an entry waits for company before its insert (default 50 ms).
	Linger time.Duration
	// MaxInFlight is how many inserts run at once (default 1: SQLite, under FerretDB, takes one
	// writer at a time and makes the others wait on its busy timeout).
	MaxInFlight int
	// Detached makes Record return as soon as the entry is queued, so that handlers do not wait for
	// the insert (on FerretDB/SQLite the insert is the largest cost of a change); entries still
	// queued when the process dies are lost, and insert failures go to OnError only. Close still
	// flushes the queue.
	Detached bool
	// OnError receives the failures of detached inserts (nil: dropped).
	OnError func(error)
}

// Store appends history entries in batches; Record returns once its entry is stored.
type Store struct {
	db       *mongo.Database
	b        *batcher.Batcher[struct{}, ownerhistory.Doc, struct{}]
	detached bool
	onError  func(error)
}

// New returns a Store writing to db's ownership_history collection. Close it to flush what is
// pending.
func New(db *mongo.Database, o Options) *Store {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 500
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1
	}
	s := &Store{db: db, detached: o.Detached, onError: o.OnError}
	s.b = batcher.New(s.insert, batcher.Options[struct{}, ownerhistory.Doc]{
		MaxSize: func(struct{}) int { return o.MaxBatch }, Linger: o.Linger, MaxInFlight: o.MaxInFlight,
	})
	return s
}

var _ writeback.History = (*Store)(nil)

// Record stores one entry, batched with others; it returns when the entry is stored or failed.
func (s *Store) Record(ctx context.Context, e writeback.Entry) error {
	d := FromEntry(e)
	f := s.b.Submit(ctx, struct{}{}, d.ID, d)
	if s.detached {
		select {
		case <-f.Done():
			return f.Result().Err // refused at once: closed, or ctx already done
		default:
			return nil
		}
	}
	r, err := f.Wait(ctx)
	if err != nil {
		return err
	}
	return r.Err
}

// Close flushes pending entries and stops.
func (s *Store) Close(ctx context.Context) error { return s.b.Close(ctx) }

// insert writes one batch unordered; a document already there (the same entry recorded by an
// earlier delivery) counts as stored.
func (s *Store) insert(ctx context.Context, _ struct{}, items []batcher.Item[ownerhistory.Doc]) ([]batcher.Result[struct{}], error) {
	docs := make([]ownerhistory.Doc, len(items))
	for i, it := range items {
		docs[i] = it.Value
	}
	out, err := s.insertMany(ctx, docs)
	if s.detached && s.onError != nil {
		if err != nil {
			s.onError(err)
		}
		for _, r := range out {
			if r.Err != nil {
				s.onError(r.Err)
			}
		}
	}
	return out, err
}

func (s *Store) insertMany(ctx context.Context, docs []ownerhistory.Doc) ([]batcher.Result[struct{}], error) {
	errs, err := ownerhistory.Append(ctx, s.db, docs)
	if err != nil {
		return nil, err
	}
	out := make([]batcher.Result[struct{}], len(docs))
	for i, e := range errs {
		out[i].Err = e
	}
	return out, nil
}
