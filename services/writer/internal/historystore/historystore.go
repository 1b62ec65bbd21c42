// Package historystore appends the writer's ownership history to MongoDB (the ownership_history
// collection, DESIGN §5), in batched unordered inserts. mapper's admin API reads the collection for
// GET /v1/tenants/{t}/records/{provider}/{type}/{id}/history, so the document shape is a contract:
//
//	{_id, tenant, provider, record_type, record_id, at, direction ("crm_to_platform" |
//	 "platform_to_crm"), outcome, owner_before, owner_after, platform_user_id, event_id, reason,
//	 platform_record_id, occurred_at}
//
// The _id derives from the record, the event and the outcome, so a redelivered change that comes to
// the same outcome adds nothing.
package historystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// Collection is the history collection.
const Collection = "ownership_history"

// Indexes are the collection's indexes: one record's history in time order.
func Indexes() []mongodb.Index {
	return []mongodb.Index{{Collection: Collection, Name: "record_at",
		Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "record_type", Value: 1}, {Key: "record_id", Value: 1}, {Key: "at", Value: 1}}}}
}

// Doc is one history document.
type Doc struct {
	ID               string    `bson:"_id"`
	Tenant           string    `bson:"tenant"`
	Provider         string    `bson:"provider"`
	RecordType       string    `bson:"record_type"`
	RecordID         string    `bson:"record_id"`
	At               time.Time `bson:"at"`
	Direction        string    `bson:"direction"`
	Outcome          string    `bson:"outcome"`
	OwnerBefore      string    `bson:"owner_before"`
	OwnerAfter       string    `bson:"owner_after"`
	PlatformUserID   string    `bson:"platform_user_id"`
	EventID          string    `bson:"event_id"`
	Reason           string    `bson:"reason"`
	PlatformRecordID string    `bson:"platform_record_id,omitempty"`
	OccurredAt       time.Time `bson:"occurred_at"`
}

// FromEntry converts a history entry. A CRM change published to the platform is "assigned" or
// "unassigned" (its OwnerAssign outcome is in the reason); every other outcome keeps its name.
func FromEntry(e writeback.Entry) Doc {
	d := Doc{
		Tenant: e.Tenant, Provider: string(e.Provider), RecordType: string(e.RecordType), RecordID: e.CRMRecordID,
		At: e.At.UTC(), Direction: "platform_to_crm", Outcome: string(e.Outcome), OwnerBefore: e.OwnerBefore,
		OwnerAfter: e.OwnerID, PlatformUserID: e.PlatformUserID, EventID: e.EventID, Reason: e.Reason,
		PlatformRecordID: e.PlatformRecordID, OccurredAt: e.OccurredAt.UTC(),
	}
	if e.Origin == ownership.FromCRM {
		d.Direction = "crm_to_platform"
		if e.Outcome == writeback.Applied {
			d.Outcome = "unassigned"
			if e.Assign == ownership.Assigned {
				d.Outcome = "assigned"
			}
			if e.Assign != "" {
				d.Reason = string(e.Assign) + ": " + e.Reason
			}
		}
	}
	d.ID = strings.Join([]string{d.Tenant, d.Provider, d.RecordType, d.RecordID, d.EventID, d.Direction, d.Outcome}, "|")
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
	coll     *mongo.Collection
	b        *batcher.Batcher[struct{}, Doc, struct{}]
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
	s := &Store{coll: db.Collection(Collection), detached: o.Detached, onError: o.OnError}
	s.b = batcher.New(s.insert, batcher.Options[struct{}, Doc]{
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
func (s *Store) insert(ctx context.Context, _ struct{}, items []batcher.Item[Doc]) ([]batcher.Result[struct{}], error) {
	docs := make([]any, len(items))
	for i, it := range items {
		docs[i] = it.Value
	}
	out, err := s.insertMany(ctx, items, docs)
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

func (s *Store) insertMany(ctx context.Context, items []batcher.Item[Doc], docs []any) ([]batcher.Result[struct{}], error) {
	out := make([]batcher.Result[struct{}], len(items))
	_, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return out, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, fmt.Errorf("insert %d history entries: %w", len(items), err)
	}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(out) {
			return nil, fmt.Errorf("insert %d history entries: %w", len(items), err)
		}
		if we.Code != 11000 { // duplicate key: stored by an earlier delivery
			out[we.Index].Err = fmt.Errorf("insert history entry %s: %w", items[we.Index].RecordID, we)
		}
	}
	return out, nil
}
