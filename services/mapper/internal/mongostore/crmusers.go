package mongostore

import (
	"context"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// crmUserDoc is a stored CRM user. The key is <tenant>/<provider>/<CRM user id>.
type crmUserDoc struct {
	Key           string            `bson:"_id"`
	Tenant        string            `bson:"tenant"`
	Provider      provider.Provider `bson:"provider"`
	ID            string            `bson:"user_id"`
	Email         string            `bson:"email"`
	EmailNorm     string            `bson:"email_norm"`
	FirstName     string            `bson:"first_name"`
	LastName      string            `bson:"last_name"`
	Active        bool              `bson:"active"`
	Kind          string            `bson:"kind"`
	Username      string            `bson:"username,omitempty"`
	UserType      string            `bson:"user_type,omitempty"`
	License       string            `bson:"license,omitempty"`
	HubSpotUserID int64             `bson:"hubspot_user_id,omitempty"`
	SourceTime    time.Time         `bson:"source_time"`
	UpdatedAt     time.Time         `bson:"updated_at"`
}

// CRMUserKey is the stored key of a CRM user.
func CRMUserKey(tenant string, provider provider.Provider, id string) string {
	return tenant + "/" + string(provider) + "/" + id
}

func toCRMDoc(tenant string, provider provider.Provider, u domain.CRMUser, now time.Time) crmUserDoc {
	return crmUserDoc{
		Key: CRMUserKey(tenant, provider, u.ID), Tenant: tenant, Provider: provider, ID: u.ID,
		Email: u.Email, EmailNorm: mapping.NormalizeEmail(u.Email), FirstName: u.FirstName, LastName: u.LastName,
		Active: u.Active, Kind: string(u.Kind), Username: u.Username, UserType: u.UserType, License: u.License,
		HubSpotUserID: u.HubSpotUserID, SourceTime: u.SourceTime.UTC().Truncate(time.Millisecond), UpdatedAt: now,
	}
}

func (d crmUserDoc) user() domain.CRMUser {
	return domain.CRMUser{
		CRMUser: mapping.CRMUser{ID: d.ID, Email: d.Email, FirstName: d.FirstName, LastName: d.LastName,
			Active: d.Active, Kind: mapping.CRMKind(d.Kind), Username: d.Username, UserType: d.UserType, License: d.License},
		HubSpotUserID: d.HubSpotUserID, SourceTime: d.SourceTime, UpdatedAt: d.UpdatedAt,
	}
}

// crmUserDocs reads every CRM user document of a tenant and provider, by id.
func (s *Store) crmUserDocs(ctx context.Context, tenant string, provider provider.Provider) (map[string]domain.CRMUser, error) {
	cur, err := s.db.Collection(CRMUsers).Find(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}})
	if err != nil {
		return nil, fmt.Errorf("list crm users %s/%s: %w", tenant, provider, err)
	}
	defer cur.Close(ctx)
	out := map[string]domain.CRMUser{}
	for cur.Next(ctx) {
		var d crmUserDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("decode crm user: %w", err)
		}
		out[d.ID] = d.user()
	}
	return out, cur.Err()
}

// CRMUser returns one stored CRM user.
func (s *Store) CRMUser(ctx context.Context, tenant string, provider provider.Provider, id string) (domain.CRMUser, error) {
	var d crmUserDoc
	err := s.db.Collection(CRMUsers).FindOne(ctx, bson.D{{Key: "_id", Value: CRMUserKey(tenant, provider, id)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return domain.CRMUser{}, fmt.Errorf("crm user %s/%s/%s: %w", tenant, provider, id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.CRMUser{}, fmt.Errorf("get crm user %s/%s/%s: %w", tenant, provider, id, err)
	}
	return d.user(), nil
}

// CRMUsersByEmail returns the stored CRM users of a tenant and provider whose email equals one of
// emails as the rules compare them.
func (s *Store) CRMUsersByEmail(ctx context.Context, tenant string, provider provider.Provider, emails []string) ([]domain.CRMUser, error) {
	var out []domain.CRMUser
	for _, e := range uniqueNorm(emails) {
		cur, err := s.db.Collection(CRMUsers).Find(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}, {Key: "email_norm", Value: e}})
		if err != nil {
			return nil, fmt.Errorf("crm users by email %s/%s: %w", tenant, provider, err)
		}
		var docs []crmUserDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("crm users by email %s/%s: %w", tenant, provider, err)
		}
		for _, d := range docs {
			out = append(out, d.user())
		}
	}
	return out, nil
}

// PutCRMUser stores one CRM user unless a change with a later source time is already stored
// (a zero source time always applies: it is a fresh read from the CRM). It returns the user as
// stored and whether it changed.
func (s *Store) PutCRMUser(ctx context.Context, tenant string, provider provider.Provider, u domain.CRMUser) (stored domain.CRMUser, changed bool, err error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	d := toCRMDoc(tenant, provider, u, now)
	filter := bson.D{{Key: "_id", Value: d.Key}}
	if !d.SourceTime.IsZero() {
		filter = append(filter, bson.E{Key: "source_time", Value: bson.D{{Key: "$lte", Value: d.SourceTime}}})
	}
	res, err := s.db.Collection(CRMUsers).ReplaceOne(ctx, filter, d, options.Replace().SetUpsert(true))
	if err != nil && !isDuplicateKey(err) {
		return domain.CRMUser{}, false, fmt.Errorf("put crm user %s: %w", d.Key, err)
	}
	if err == nil && (res.ModifiedCount > 0 || res.UpsertedCount > 0) {
		if err := s.markCRMDirty(ctx, tenant, provider, u.ID); err != nil {
			return domain.CRMUser{}, false, err
		}
		return d.user(), true, nil
	}
	cur, err := s.CRMUser(ctx, tenant, provider, u.ID)
	return cur, false, err
}

// DeleteCRMUser removes a CRM user (it no longer exists in the CRM).
func (s *Store) DeleteCRMUser(ctx context.Context, tenant string, provider provider.Provider, id string) error {
	_, err := s.db.Collection(CRMUsers).DeleteOne(ctx, bson.D{{Key: "_id", Value: CRMUserKey(tenant, provider, id)}})
	if err != nil {
		return fmt.Errorf("delete crm user %s/%s/%s: %w", tenant, provider, id, err)
	}
	return s.markCRMDirty(ctx, tenant, provider, id)
}

// WriteCRMUsers applies a diff to the users read as stored: InsertMany for new users,
// replacements for changed ones and deletions for vanished ones (see write and BulkWrites for how
// FerretDB gets them in few scans), then writes the chunked set (crmsnap.go), rewriting only the
// chunks that hold a change. Replays are harmless.
func (s *Store) WriteCRMUsers(ctx context.Context, tenant string, provider provider.Provider, stored domain.StoredCRMUsers, d domain.CRMUsersDiff) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	read, _ := stored.Read.(*crmRead)
	if read == nil {
		read = &crmRead{}
	}
	changed := make([]string, 0, len(d.Inserts)+len(d.Updates)+len(d.Deletes))
	after := make(map[string]domain.CRMUser, len(d.Inserts)+len(d.Updates))
	inserts := make([]keyed, 0, len(d.Inserts))
	for _, u := range d.Inserts {
		doc := toCRMDoc(tenant, provider, u, now)
		inserts = append(inserts, keyed{doc.Key, doc})
		after[u.ID] = doc.user()
		changed = append(changed, u.ID)
	}
	replaces := make([]keyed, 0, len(d.Updates))
	for _, u := range d.Updates {
		doc := toCRMDoc(tenant, provider, u, now)
		replaces = append(replaces, keyed{doc.Key, doc})
		after[u.ID] = doc.user()
		changed = append(changed, u.ID)
	}
	deletes := make([]string, 0, len(d.Deletes))
	gone := make(map[string]bool, len(d.Deletes))
	for _, id := range d.Deletes {
		deletes = append(deletes, CRMUserKey(tenant, provider, id))
		gone[id] = true
		changed = append(changed, id)
	}
	// The set's version after this write's own marks; checked when the set is written.
	h := read.head
	var version int64
	clear := true
	if h != nil {
		version = h.Version
	}
	if h != nil && h.Gen != "" && !h.Stale && len(changed) > 0 {
		// Mark the users first: a crash before the set is written leaves them dirty.
		if len(changed) > maxDirty {
			if err := s.markCRMStale(ctx, tenant, provider); err != nil {
				return err
			}
			clear = false
		} else {
			res, err := s.db.Collection(CRMDirectory).UpdateOne(ctx, bson.D{{Key: "_id", Value: h.Key}, {Key: "version", Value: h.Version}},
				bson.D{{Key: "$addToSet", Value: bson.D{{Key: "dirty", Value: bson.D{{Key: "$each", Value: changed}}}}}, {Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}}})
			if err != nil {
				return fmt.Errorf("mark crm users changed %s/%s: %w", tenant, provider, err)
			}
			if res.MatchedCount == 0 {
				// Someone marked users since the read: the set cannot tell which of them this
				// write covers.
				if err := s.markCRMStale(ctx, tenant, provider); err != nil {
					return err
				}
				clear = false
			}
			version++
		}
	}
	if err := s.write(ctx, s.db.Collection(CRMUsers), inserts, replaces, deletes); err != nil {
		return fmt.Errorf("write crm users %s/%s: %w", tenant, provider, err)
	}
	if !clear {
		return nil // read from the documents until the next Sync Users writes the set again
	}
	if read.fromSet && len(changed) == 0 && len(h.Dirty) == 0 {
		return nil // the set holds these users already
	}
	users := make([]domain.CRMUser, 0, len(stored.Users)+len(d.Inserts))
	for id, u := range stored.Users {
		if _, ok := after[id]; !ok && !gone[id] {
			users = append(users, u)
		}
	}
	for _, u := range after {
		users = append(users, u)
	}
	o := saveOptions{changed: changed, checkVersion: h != nil, version: version}
	if read.fromSet {
		// The dirty users were read from their documents: their chunks change too.
		o.changed = append(o.changed, h.Dirty...)
	} else {
		o.changed = nil // read from the documents: every chunk
	}
	if _, err := s.crmSets().save(ctx, tenant, provider, h, users, o); err != nil {
		return fmt.Errorf("write crm directory %s/%s: %w", tenant, provider, err)
	}
	return nil
}

func isDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

func uniqueNorm(emails []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range emails {
		n := mapping.NormalizeEmail(e)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}
