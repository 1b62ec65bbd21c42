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
	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// runDoc is one Sync Users run as stored in sync_runs.
type runDoc struct {
	ID          string           `bson:"_id"`
	Tenant      string           `bson:"tenant"`
	Trigger     string           `bson:"trigger"`
	DryRun      bool             `bson:"dry_run"`
	EmailReport bool             `bson:"email_report,omitempty"`
	Status      string           `bson:"status"`
	Phase       string           `bson:"phase"`
	StartedAt   time.Time        `bson:"started_at"`
	FinishedAt  time.Time        `bson:"finished_at,omitempty"`
	Providers   []runProviderDoc `bson:"providers"`
	Error       string           `bson:"error,omitempty"`
	ReportID    string           `bson:"report_id,omitempty"`
}

type runProviderDoc struct {
	Provider  provider.Provider `bson:"provider"`
	Phase     string            `bson:"phase"`
	Pulled    int               `bson:"pulled"`
	Processed int               `bson:"processed"`
	Failure   string            `bson:"failure,omitempty"`
	PullMS    int64             `bson:"pull_ms"`
	RulesMS   int64             `bson:"rules_ms"`
	WriteMS   int64             `bson:"write_ms"`
	Counts    *runCountsDoc     `bson:"counts,omitempty"`
	Changes   []runChangeDoc    `bson:"changes,omitempty"`
	Errors    []runProblemDoc   `bson:"errors,omitempty"`
	// NotMappable are the CRM users who are not people (report.Provider.NotMappable).
	NotMappable []runNotMappableDoc `bson:"not_mappable,omitempty"`
}

type runNotMappableDoc struct {
	CRMUserID string `bson:"crm_user_id"`
	Name      string `bson:"name,omitempty"`
	Email     string `bson:"email,omitempty"`
	UserType  string `bson:"user_type,omitempty"`
	License   string `bson:"license,omitempty"`
	Reason    string `bson:"reason"`
}

type runCountsDoc struct {
	Mapped           int `bson:"mapped"`
	Created          int `bson:"created"`
	Remapped         int `bson:"remapped"`
	Removed          int `bson:"removed"`
	Conflicts        int `bson:"conflicts"`
	Errors           int `bson:"errors"`
	UnmappedPlatform int `bson:"unmapped_platform"`
	UnmappedCRM      int `bson:"unmapped_crm"`
	Pulled           int `bson:"pulled"`
	ChangesTotal     int `bson:"changes_total"`
	ErrorsTotal      int `bson:"errors_total"`
	NotMappable      int `bson:"not_mappable,omitempty"`
	NotMappableTotal int `bson:"not_mappable_total,omitempty"`
}

type runChangeDoc struct {
	Change            string `bson:"change"`
	PlatformUserID    string `bson:"platform_user_id"`
	CRMUserID         string `bson:"crm_user_id"`
	PreviousCRMUserID string `bson:"previous_crm_user_id,omitempty"`
	Email             string `bson:"email,omitempty"`
	Name              string `bson:"name,omitempty"`
	Reason            string `bson:"reason,omitempty"`
}

type runProblemDoc struct {
	Code           string `bson:"code"`
	PlatformUserID string `bson:"platform_user_id,omitempty"`
	CRMUserID      string `bson:"crm_user_id,omitempty"`
	Email          string `bson:"email,omitempty"`
	Name           string `bson:"name,omitempty"`
	Message        string `bson:"message"`
	Fix            string `bson:"fix,omitempty"`
}

func toRunDoc(r *domain.SyncRun) runDoc {
	d := runDoc{ID: r.ID, Tenant: r.Tenant, Trigger: r.Trigger, DryRun: r.DryRun, EmailReport: r.EmailReport, Status: r.Status, Phase: r.Phase,
		StartedAt: r.StartedAt.UTC().Truncate(time.Millisecond), FinishedAt: r.FinishedAt.UTC().Truncate(time.Millisecond),
		Error: r.Error, ReportID: r.ReportID, Providers: make([]runProviderDoc, len(r.Providers))}
	for i, p := range r.Providers {
		pd := runProviderDoc{Provider: p.Provider, Phase: p.Phase, Pulled: p.Pulled, Processed: p.Processed,
			PullMS: p.PullMS, RulesMS: p.RulesMS, WriteMS: p.WriteMS}
		if o := p.Outcome; o != nil && o.Failure != "" {
			pd.Failure = o.Failure
		} else if o != nil {
			c := o.Counts
			pd.Counts = &runCountsDoc{Mapped: c.Mapped, Created: c.Created, Remapped: c.Remapped, Removed: c.Removed,
				Conflicts: c.Conflicts, Errors: c.Errors, UnmappedPlatform: c.UnmappedPlatform, UnmappedCRM: c.UnmappedCRM,
				Pulled: c.Pulled, ChangesTotal: o.ChangesTotal, ErrorsTotal: o.ErrorsTotal,
				NotMappable: c.NotMappable, NotMappableTotal: o.NotMappableTotal}
			for _, ch := range o.Changes {
				pd.Changes = append(pd.Changes, runChangeDoc{Change: string(ch.Kind), PlatformUserID: ch.PlatformUserID, CRMUserID: ch.CRMUserID,
					PreviousCRMUserID: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
			}
			for _, e := range o.Errors {
				pd.Errors = append(pd.Errors, runProblemDoc{Code: e.Code, PlatformUserID: e.PlatformUserID, CRMUserID: e.CRMUserID,
					Email: e.Email, Name: e.Name, Message: e.Message, Fix: e.Fix})
			}
			for _, n := range o.NotMappable {
				pd.NotMappable = append(pd.NotMappable, runNotMappableDoc{CRMUserID: n.CRMUserID, Name: n.Name, Email: n.Email,
					UserType: n.UserType, License: n.License, Reason: n.Reason})
			}
		}
		d.Providers[i] = pd
	}
	return d
}

func (d *runDoc) run() *domain.SyncRun {
	r := &domain.SyncRun{ID: d.ID, Tenant: d.Tenant, Trigger: d.Trigger, DryRun: d.DryRun, EmailReport: d.EmailReport, Status: d.Status, Phase: d.Phase,
		StartedAt: d.StartedAt, FinishedAt: d.FinishedAt, Error: d.Error, ReportID: d.ReportID}
	for _, pd := range d.Providers {
		p := domain.RunProvider{Provider: pd.Provider, Phase: pd.Phase, Pulled: pd.Pulled, Processed: pd.Processed,
			PullMS: pd.PullMS, RulesMS: pd.RulesMS, WriteMS: pd.WriteMS}
		switch {
		case pd.Failure != "":
			p.Outcome = &report.Provider{Provider: pd.Provider, Failure: pd.Failure}
		case pd.Counts != nil:
			c := pd.Counts
			o := &report.Provider{Provider: pd.Provider, ChangesTotal: c.ChangesTotal, ErrorsTotal: c.ErrorsTotal, NotMappableTotal: c.NotMappableTotal,
				Counts: report.Counts{Pulled: c.Pulled, Counts: mapping.Counts{Mapped: c.Mapped, Created: c.Created, Remapped: c.Remapped,
					Removed: c.Removed, Conflicts: c.Conflicts, Errors: c.Errors, UnmappedPlatform: c.UnmappedPlatform, UnmappedCRM: c.UnmappedCRM,
					NotMappable: c.NotMappable}}}
			for _, ch := range pd.Changes {
				o.Changes = append(o.Changes, mapping.Change{Kind: mapping.ChangeKind(ch.Change), Provider: pd.Provider, PlatformUserID: ch.PlatformUserID,
					CRMUserID: ch.CRMUserID, PreviousCRMUserID: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
			}
			for _, e := range pd.Errors {
				o.Errors = append(o.Errors, mapping.Problem{Code: e.Code, Provider: pd.Provider, PlatformUserID: e.PlatformUserID,
					CRMUserID: e.CRMUserID, Email: e.Email, Name: e.Name, Message: e.Message, Fix: e.Fix})
			}
			for _, n := range pd.NotMappable {
				o.NotMappable = append(o.NotMappable, mapping.NotMappable{Provider: pd.Provider, CRMUserID: n.CRMUserID, Name: n.Name,
					Email: n.Email, UserType: n.UserType, License: n.License, Reason: n.Reason})
			}
			p.Outcome = o
		}
		r.Providers = append(r.Providers, p)
	}
	return r
}

type lockDoc struct {
	Tenant  string    `bson:"_id"`
	RunID   string    `bson:"run_id"`
	Expires time.Time `bson:"expires"`
}

// LockRun takes the tenant's run lock for runID until ttl passes (extend it with RefreshLock).
// When a live run holds it, it returns that run's id and domain.ErrRunning. A lock whose holder stopped
// refreshing it (a crashed process) is taken over after it expires.
func (s *Store) LockRun(ctx context.Context, tenant, runID string, ttl time.Duration) (holder string, err error) {
	coll := s.db.Collection(SyncLocks)
	now := s.now().UTC().Truncate(time.Millisecond)
	_, err = coll.InsertOne(ctx, lockDoc{Tenant: tenant, RunID: runID, Expires: now.Add(ttl)})
	if err == nil {
		return runID, nil
	}
	if !isDuplicateKey(err) {
		return "", fmt.Errorf("lock sync run %s: %w", tenant, err)
	}
	var cur lockDoc
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: tenant}}).Decode(&cur); err != nil {
		return "", fmt.Errorf("read sync lock %s: %w", tenant, err)
	}
	if cur.Expires.After(now) {
		return cur.RunID, domain.ErrRunning
	}
	res, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: tenant}, {Key: "run_id", Value: cur.RunID}}, lockDoc{Tenant: tenant, RunID: runID, Expires: now.Add(ttl)})
	if err != nil {
		return "", fmt.Errorf("take over sync lock %s: %w", tenant, err)
	}
	if res.ModifiedCount == 0 {
		return "", fmt.Errorf("lock sync run %s: %w", tenant, domain.ErrRunning)
	}
	return runID, nil
}

// RefreshLock extends the tenant's run lock held by runID.
func (s *Store) RefreshLock(ctx context.Context, tenant, runID string, ttl time.Duration) error {
	_, err := s.db.Collection(SyncLocks).UpdateOne(ctx, bson.D{{Key: "_id", Value: tenant}, {Key: "run_id", Value: runID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: s.now().UTC().Add(ttl).Truncate(time.Millisecond)}}}})
	if err != nil {
		return fmt.Errorf("refresh sync lock %s: %w", tenant, err)
	}
	return nil
}

// UnlockRun releases the tenant's run lock held by runID.
func (s *Store) UnlockRun(ctx context.Context, tenant, runID string) error {
	_, err := s.db.Collection(SyncLocks).DeleteOne(ctx, bson.D{{Key: "_id", Value: tenant}, {Key: "run_id", Value: runID}})
	if err != nil {
		return fmt.Errorf("unlock sync run %s: %w", tenant, err)
	}
	return nil
}

// PutRun stores a run record (the whole document: runs are small and written by one process).
func (s *Store) PutRun(ctx context.Context, r *domain.SyncRun) error {
	r.StartedAt = r.StartedAt.UTC().Truncate(time.Millisecond)
	r.FinishedAt = r.FinishedAt.UTC().Truncate(time.Millisecond)
	_, err := s.db.Collection(SyncRuns).ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.ID}}, toRunDoc(r), options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("put sync run %s: %w", r.ID, err)
	}
	return nil
}

// Run returns one run of a tenant.
func (s *Store) Run(ctx context.Context, tenant, id string) (*domain.SyncRun, error) {
	var d runDoc
	err := s.db.Collection(SyncRuns).FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("sync run %s/%s: %w", tenant, id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get sync run %s/%s: %w", tenant, id, err)
	}
	return d.run(), nil
}

// Runs returns a tenant's latest runs, newest first (at most limit; 0 means 50). The capped change
// and error lists are left out.
func (s *Store) Runs(ctx context.Context, tenant string, limit int) ([]domain.SyncRun, error) {
	if limit <= 0 {
		limit = 50
	}
	opts := options.Find().SetSort(bson.D{{Key: "started_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)).
		SetProjection(bson.D{{Key: "providers.changes", Value: 0}, {Key: "providers.errors", Value: 0}, {Key: "providers.not_mappable", Value: 0}})
	cur, err := s.db.Collection(SyncRuns).Find(ctx, bson.D{{Key: "tenant", Value: tenant}}, opts)
	if err != nil {
		return nil, fmt.Errorf("list sync runs %s: %w", tenant, err)
	}
	var docs []runDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list sync runs %s: %w", tenant, err)
	}
	out := make([]domain.SyncRun, len(docs))
	for i := range docs {
		out[i] = *docs[i].run()
	}
	return out, nil
}

// failureDoc is a stored failure.
type failureDoc struct {
	ID      string    `bson:"_id"`
	Tenant  string    `bson:"tenant"`
	Service string    `bson:"service"`
	Subject string    `bson:"subject"`
	MsgID   string    `bson:"msg_id,omitempty"`
	Error   string    `bson:"error"`
	Time    time.Time `bson:"time"`
}

// PutFailure records a failure (idempotent by id).
func (s *Store) PutFailure(ctx context.Context, f domain.Failure) error {
	f.Time = f.Time.UTC().Truncate(time.Millisecond)
	_, err := s.db.Collection(Failures).ReplaceOne(ctx, bson.D{{Key: "_id", Value: f.ID}}, failureDoc(f), options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("put failure %s: %w", f.ID, err)
	}
	return nil
}

// Failures returns a tenant's latest failures, newest first.
func (s *Store) Failures(ctx context.Context, tenant string, limit int) ([]domain.Failure, error) {
	if limit <= 0 {
		limit = 100
	}
	cur, err := s.db.Collection(Failures).Find(ctx, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{{Key: "time", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("list failures %s: %w", tenant, err)
	}
	var docs []failureDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list failures %s: %w", tenant, err)
	}
	out := make([]domain.Failure, len(docs))
	for i, d := range docs {
		out[i] = domain.Failure(d)
	}
	return out, nil
}
