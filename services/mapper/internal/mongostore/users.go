// Package mongostore keeps mapper's data in MongoDB: platform users, CRM users, mappings, sync runs
// and failures. Writes are single-document, idempotent and keyed on natural ids (no transactions,
// docs/architecture.md#storage); a change older than what is stored is ignored, so redeliveries and
// out-of-order events never roll a user back.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Collection names.
const (
	PlatformUsers = "platform_users"
	CRMUsers      = "crm_users"
	Mappings      = "mappings"
	// Problems holds problems one per document, the layout before issue 18: read and moved
	// into ProblemSets on a tenant's first write.
	Problems = "problems"
	// ProblemSets holds each tenant's and provider's problems as a chunked set (chunks.go).
	ProblemSets = "problem_sets"
	// CRMDirectory holds each tenant's and provider's CRM users as Sync Users last wrote them, as
	// a chunked set (crmsnap.go); CRMUsers keeps one document per user for the events.
	CRMDirectory = "crm_directory"
	// MappingSets holds each tenant's and provider's mappings as Sync Users last wrote them, as a
	// chunked set valid for one generation of the mappings (mapsnap.go); Mappings stays the
	// store every write goes to.
	MappingSets = "mapping_sets"
	SyncRuns    = "sync_runs"
	SyncLocks   = "sync_locks"
	Failures    = "failures"
	KVState     = "kv_state"
)

// Indexes are the indexes mapper creates at start.
var Indexes = []mongodb.Index{
	{Collection: PlatformUsers, Name: "tenant", Keys: bson.D{{Key: "tenant", Value: 1}}},
	{Collection: PlatformUsers, Name: "tenant_email", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "email_norm", Value: 1}}},
	{Collection: CRMUsers, Name: "tenant_provider", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}}},
	{Collection: CRMUsers, Name: "tenant_provider_email", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "email_norm", Value: 1}}},
	// One mapping per platform user and one per CRM user (rule 2). Mappings always name both users:
	// conflicts and unmapped users are problems, never half-empty mappings, so neither unique index
	// ever sees an empty value.
	{Collection: Mappings, Name: "one_per_platform_user", Unique: true, Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "platform_user_id", Value: 1}}},
	{Collection: Mappings, Name: "one_per_crm_user", Unique: true, Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "crm_user_id", Value: 1}}},
	{Collection: Problems, Name: "tenant_provider", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}}},
	{Collection: SyncRuns, Name: "tenant_started", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "started_at", Value: -1}}},
	{Collection: Provisions, Name: "tenant_provider", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}}},
	{Collection: Failures, Name: "tenant_time", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "time", Value: -1}}},
}

// platformUserDoc is a stored platform user.
type platformUserDoc struct {
	Key        string    `bson:"_id"` // <tenant>/<user id>
	Tenant     string    `bson:"tenant"`
	ID         string    `bson:"user_id"`
	Email      string    `bson:"email"`
	EmailNorm  string    `bson:"email_norm"`
	FirstName  string    `bson:"first_name"`
	LastName   string    `bson:"last_name"`
	Status     string    `bson:"status"`
	Kind       string    `bson:"kind"`
	TeamID     string    `bson:"team_id"`
	SourceTime time.Time `bson:"source_time"`
	UpdatedAt  time.Time `bson:"updated_at"`
}

// Store is mapper's MongoDB store.
type Store struct {
	db   *mongo.Database
	now  func() time.Time
	bulk BulkWrites
}

// Options configure a store.
type Options struct {
	// BulkWrites is how bulk changes replace documents (config: OWNERSYNC_MONGODB_BULK_WRITES);
	// empty is PerDocument.
	BulkWrites BulkWrites
	// Now stamps updated_at and since times (nil: time.Now).
	Now func() time.Time
}

// New returns a store.
func New(db *mongo.Database, o Options) *Store {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BulkWrites == "" {
		o.BulkWrites = PerDocument
	}
	return &Store{db: db, now: o.Now, bulk: o.BulkWrites}
}

// UserKey is the stored key of a tenant's user.
func UserKey(tenant, id string) string { return tenant + "/" + id }

// UpsertPlatformUser stores u unless a change with a later (or equal) source time is already
// stored. It reports whether the stored user changed.
func (s *Store) UpsertPlatformUser(ctx context.Context, pu domain.PlatformUser) (applied bool, err error) {
	u := toPlatformDoc(pu, s.now().UTC().Truncate(time.Millisecond))
	filter := bson.D{{Key: "_id", Value: u.Key}, {Key: "source_time", Value: bson.D{{Key: "$lt", Value: u.SourceTime}}}}
	res, err := s.db.Collection(PlatformUsers).ReplaceOne(ctx, filter, u, options.Replace().SetUpsert(true))
	if mongodb.IsDuplicateKey(err) {
		// A document with this key and a newer or equal source time exists: stale or duplicate.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("upsert platform user %s: %w", u.Key, err)
	}
	return res.ModifiedCount > 0 || res.UpsertedCount > 0, nil
}

func toPlatformDoc(u domain.PlatformUser, now time.Time) platformUserDoc {
	return platformUserDoc{Key: UserKey(u.Tenant, u.ID), Tenant: u.Tenant, ID: u.ID, Email: u.Email,
		EmailNorm: mapping.NormalizeEmail(u.Email), FirstName: u.FirstName, LastName: u.LastName, Status: u.Status,
		Kind: u.Kind, TeamID: u.TeamID, SourceTime: u.SourceTime.UTC().Truncate(time.Millisecond), UpdatedAt: now}
}

func (d platformUserDoc) user() domain.PlatformUser {
	return domain.PlatformUser{Tenant: d.Tenant, ID: d.ID, Email: d.Email, FirstName: d.FirstName, LastName: d.LastName,
		Status: d.Status, Kind: d.Kind, TeamID: d.TeamID, SourceTime: d.SourceTime, UpdatedAt: d.UpdatedAt}
}

func platformUsers(docs []platformUserDoc) []domain.PlatformUser {
	out := make([]domain.PlatformUser, len(docs))
	for i, d := range docs {
		out[i] = d.user()
	}
	return out
}

// PlatformUser returns one stored platform user; domain.ErrNotFound when there is none.
func (s *Store) PlatformUser(ctx context.Context, tenant, id string) (*domain.PlatformUser, error) {
	var d platformUserDoc
	err := s.db.Collection(PlatformUsers).FindOne(ctx, bson.D{{Key: "_id", Value: UserKey(tenant, id)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("platform user %s/%s: %w", tenant, id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get platform user %s/%s: %w", tenant, id, err)
	}
	u := d.user()
	return &u, nil
}

// PlatformUsers returns every stored platform user of a tenant.
func (s *Store) PlatformUsers(ctx context.Context, tenant string) ([]domain.PlatformUser, error) {
	cur, err := s.db.Collection(PlatformUsers).Find(ctx, bson.D{{Key: "tenant", Value: tenant}})
	if err != nil {
		return nil, fmt.Errorf("list platform users %s: %w", tenant, err)
	}
	var docs []platformUserDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list platform users %s: %w", tenant, err)
	}
	return platformUsers(docs), nil
}

// PlatformUsersByEmail returns the stored platform users of a tenant whose email equals one of
// emails as the rules compare them.
func (s *Store) PlatformUsersByEmail(ctx context.Context, tenant string, emails []string) ([]domain.PlatformUser, error) {
	var out []domain.PlatformUser
	for _, e := range uniqueNorm(emails) {
		cur, err := s.db.Collection(PlatformUsers).Find(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "email_norm", Value: e}})
		if err != nil {
			return nil, fmt.Errorf("platform users by email %s: %w", tenant, err)
		}
		var docs []platformUserDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("platform users by email %s: %w", tenant, err)
		}
		out = append(out, platformUsers(docs)...)
	}
	return out, nil
}

// InsertPlatformUsers bulk-loads platform users (benchmarks, demo seeds); existing ones are
// replaced.
func (s *Store) InsertPlatformUsers(ctx context.Context, users []domain.PlatformUser) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	docs := make([]keyed, len(users))
	for i, u := range users {
		d := toPlatformDoc(u, now)
		docs[i] = keyed{d.Key, d}
	}
	if err := s.write(ctx, s.db.Collection(PlatformUsers), docs, nil, nil); err != nil {
		return fmt.Errorf("insert platform users: %w", err)
	}
	return nil
}
