package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// crmUserDoc is a stored CRM user. The key is <tenant>/<provider>/<CRM user id>.
type crmUserDoc struct {
	Key           string    `bson:"_id"`
	Tenant        string    `bson:"tenant"`
	Provider      string    `bson:"provider"`
	ID            string    `bson:"user_id"`
	Email         string    `bson:"email"`
	EmailNorm     string    `bson:"email_norm"`
	FirstName     string    `bson:"first_name"`
	LastName      string    `bson:"last_name"`
	Active        bool      `bson:"active"`
	Kind          string    `bson:"kind"`
	Username      string    `bson:"username,omitempty"`
	UserType      string    `bson:"user_type,omitempty"`
	License       string    `bson:"license,omitempty"`
	HubSpotUserID int64     `bson:"hubspot_user_id,omitempty"`
	SourceTime    time.Time `bson:"source_time"`
	UpdatedAt     time.Time `bson:"updated_at"`
}

// CRMUserKey is the stored key of a CRM user.
func CRMUserKey(tenant, provider, id string) string { return tenant + "/" + provider + "/" + id }

func toCRMDoc(tenant, provider string, u domain.CRMUser, now time.Time) crmUserDoc {
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

// CRMUsers returns every stored CRM user of a tenant and provider, by id.
func (s *Store) CRMUsers(ctx context.Context, tenant, provider string) (map[string]domain.CRMUser, error) {
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
func (s *Store) CRMUser(ctx context.Context, tenant, provider, id string) (domain.CRMUser, error) {
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
func (s *Store) CRMUsersByEmail(ctx context.Context, tenant, provider string, emails []string) ([]domain.CRMUser, error) {
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
func (s *Store) PutCRMUser(ctx context.Context, tenant, provider string, u domain.CRMUser) (stored domain.CRMUser, changed bool, err error) {
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
		return d.user(), true, nil
	}
	cur, err := s.CRMUser(ctx, tenant, provider, u.ID)
	return cur, false, err
}

// DeleteCRMUser removes a CRM user (it no longer exists in the CRM).
func (s *Store) DeleteCRMUser(ctx context.Context, tenant, provider, id string) error {
	_, err := s.db.Collection(CRMUsers).DeleteOne(ctx, bson.D{{Key: "_id", Value: CRMUserKey(tenant, provider, id)}})
	if err != nil {
		return fmt.Errorf("delete crm user %s/%s/%s: %w", tenant, provider, id, err)
	}
	return nil
}

// WriteCRMUsers applies a diff: InsertMany for new users, replacements for changed ones and
// deletions for vanished ones (see write and BulkWrites for how FerretDB gets them in few scans). Replays are
// harmless.
func (s *Store) WriteCRMUsers(ctx context.Context, tenant, provider string, d domain.CRMUsersDiff) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	inserts := make([]keyed, 0, len(d.Inserts))
	for _, u := range d.Inserts {
		doc := toCRMDoc(tenant, provider, u, now)
		inserts = append(inserts, keyed{doc.Key, doc})
	}
	replaces := make([]keyed, 0, len(d.Updates))
	for _, u := range d.Updates {
		doc := toCRMDoc(tenant, provider, u, now)
		replaces = append(replaces, keyed{doc.Key, doc})
	}
	deletes := make([]string, 0, len(d.Deletes))
	for _, id := range d.Deletes {
		deletes = append(deletes, CRMUserKey(tenant, provider, id))
	}
	if err := s.write(ctx, s.db.Collection(CRMUsers), inserts, replaces, deletes); err != nil {
		return fmt.Errorf("write crm users %s/%s: %w", tenant, provider, err)
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
