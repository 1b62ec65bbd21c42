package mongostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

type problemDoc struct {
	Key            string            `bson:"_id"`
	Tenant         string            `bson:"tenant"`
	Provider       provider.Provider `bson:"provider"`
	Code           string            `bson:"code"`
	PlatformUserID string            `bson:"platform_user_id,omitempty"`
	CRMUserID      string            `bson:"crm_user_id,omitempty"`
	Email          string            `bson:"email,omitempty"`
	Name           string            `bson:"name,omitempty"`
	Message        string            `bson:"message"`
	Fix            string            `bson:"fix"`
	Conflict       bool              `bson:"conflict"`
	Since          time.Time         `bson:"since"`
}

// problemKey identifies a problem by what it is about, so the same problem found again keeps its
// document (and its "since" time).
func problemKey(tenant string, p mapping.Problem) string {
	h := sha256.Sum256([]byte(p.Code + "\x00" + p.PlatformUserID + "\x00" + p.CRMUserID + "\x00" + mapping.NormalizeEmail(p.Email)))
	return tenant + "/" + string(p.Provider) + "/" + hex.EncodeToString(h[:12])
}

func (d problemDoc) problem() domain.Problem {
	return domain.Problem{Problem: mapping.Problem{Code: d.Code, Provider: d.Provider, PlatformUserID: d.PlatformUserID,
		CRMUserID: d.CRMUserID, Email: d.Email, Name: d.Name, Message: d.Message, Fix: d.Fix}, Since: d.Since.UTC()}
}

// problemSets keeps the problems of each tenant and provider as a chunked set (chunks.go) in
// ProblemSets. The collection Problems holds the one-document-per-problem layout of earlier
// versions: a set with no head is read from there, and its first write moves it (legacyProblems).
func (s *Store) problemSets() chunkSet[domain.Problem] {
	return chunkSet[domain.Problem]{coll: func() *mongo.Collection { return s.db.Collection(ProblemSets) }, now: s.now,
		key: func(p domain.Problem) string { return problemKey("", p.Problem) }}
}

// storedProblems reads the problems of a tenant's provider with the head they were read under
// (nil: none yet, read from the earlier layout).
func (s *Store) storedProblems(ctx context.Context, tenant string, provider provider.Provider) ([]domain.Problem, *setHead, error) {
	set, err := s.problemSets().load(ctx, tenant, provider)
	if err != nil {
		return nil, nil, fmt.Errorf("list problems %s/%s: %w", tenant, provider, err)
	}
	if set.head != nil && set.head.Gen != "" {
		return set.items, set.head, nil
	}
	legacy, err := s.legacyProblems(ctx, tenant, provider)
	return legacy, set.head, err
}

// legacyProblems reads the problems stored one per document (before issue 18).
func (s *Store) legacyProblems(ctx context.Context, tenant string, provider provider.Provider) ([]domain.Problem, error) {
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

// Problems returns the stored problems of a tenant's provider.
func (s *Store) Problems(ctx context.Context, tenant string, provider provider.Provider) ([]domain.Problem, error) {
	ps, _, err := s.storedProblems(ctx, tenant, provider)
	return ps, err
}

// ReplaceProblems makes the stored problems of a tenant's provider equal to problems, writing only
// the buckets that hold a difference. keep selects stored problems that are not the caller's to
// replace (e.g. a CRM API error while replacing the rules' problems); nil replaces all.
func (s *Store) ReplaceProblems(ctx context.Context, tenant string, provider provider.Provider, problems []mapping.Problem, keep func(domain.Problem) bool) error {
	stored, head, err := s.storedProblems(ctx, tenant, provider)
	if err != nil {
		return err
	}
	return s.diffProblems(ctx, tenant, provider, head, stored, stored, problems, keep)
}

// ReplaceUserProblems replaces the stored problems about the given users (one event's
// neighbourhood) with problems.
func (s *Store) ReplaceUserProblems(ctx context.Context, tenant string, provider provider.Provider, platformUserIDs, crmUserIDs, emails []string, problems []mapping.Problem) error {
	all, head, err := s.storedProblems(ctx, tenant, provider)
	if err != nil {
		return err
	}
	about := func(ids []string) map[string]bool {
		m := make(map[string]bool, len(ids))
		for _, id := range ids {
			if id != "" {
				m[id] = true
			}
		}
		return m
	}
	pids, cids, es := about(platformUserIDs), about(crmUserIDs), about(emails)
	var stored []domain.Problem
	for _, p := range all {
		if p.Code != domain.CodeCRMAPIError && (pids[p.PlatformUserID] || cids[p.CRMUserID] || es[p.Email]) {
			stored = append(stored, p)
		}
	}
	return s.diffProblems(ctx, tenant, provider, head, all, stored, problems, nil)
}

// diffProblems replaces the problems stored (a part of all) with problems, keeping the since
// time of a problem found again, and writes the set when anything changed (or it still is in
// the earlier layout).
func (s *Store) diffProblems(ctx context.Context, tenant string, provider provider.Provider, head *setHead, all, stored []domain.Problem, problems []mapping.Problem, keep func(domain.Problem) bool) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	want := make(map[string]mapping.Problem, len(problems))
	for _, p := range problems {
		p.Provider = provider
		want[problemKey("", p)] = p
	}
	have := make(map[string]domain.Problem, len(stored))
	var changed []string
	drop := map[string]bool{}
	for _, p := range stored {
		k := problemKey("", p.Problem)
		have[k] = p
		if _, ok := want[k]; !ok && (keep == nil || !keep(p)) {
			changed = append(changed, k)
			drop[k] = true
		}
	}
	upsert := map[string]domain.Problem{}
	for k, p := range want {
		old, ok := have[k]
		if ok && old.Problem == p {
			continue
		}
		since := now
		if ok {
			since = old.Since
		}
		upsert[k] = domain.Problem{Problem: p, Since: since}
		changed = append(changed, k)
	}
	legacy := head == nil || head.Gen == ""
	if len(changed) == 0 && !legacy {
		return nil
	}
	next := make([]domain.Problem, 0, len(all)+len(upsert))
	for _, p := range all {
		k := problemKey("", p.Problem)
		if _, ok := upsert[k]; ok || drop[k] {
			continue
		}
		p.Provider = provider
		next = append(next, p)
	}
	for _, p := range upsert {
		next = append(next, p)
	}
	if _, err := s.problemSets().save(ctx, tenant, provider, head, next, saveOptions{changed: changed}); err != nil {
		return fmt.Errorf("write problems %s/%s: %w", tenant, provider, err)
	}
	if legacy {
		// Moved: the earlier layout's documents of this tenant and provider go.
		if _, err := s.db.Collection(Problems).DeleteMany(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}}); err != nil {
			return fmt.Errorf("remove moved problems %s/%s: %w", tenant, provider, err)
		}
	}
	return nil
}

// SetCRMError records (err non-empty) or clears (empty) the CRM API error of a tenant's provider.
func (s *Store) SetCRMError(ctx context.Context, tenant string, provider provider.Provider, message, fix string) error {
	all, head, err := s.storedProblems(ctx, tenant, provider)
	if err != nil {
		return err
	}
	isCRM := func(p domain.Problem) bool { return p.Code == domain.CodeCRMAPIError }
	var stored []domain.Problem
	for _, p := range all {
		if isCRM(p) {
			stored = append(stored, p)
		}
	}
	var want []mapping.Problem
	if message != "" {
		want = append(want, mapping.Problem{Code: domain.CodeCRMAPIError, Provider: provider, Message: message, Fix: fix})
	}
	if err := s.diffProblems(ctx, tenant, provider, head, all, stored, want, nil); err != nil {
		return fmt.Errorf("record crm error %s/%s: %w", tenant, provider, err)
	}
	return nil
}
