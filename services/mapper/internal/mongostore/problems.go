package mongostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

type problemDoc struct {
	Key            string    `bson:"_id"`
	Tenant         string    `bson:"tenant"`
	Provider       string    `bson:"provider"`
	Code           string    `bson:"code"`
	PlatformUserID string    `bson:"platform_user_id,omitempty"`
	CRMUserID      string    `bson:"crm_user_id,omitempty"`
	Email          string    `bson:"email,omitempty"`
	Message        string    `bson:"message"`
	Fix            string    `bson:"fix"`
	Conflict       bool      `bson:"conflict"`
	Since          time.Time `bson:"since"`
}

// problemKey identifies a problem by what it is about, so the same problem found again keeps its
// document (and its "since" time).
func problemKey(tenant string, p mapping.Problem) string {
	h := sha256.Sum256([]byte(p.Code + "\x00" + p.PlatformUserID + "\x00" + p.CRMUserID + "\x00" + mapping.NormalizeEmail(p.Email)))
	return tenant + "/" + p.Provider + "/" + hex.EncodeToString(h[:12])
}

func (d problemDoc) problem() domain.Problem {
	return domain.Problem{Problem: mapping.Problem{Code: d.Code, Provider: d.Provider, PlatformUserID: d.PlatformUserID,
		CRMUserID: d.CRMUserID, Email: d.Email, Message: d.Message, Fix: d.Fix}, Since: d.Since.UTC()}
}

// Problems returns the stored problems of a tenant's provider.
func (s *Store) Problems(ctx context.Context, tenant, provider string) ([]domain.Problem, error) {
	cur, err := s.db.Collection(Problems).Find(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}})
	if err != nil {
		return nil, fmt.Errorf("list problems %s/%s: %w", tenant, provider, err)
	}
	var docs []problemDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list problems %s/%s: %w", tenant, provider, err)
	}
	out := make([]domain.Problem, len(docs))
	for i, d := range docs {
		out[i] = d.problem()
	}
	return out, nil
}

// ReplaceProblems makes the stored problems of a tenant's provider equal to problems, writing only
// the difference. keep selects stored problems that are not the caller's to replace (e.g. a CRM
// API error while replacing the rules' problems); nil replaces all.
func (s *Store) ReplaceProblems(ctx context.Context, tenant, provider string, problems []mapping.Problem, keep func(domain.Problem) bool) error {
	stored, err := s.Problems(ctx, tenant, provider)
	if err != nil {
		return err
	}
	return s.diffProblems(ctx, tenant, provider, stored, problems, keep)
}

// ReplaceUserProblems replaces the stored problems about the given users (one event's
// neighbourhood) with problems.
func (s *Store) ReplaceUserProblems(ctx context.Context, tenant, provider string, platformUserIDs, crmUserIDs, emails []string, problems []mapping.Problem) error {
	var stored []domain.Problem
	seen := map[string]bool{}
	find := func(field, v string) error {
		if v == "" {
			return nil
		}
		cur, err := s.db.Collection(Problems).Find(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}, {Key: field, Value: v}})
		if err != nil {
			return fmt.Errorf("find problems %s/%s: %w", tenant, provider, err)
		}
		var docs []problemDoc
		if err := cur.All(ctx, &docs); err != nil {
			return fmt.Errorf("find problems %s/%s: %w", tenant, provider, err)
		}
		for _, d := range docs {
			if !seen[d.Key] && d.Code != domain.CodeCRMAPIError {
				seen[d.Key] = true
				stored = append(stored, d.problem())
			}
		}
		return nil
	}
	for _, id := range platformUserIDs {
		if err := find("platform_user_id", id); err != nil {
			return err
		}
	}
	for _, id := range crmUserIDs {
		if err := find("crm_user_id", id); err != nil {
			return err
		}
	}
	for _, e := range emails {
		if err := find("email", e); err != nil {
			return err
		}
	}
	return s.diffProblems(ctx, tenant, provider, stored, problems, nil)
}

func (s *Store) diffProblems(ctx context.Context, tenant, provider string, stored []domain.Problem, problems []mapping.Problem, keep func(domain.Problem) bool) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	want := make(map[string]mapping.Problem, len(problems))
	for _, p := range problems {
		p.Provider = provider
		want[problemKey(tenant, p)] = p
	}
	have := make(map[string]domain.Problem, len(stored))
	var deletes []string
	for _, p := range stored {
		k := problemKey(tenant, p.Problem)
		have[k] = p
		if _, ok := want[k]; !ok && (keep == nil || !keep(p)) {
			deletes = append(deletes, k)
		}
	}
	var inserts, replaces []keyed
	for k, p := range want {
		old, ok := have[k]
		if ok && old.Problem == p {
			continue
		}
		since := now
		if ok {
			since = old.Since
		}
		d := problemDoc{Key: k, Tenant: tenant, Provider: provider, Code: p.Code, PlatformUserID: p.PlatformUserID,
			CRMUserID: p.CRMUserID, Email: p.Email, Message: p.Message, Fix: p.Fix, Conflict: p.Conflict(), Since: since}
		if ok {
			replaces = append(replaces, keyed{k, d})
		} else {
			inserts = append(inserts, keyed{k, d})
		}
	}
	if err := s.write(ctx, s.db.Collection(Problems), inserts, replaces, deletes); err != nil {
		return fmt.Errorf("write problems %s/%s: %w", tenant, provider, err)
	}
	return nil
}

// SetCRMError records (err non-empty) or clears (empty) the CRM API error of a tenant's provider.
func (s *Store) SetCRMError(ctx context.Context, tenant, provider, message, fix string) error {
	p := mapping.Problem{Code: domain.CodeCRMAPIError, Provider: provider}
	k := problemKey(tenant, p)
	coll := s.db.Collection(Problems)
	if message == "" {
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: k}}); err != nil {
			return fmt.Errorf("clear crm error %s/%s: %w", tenant, provider, err)
		}
		return nil
	}
	d := problemDoc{Key: k, Tenant: tenant, Provider: provider, Code: domain.CodeCRMAPIError, Message: message, Fix: fix,
		Since: s.now().UTC().Truncate(time.Millisecond)}
	if err := bulkWrite(ctx, coll, []mongo.WriteModel{mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: k}}).SetReplacement(d).SetUpsert(true)}); err != nil {
		return fmt.Errorf("record crm error %s/%s: %w", tenant, provider, err)
	}
	return nil
}
