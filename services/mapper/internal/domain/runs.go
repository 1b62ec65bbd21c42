package domain

import (
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// Run states.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	// RunPartial: at least one provider failed (its mappings were left untouched), others succeeded.
	RunPartial = "partial"
	RunFailed  = "failed"
)

// Triggers of a run.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
)

// Phases of a run and of a provider's part.
const (
	PhaseStarting = "starting"
	PhaseLoad     = "load_platform_users"
	PhaseWaiting  = "waiting"
	PhasePull     = "pull"
	PhaseMatch    = "match"
	PhaseWrite    = "write"
	PhaseReport   = "report"
	PhaseDone     = "done"
	PhaseFailed   = "failed"
)

// SyncRequest asks for a Sync Users run.
type SyncRequest struct {
	Tenant  string
	Trigger string // api (admin API), manual (console), schedule; empty means api
	DryRun  bool
	// EmailReport asks for a dry run's report to be emailed to the report recipients (a dry
	// run's report is otherwise only recorded; other runs are always emailed when reports are on).
	EmailReport bool
	Actor       string // the principal that asked
}

// SyncRun is one Sync Users run, readable while it runs.
type SyncRun struct {
	ID      string
	Tenant  string
	Trigger string
	DryRun  bool
	// EmailReport: a dry run whose report is emailed (SyncRequest.EmailReport).
	EmailReport bool
	Status      string
	Phase       string
	StartedAt   time.Time
	FinishedAt  time.Time
	// Providers holds each provider's progress and outcome, in mapping.Providers order.
	Providers []RunProvider
	Error     string
	// ReportID is the event id of the report published for the run.
	ReportID string
}

// RunProvider is one provider's part of a run.
type RunProvider struct {
	Provider  provider.Provider
	Phase     string
	Pulled    int
	Processed int
	// PullMS, RulesMS and WriteMS are how long the pull, the rules and the writes took.
	PullMS  int64
	RulesMS int64
	WriteMS int64
	// Outcome is the provider's report once its part ended: the counts, the capped lists and
	// their totals, or the failure of its pull. Nil until then.
	Outcome *report.Provider
}

// Failure is why the provider's part failed, "" when it did not (or has not ended).
func (p *RunProvider) Failure() string {
	if p.Outcome == nil {
		return ""
	}
	return p.Outcome.Failure
}

// Succeeded reports whether the provider's part ended without failing.
func (p *RunProvider) Succeeded() bool { return p.Outcome != nil && p.Outcome.Failure == "" }

// SyncedAt is when the run last pulled provider successfully (nil for a running or dry run, or a
// provider that failed).
func (r *SyncRun) SyncedAt(provider provider.Provider) *time.Time {
	if r.Status == RunRunning || r.DryRun {
		return nil
	}
	for i := range r.Providers {
		if p := &r.Providers[i]; p.Provider == provider && p.Succeeded() {
			at := r.FinishedAt
			return &at
		}
	}
	return nil
}

// The admin's view of a run, shared by the admin API and the console (each converts to its own
// shape with these).

// State is the run's state as the admin sees it: running, succeeded or failed (a partial run is
// failed; its providers say which).
func (r *SyncRun) State() string {
	if r.Status == RunPartial {
		return RunFailed
	}
	return r.Status
}

// ErrorText is the run's error as the admin sees it ("a provider failed; see providers" for a
// partial run without one).
func (r *SyncRun) ErrorText() string {
	if r.Status == RunPartial && r.Error == "" {
		return "a provider failed; see providers"
	}
	return r.Error
}

// LivePhase is the run's phase; while it runs, "<provider>:<phase>" of the provider being worked
// on.
func (r *SyncRun) LivePhase() string {
	phase := r.Phase
	if r.Status == RunRunning {
		for _, p := range r.Providers {
			if p.Phase != PhaseWaiting && p.Phase != PhaseDone && p.Phase != PhaseFailed {
				phase = string(p.Provider) + ":" + p.Phase
			}
		}
	}
	return phase
}

// Finished is when the run ended (UTC), nil while it runs.
func (r *SyncRun) Finished() *time.Time {
	if r.FinishedAt.IsZero() || r.Status == RunRunning {
		return nil
	}
	f := r.FinishedAt.UTC()
	return &f
}

// Progress is the number of CRM users pulled and platform users processed so far, over every
// provider.
func (r *SyncRun) Progress() (pulled, processed int) {
	for _, p := range r.Providers {
		pulled += p.Pulled
		processed += p.Processed
	}
	return pulled, processed
}
