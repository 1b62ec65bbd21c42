package secretbox

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

// Collection is the MongoDB collection of stored secrets.
const Collection = "stored_secrets"

// Indexes are the collection's indexes (for mongodb.EnsureIndexes).
var Indexes = []mongodb.Index{
	{Collection: Collection, Name: "tenant_name", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "name", Value: 1}}, Unique: true},
	{Collection: Collection, Name: "key_id", Keys: bson.D{{Key: "key_id", Value: 1}}},
}

// Store keeps sealed values in MongoDB, one per (tenant, name).
type Store struct {
	coll *mongo.Collection
	keys *Keyring
	now  func() time.Time
}

// NewStore returns a store over db's stored_secrets collection.
func NewStore(db *mongo.Database, keys *Keyring) *Store {
	return &Store{coll: db.Collection(Collection), keys: keys, now: time.Now}
}

// Keys is the store's keyring.
func (s *Store) Keys() *Keyring { return s.keys }

type doc struct {
	ID        string `bson:"_id"`
	Tenant    string `bson:"tenant"`
	Name      string `bson:"name"`
	Sealed    `bson:",inline"`
	UpdatedAt time.Time `bson:"updated_at"`
}

func docID(tenantID, name string) string { return tenantID + "/" + name }

// Put seals value and stores it under (tenant, name), replacing what was there.
func (s *Store) Put(ctx context.Context, tenantID, name string, value Secret) error {
	id := docID(tenantID, name)
	sealed, err := s.keys.Seal(value.Reveal(), id)
	if err != nil {
		return err
	}
	d := doc{ID: id, Tenant: tenantID, Name: name, Sealed: sealed, UpdatedAt: s.now().UTC()}
	if _, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, d, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("store secret %s: %w", id, err)
	}
	return nil
}

// Get opens the value stored under (tenant, name): ErrNotFound, ErrUnknownKey or ErrOpen.
func (s *Store) Get(ctx context.Context, tenantID, name string) (Secret, error) {
	id := docID(tenantID, name)
	var d doc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Secret{}, fmt.Errorf("secret %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("read secret %s: %w", id, err)
	}
	v, err := s.keys.Open(d.Sealed, id)
	if err != nil {
		return Secret{}, fmt.Errorf("secret %s: %w", id, err)
	}
	return v, nil
}

// Delete removes the value (no error when there was none).
func (s *Store) Delete(ctx context.Context, tenantID, name string) error {
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: docID(tenantID, name)}}); err != nil {
		return fmt.Errorf("delete secret %s/%s: %w", tenantID, name, err)
	}
	return nil
}

// DeleteTenant removes every value of a tenant.
func (s *Store) DeleteTenant(ctx context.Context, tenantID string) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenantID}}); err != nil {
		return fmt.Errorf("delete secrets of %s: %w", tenantID, err)
	}
	return nil
}

// RewrapResult counts what Rewrap did.
type RewrapResult struct {
	Rewrapped int
	// Failed lists the slots that could not be opened (unknown key or tampered); they keep their
	// old key id, so the old key must stay in the ring until they are re-connected or deleted.
	Failed []string
}

// Rewrap re-seals every data key not under the primary key with the primary key. Values and their
// ciphertexts are unchanged, so no tenant has to re-connect; afterwards the old key can leave the
// operator's configuration (when Failed is empty). Safe to run concurrently with Put: a document
// replaced in between is not overwritten (the update matches the old wrapped key).
func (s *Store) Rewrap(ctx context.Context) (RewrapResult, error) {
	var res RewrapResult
	cur, err := s.coll.Find(ctx, bson.D{{Key: "key_id", Value: bson.D{{Key: "$ne", Value: s.keys.Primary()}}}})
	if err != nil {
		return res, fmt.Errorf("list secrets to rewrap: %w", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return res, fmt.Errorf("list secrets to rewrap: %w", err)
	}
	for _, d := range docs {
		ns, err := s.keys.Rewrap(d.Sealed, d.ID)
		if err != nil {
			res.Failed = append(res.Failed, d.ID)
			continue
		}
		_, err = s.coll.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: d.ID}, {Key: "key_id", Value: d.KeyID}, {Key: "wrapped_key", Value: d.WrappedKey}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "key_id", Value: ns.KeyID}, {Key: "wrapped_key", Value: ns.WrappedKey}}}})
		if err != nil {
			return res, fmt.Errorf("rewrap %s: %w", d.ID, err)
		}
		res.Rewrapped++
	}
	return res, nil
}

// CountByKey returns how many values are sealed under each key id (for the operator before a key
// leaves the configuration).
func (s *Store) CountByKey(ctx context.Context) (map[string]int, error) {
	cur, err := s.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "key_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("count secrets by key: %w", err)
	}
	var docs []struct {
		KeyID string `bson:"key_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("count secrets by key: %w", err)
	}
	out := map[string]int{}
	for _, d := range docs {
		out[d.KeyID]++
	}
	return out, nil
}
