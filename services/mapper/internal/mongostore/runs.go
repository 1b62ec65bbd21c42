package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Run states.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	// RunPartial: at least one provider failed (its mappings were left untouched), others succeeded.
	RunPartial = "partial"
	RunFailed  = "failed"
)

// SyncRun is one Sync Users run as recorded in sync_runs, readable while it runs.
type SyncRun struct {
	ID         string    `bson:"_id" json:"id"`
	Tenant     string    `bson:"tenant" json:"tenant"`
	Trigger    string    `bson:"trigger" json:"trigger"`
	DryRun     bool      `bson:"dry_run" json:"dry_run"`
	Status     string    `bson:"status" json:"status"`
	Phase      string    `bson:"phase" json:"phase"`
	StartedAt  time.Time `bson:"started_at" json:"started_at"`
	FinishedAt time.Time `bson:"finished_at,omitempty" json:"finished_at,omitzero"`
	// Providers holds each provider's progress and outcome, in mapping.Providers order.
	Providers []RunProvider `bson:"providers" json:"providers"`
	Error     string        `bson:"error,omitempty" json:"error,omitempty"`
	// ReportID is the event id of the SyncReport published for the run.
	ReportID string `bson:"report_id,omitempty" json:"report_id,omitempty"`
}

// RunProvider is one provider's part of a run.
type RunProvider struct {
	Provider  string `bson:"provider" json:"provider"`
	Phase     string `bson:"phase" json:"phase"`
	Pulled    int    `bson:"pulled" json:"pulled"`
	Processed int    `bson:"processed" json:"processed"`
	Failure   string `bson:"failure,omitempty" json:"failure,omitempty"`
	// PullMS, RulesMS and WriteMS are how long the pull, the rules and the writes took.
	PullMS  int64      `bson:"pull_ms" json:"pull_ms"`
	RulesMS int64      `bson:"rules_ms" json:"rules_ms"`
	WriteMS int64      `bson:"write_ms" json:"write_ms"`
	Counts  *RunCounts `bson:"counts,omitempty" json:"counts,omitempty"`
	// Changes and Errors are capped lists; the totals are in Counts.
	Changes []RunChange  `bson:"changes,omitempty" json:"changes,omitempty"`
	Errors  []RunProblem `bson:"errors,omitempty" json:"errors,omitempty"`
}

// RunCounts are a provider's totals in a run (mapping.Counts plus pulled and list totals).
type RunCounts struct {
	Mapped           int `bson:"mapped" json:"mapped"`
	Created          int `bson:"created" json:"created"`
	Remapped         int `bson:"remapped" json:"remapped"`
	Removed          int `bson:"removed" json:"removed"`
	Conflicts        int `bson:"conflicts" json:"conflicts"`
	Errors           int `bson:"errors" json:"errors"`
	UnmappedPlatform int `bson:"unmapped_platform" json:"unmapped_platform"`
	UnmappedCRM      int `bson:"unmapped_crm" json:"unmapped_crm"`
	Pulled           int `bson:"pulled" json:"pulled"`
	ChangesTotal     int `bson:"changes_total" json:"changes_total"`
	ErrorsTotal      int `bson:"errors_total" json:"errors_total"`
}

// RunChange is one mapping change of a run.
type RunChange struct {
	Change            string `bson:"change" json:"change"`
	PlatformUserID    string `bson:"platform_user_id" json:"platform_user_id"`
	CRMUserID         string `bson:"crm_user_id" json:"crm_user_id"`
	PreviousCRMUserID string `bson:"previous_crm_user_id,omitempty" json:"previous_crm_user_id,omitempty"`
	Email             string `bson:"email,omitempty" json:"email,omitempty"`
	Name              string `bson:"name,omitempty" json:"name,omitempty"`
	Reason            string `bson:"reason,omitempty" json:"reason,omitempty"`
}

// RunProblem is one problem of a run.
type RunProblem struct {
	Code           string `bson:"code" json:"code"`
	PlatformUserID string `bson:"platform_user_id,omitempty" json:"platform_user_id,omitempty"`
	CRMUserID      string `bson:"crm_user_id,omitempty" json:"crm_user_id,omitempty"`
	Email          string `bson:"email,omitempty" json:"email,omitempty"`
	Message        string `bson:"message" json:"message"`
	Fix            string `bson:"fix,omitempty" json:"fix,omitempty"`
}

// ErrRunning is returned by LockRun when another run of the tenant holds the lock.
var ErrRunning = errors.New("a sync run is already running for the tenant")

type lockDoc struct {
	Tenant  string    `bson:"_id"`
	RunID   string    `bson:"run_id"`
	Expires time.Time `bson:"expires"`
}

// LockRun takes the tenant's run lock for runID until ttl passes (extend it with RefreshLock).
// When a live run holds it, it returns that run's id and ErrRunning. A lock whose holder stopped
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
		return cur.RunID, ErrRunning
	}
	res, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: tenant}, {Key: "run_id", Value: cur.RunID}}, lockDoc{Tenant: tenant, RunID: runID, Expires: now.Add(ttl)})
	if err != nil {
		return "", fmt.Errorf("take over sync lock %s: %w", tenant, err)
	}
	if res.ModifiedCount == 0 {
		return "", fmt.Errorf("lock sync run %s: %w", tenant, ErrRunning)
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
func (s *Store) PutRun(ctx context.Context, r *SyncRun) error {
	r.StartedAt = r.StartedAt.UTC().Truncate(time.Millisecond)
	r.FinishedAt = r.FinishedAt.UTC().Truncate(time.Millisecond)
	_, err := s.db.Collection(SyncRuns).ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.ID}}, r, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("put sync run %s: %w", r.ID, err)
	}
	return nil
}

// Run returns one run of a tenant.
func (s *Store) Run(ctx context.Context, tenant, id string) (*SyncRun, error) {
	var r SyncRun
	err := s.db.Collection(SyncRuns).FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("sync run %s/%s: %w", tenant, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get sync run %s/%s: %w", tenant, id, err)
	}
	return &r, nil
}

// Runs returns a tenant's latest runs, newest first (at most limit; 0 means 50). The capped change
// and error lists are left out.
func (s *Store) Runs(ctx context.Context, tenant string, limit int) ([]SyncRun, error) {
	if limit <= 0 {
		limit = 50
	}
	opts := options.Find().SetSort(bson.D{{Key: "started_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)).
		SetProjection(bson.D{{Key: "providers.changes", Value: 0}, {Key: "providers.errors", Value: 0}})
	cur, err := s.db.Collection(SyncRuns).Find(ctx, bson.D{{Key: "tenant", Value: tenant}}, opts)
	if err != nil {
		return nil, fmt.Errorf("list sync runs %s: %w", tenant, err)
	}
	var out []SyncRun
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list sync runs %s: %w", tenant, err)
	}
	return out, nil
}

// Failure is a dead-lettered message or another failure the admin sees.
type Failure struct {
	ID      string    `bson:"_id" json:"id"`
	Tenant  string    `bson:"tenant" json:"tenant"`
	Service string    `bson:"service" json:"service"`
	Subject string    `bson:"subject" json:"subject"`
	MsgID   string    `bson:"msg_id,omitempty" json:"msg_id,omitempty"`
	Error   string    `bson:"error" json:"error"`
	Time    time.Time `bson:"time" json:"time"`
}

// PutFailure records a failure (idempotent by id).
func (s *Store) PutFailure(ctx context.Context, f Failure) error {
	f.Time = f.Time.UTC().Truncate(time.Millisecond)
	_, err := s.db.Collection(Failures).ReplaceOne(ctx, bson.D{{Key: "_id", Value: f.ID}}, f, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("put failure %s: %w", f.ID, err)
	}
	return nil
}

// Failures returns a tenant's latest failures, newest first.
func (s *Store) Failures(ctx context.Context, tenant string, limit int) ([]Failure, error) {
	if limit <= 0 {
		limit = 100
	}
	cur, err := s.db.Collection(Failures).Find(ctx, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{{Key: "time", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("list failures %s: %w", tenant, err)
	}
	var out []Failure
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list failures %s: %w", tenant, err)
	}
	return out, nil
}
