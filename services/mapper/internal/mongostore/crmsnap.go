package mongostore

import (
	"context"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// The CRM directory of a tenant's provider is kept twice: one document per user in CRMUsers,
// which the events read and write user by user, and a chunked set in CRMDirectory (chunks.go)
// that Sync Users reads whole instead of decoding every user document (issue 18: 100k users
// read as 50 chunks in about half a second on FerretDB, against 10–20 s as documents).
//
// The set is what Sync Users last wrote. A user an event changes afterwards (PutCRMUser,
// DeleteCRMUser) is marked dirty in the set's head, and a read takes each dirty user from its
// own document. Sync Users marks the users it is about to change before writing their
// documents (a crash in between leaves them dirty, not wrong), writes the set, and clears the
// marks only if the head's version is still the one it read (marks made meanwhile stay). A set
// with too many marks, a stale one or none at all is read from the documents, as before.

// maxDirty is the number of dirty marks up to which a read takes them one by one; beyond it a
// read scans the documents and the next Sync Users rewrites the set.
const maxDirty = 1000

func (s *Store) crmSets() chunkSet[domain.CRMUser] {
	return chunkSet[domain.CRMUser]{coll: func() *mongo.Collection { return s.db.Collection(CRMDirectory) }, now: s.now,
		key: func(u domain.CRMUser) string { return u.ID }}
}

// crmRead is how ReadCRMUsers read the users (domain.StoredCRMUsers.Read).
type crmRead struct {
	// head is the set's head as read (nil: none).
	head *setHead
	// fromSet says the users came from the set (plus its dirty users).
	fromSet bool
}

// ReadCRMUsers returns every stored CRM user of a tenant and provider, by id, with the note
// WriteCRMUsers needs.
func (s *Store) ReadCRMUsers(ctx context.Context, tenant string, provider provider.Provider) (domain.StoredCRMUsers, error) {
	set, err := s.crmSets().load(ctx, tenant, provider)
	if err != nil {
		return domain.StoredCRMUsers{}, fmt.Errorf("list crm users %s/%s: %w", tenant, provider, err)
	}
	h := set.head
	if h == nil || h.Gen == "" || h.Stale || len(h.Dirty) > maxDirty {
		users, err := s.crmUserDocs(ctx, tenant, provider)
		return domain.StoredCRMUsers{Users: users, Read: &crmRead{head: h}}, err
	}
	users := make(map[string]domain.CRMUser, len(set.items)+len(h.Dirty))
	for _, u := range set.items {
		users[u.ID] = u
	}
	for _, id := range h.Dirty {
		u, err := s.CRMUser(ctx, tenant, provider, id)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			delete(users, id)
		case err != nil:
			return domain.StoredCRMUsers{}, err
		default:
			users[id] = u
		}
	}
	return domain.StoredCRMUsers{Users: users, Read: &crmRead{head: h, fromSet: true}}, nil
}

// CRMUsers returns every stored CRM user of a tenant and provider, by id.
func (s *Store) CRMUsers(ctx context.Context, tenant string, provider provider.Provider) (map[string]domain.CRMUser, error) {
	st, err := s.ReadCRMUsers(ctx, tenant, provider)
	return st.Users, err
}

// markCRMDirty records that the users' documents changed outside the set.
func (s *Store) markCRMDirty(ctx context.Context, tenant string, provider provider.Provider, ids ...string) error {
	_, err := s.db.Collection(CRMDirectory).UpdateOne(ctx, bson.D{{Key: "_id", Value: setKey(tenant, provider)}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "dirty", Value: bson.D{{Key: "$each", Value: ids}}}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mark crm users changed %s/%s: %w", tenant, provider, err)
	}
	return nil
}

// markCRMStale makes readers of the set go to the documents until the next Sync Users.
func (s *Store) markCRMStale(ctx context.Context, tenant string, provider provider.Provider) error {
	_, err := s.db.Collection(CRMDirectory).UpdateOne(ctx, bson.D{{Key: "_id", Value: setKey(tenant, provider)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "stale", Value: true}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}}})
	if err != nil {
		return fmt.Errorf("mark crm users stale %s/%s: %w", tenant, provider, err)
	}
	return nil
}
