// Package mongostore keeps mapper's data in MongoDB: platform users, CRM users, mappings, sync runs
// and failures. Writes are single-document, idempotent and keyed on natural ids (no transactions,
// DESIGN §5); a change older than what is stored is ignored, so redeliveries and out-of-order
// events never roll a user back.
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
)

// Collection names.
const (
	PlatformUsers = "platform_users"
	CRMUsers      = "crm_users"
)

// Indexes are the indexes mapper creates at start.
var Indexes = []mongodb.Index{
	{Collection: PlatformUsers, Name: "tenant", Keys: bson.D{{Key: "tenant", Value: 1}}},
	{Collection: CRMUsers, Name: "tenant_provider", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}}},
}

// PlatformUser is a stored platform user.
type PlatformUser struct {
	Key        string    `bson:"_id"` // <tenant>/<user id>
	Tenant     string    `bson:"tenant"`
	ID         string    `bson:"user_id"`
	Email      string    `bson:"email"`
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
	db  *mongo.Database
	now func() time.Time
}

// New returns a store.
func New(db *mongo.Database, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// DB is the database (for other stores of mapper).
func (s *Store) DB() *mongo.Database { return s.db }

// UserKey is the stored key of a tenant's user.
func UserKey(tenant, id string) string { return tenant + "/" + id }

// UpsertPlatformUser stores u unless a change with a later (or equal) source time is already
// stored. It reports whether the stored user changed.
func (s *Store) UpsertPlatformUser(ctx context.Context, u PlatformUser) (applied bool, err error) {
	u.Key = UserKey(u.Tenant, u.ID)
	u.SourceTime = u.SourceTime.UTC().Truncate(time.Millisecond)
	u.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
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

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = errors.New("not found")

// PlatformUser returns one stored platform user.
func (s *Store) PlatformUser(ctx context.Context, tenant, id string) (*PlatformUser, error) {
	var u PlatformUser
	err := s.db.Collection(PlatformUsers).FindOne(ctx, bson.D{{Key: "_id", Value: UserKey(tenant, id)}}).Decode(&u)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("platform user %s/%s: %w", tenant, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get platform user %s/%s: %w", tenant, id, err)
	}
	return &u, nil
}
