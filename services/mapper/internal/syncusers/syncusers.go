// Package syncusers runs Sync Users (docs/architecture.md#sync-users): for each connected provider
// of a tenant it pulls every CRM user, stores them, runs the full mapping rules, writes what
// changed, updates the KV view, publishes mapping.changed per change and one report.sync per run,
// and records the run with live progress in sync_runs.
//
// One run per tenant at a time: a lock document in MongoDB (refreshed while the run lives, taken
// over when its holder died) makes a second request return the running run. A provider whose CRM
// fails ends its part of the run with the error recorded and reported, and its stored users and
// mappings are left untouched. A dry run computes and reports the plan and writes nothing but the
// run record and the report.
package syncusers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/crm"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

// Triggers.
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

// Tenants finds tenant configurations.
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Directories builds a tenant's CRM user directories (crm.Factory).
type Directories interface {
	Directory(t *tenant.Tenant, provider string) (crm.Directory, error)
}

// Options configure a Runner.
type Options struct {
	Writer      *changes.Writer
	Tenants     Tenants
	Directories Directories
	// Publisher publishes the report (usually the same as the writer's).
	Publisher changes.Publisher
	// AdminURL is the admin API/console base URL put into reports.
	AdminURL string
	Log      *slog.Logger
	Now      func() time.Time
	// ListCap caps the changes and errors listed per provider in a report and a run record
	// (default 100; the totals are always complete).
	ListCap int
	// LockTTL is how long a run's lock lives without a refresh (default 2 min).
	LockTTL time.Duration
	// Meter and Tracer record the runs' metrics and spans (nil: not recorded).
	Meter  metric.MeterProvider
	Tracer trace.TracerProvider
}

// Runner runs Sync Users.
type Runner struct {
	o     Options
	store *mongostore.Store
	// base is the context background runs live in (Start returns before the run ends).
	base context.Context
	wg   sync.WaitGroup
	obs  observer
}

// New returns a runner; background runs started with Start stop when ctx ends.
func New(ctx context.Context, o Options) *Runner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ListCap <= 0 {
		o.ListCap = 100
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o, store: o.Writer.Store(), base: ctx, obs: newObserver(o.Meter, o.Tracer)}
}

// Request asks for a run.
type Request struct {
	Tenant  string
	Trigger string
	DryRun  bool
}

// Wait waits for the background runs to end.
func (r *Runner) Wait() { r.wg.Wait() }

// Start begins a run in the background and returns its record as first stored. When a run of the
// tenant is already going, it returns that run and started=false.
func (r *Runner) Start(ctx context.Context, req Request) (run *mongostore.SyncRun, started bool, err error) {
	t, err := r.o.Tenants.Get(ctx, req.Tenant)
	if err != nil {
		return nil, false, err
	}
	run, started, err = r.begin(ctx, t, req)
	if err != nil || !started {
		return run, started, err
	}
	first := *run
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// The background run keeps the request's span as a link, not its deadline.
		ctx := trace.ContextWithSpanContext(r.base, trace.SpanContextFromContext(ctx))
		if _, err := r.execute(ctx, t, run); err != nil {
			r.o.Log.ErrorContext(ctx, "sync users failed", "tenant", t.ID, "run", run.ID, "err", err)
		}
	}()
	return &first, true, nil
}

// Run does a whole run and returns its final record and the report it published. When a run of
// the tenant is already going, it returns that run and mongostore.ErrRunning.
func (r *Runner) Run(ctx context.Context, req Request) (*mongostore.SyncRun, *ownersyncv1.SyncReport, error) {
	t, err := r.o.Tenants.Get(ctx, req.Tenant)
	if err != nil {
		return nil, nil, err
	}
	run, started, err := r.begin(ctx, t, req)
	if err != nil {
		return nil, nil, err
	}
	if !started {
		return run, nil, mongostore.ErrRunning
	}
	rep, err := r.execute(ctx, t, run)
	return run, rep, err
}

func (r *Runner) begin(ctx context.Context, t *tenant.Tenant, req Request) (*mongostore.SyncRun, bool, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, false, err
	}
	runID := id.String()
	holder, err := r.store.LockRun(ctx, t.ID, runID, r.o.LockTTL)
	if errors.Is(err, mongostore.ErrRunning) {
		cur, gerr := r.store.Run(ctx, t.ID, holder)
		if gerr != nil {
			return nil, false, fmt.Errorf("%w (run %s)", err, holder)
		}
		return cur, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	trigger := req.Trigger
	if trigger == "" {
		trigger = TriggerAPI
	}
	run := &mongostore.SyncRun{ID: runID, Tenant: t.ID, Trigger: trigger, DryRun: req.DryRun, Status: mongostore.RunRunning,
		Phase: PhaseStarting, StartedAt: r.o.Now().UTC()}
	for _, p := range t.Connected() {
		run.Providers = append(run.Providers, mongostore.RunProvider{Provider: p, Phase: PhaseWaiting})
	}
	if err := r.store.PutRun(ctx, run); err != nil {
		_ = r.store.UnlockRun(ctx, t.ID, runID)
		return nil, false, err
	}
	return run, true, nil
}

// progress stores the run at most every 250 ms (and refreshes the lock), so readers see it move.
type progress struct {
	r    *Runner
	run  *mongostore.SyncRun
	last time.Time
}

func (p *progress) save(ctx context.Context, force bool) error {
	now := time.Now()
	if !force && now.Sub(p.last) < 250*time.Millisecond {
		return nil
	}
	p.last = now
	if err := p.r.store.RefreshLock(ctx, p.run.Tenant, p.run.ID, p.r.o.LockTTL); err != nil {
		return err
	}
	return p.r.store.PutRun(ctx, p.run)
}

func (r *Runner) execute(ctx context.Context, t *tenant.Tenant, run *mongostore.SyncRun) (rep *ownersyncv1.SyncReport, err error) {
	// The outcome is decided into final while the record still says running; the lock is freed
	// before the record shows the outcome, so whoever sees a finished run can start the next one.
	final := mongostore.SyncRun{}
	ctx, span := r.obs.startRun(ctx, run)
	defer func() { r.obs.endRun(ctx, span, run, err) }()
	defer func() {
		// The lock must go even when ctx ended.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err != nil {
			final.Status, final.Phase, final.Error = mongostore.RunFailed, PhaseFailed, err.Error()
			final.FinishedAt = r.o.Now().UTC()
		}
		_ = r.store.UnlockRun(uctx, t.ID, run.ID)
		run.Status, run.Phase, run.Error, run.FinishedAt = final.Status, final.Phase, final.Error, final.FinishedAt
		if perr := r.store.PutRun(uctx, run); perr != nil && err == nil {
			err = perr
		}
	}()
	pr := &progress{r: r, run: run}
	run.Phase = PhaseLoad
	if err := pr.save(ctx, true); err != nil {
		return nil, err
	}
	stored, err := r.store.PlatformUsers(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	platform := make([]mapping.PlatformUser, len(stored))
	for i, u := range stored {
		platform[i] = u.Rules()
	}
	stored = nil
	rep = &ownersyncv1.SyncReport{RunId: run.ID, Trigger: trigger(run.Trigger), DryRun: run.DryRun,
		TenantName: t.Name, AdminUrl: r.o.AdminURL, StartedAt: timestamppb.New(run.StartedAt)}
	failed := 0
	for i := range run.Providers {
		rp := &run.Providers[i]
		run.Phase = rp.Provider
		prep, err := r.provider(ctx, t, run, rp, platform, pr)
		if err != nil {
			return nil, err
		}
		if rp.Failure != "" {
			failed++
		}
		rep.Providers = append(rep.Providers, prep)
	}
	run.Phase = PhaseReport
	final.FinishedAt = r.o.Now().UTC()
	final.Phase = PhaseDone
	switch {
	case failed == 0:
		final.Status = mongostore.RunSucceeded
	case failed == len(run.Providers):
		final.Status = mongostore.RunFailed
		final.Error = "every provider failed"
	default:
		final.Status = mongostore.RunPartial
	}
	run.ReportID = "report:" + run.ID
	rep.FinishedAt = timestamppb.New(final.FinishedAt)
	now := timestamppb.New(r.o.Now())
	rep.Meta = &ownersyncv1.EventMeta{EventId: run.ReportID, TenantId: t.ID, OccurredAt: rep.FinishedAt, ReceivedAt: now, Source: "mapper", SourceEventId: run.ID}
	if err := pr.save(ctx, true); err != nil {
		return nil, err
	}
	if _, err := r.o.Publisher.Publish(ctx, streams.ReportSync(t.ID), run.ReportID, rep); err != nil {
		return nil, fmt.Errorf("publish report %s: %w", run.ReportID, err)
	}
	return rep, nil
}

// provider runs one provider's part. A CRM failure is recorded in rp and the report, not returned;
// the returned error is for mapper's own storage failing.
func (r *Runner) provider(ctx context.Context, t *tenant.Tenant, run *mongostore.SyncRun, rp *mongostore.RunProvider, platform []mapping.PlatformUser, pr *progress) (*ownersyncv1.ProviderReport, error) {
	prep := &ownersyncv1.ProviderReport{Provider: changes.Provider(rp.Provider), Counts: &ownersyncv1.SyncCounts{}}
	fail := func(err error) (*ownersyncv1.ProviderReport, error) {
		rp.Phase, rp.Failure = PhaseFailed, err.Error()
		prep.Failure = rp.Failure
		if !run.DryRun {
			if serr := r.store.SetCRMError(ctx, t.ID, rp.Provider, "Sync Users could not read the CRM users: "+rp.Failure,
				fixFor(rp.Provider)); serr != nil {
				return nil, serr
			}
		}
		return prep, pr.save(ctx, true)
	}
	dir, err := r.o.Directories.Directory(t, rp.Provider)
	if err != nil {
		return fail(err)
	}
	rp.Phase = PhasePull
	if err := pr.save(ctx, true); err != nil {
		return nil, err
	}
	start := time.Now()
	var pulled []mongostore.CRMUser
	seen := map[string]bool{}
	// Each CRM page is a client span (salesforce GET, hubspot GET) under the pull span.
	pullCtx, pullSpan := r.obs.startPhase(ctx, rp.Provider, PhasePull)
	err = dir.Pull(pullCtx, func(page []mongostore.CRMUser) error {
		pullSpan.AddEvent("page", trace.WithAttributes(attribute.Int("ownersync.sync.page_users", len(page))))
		for _, u := range page {
			if !seen[u.ID] { // an owner listed in both passes counts once, active wins (first pass)
				seen[u.ID] = true
				pulled = append(pulled, u)
			}
		}
		rp.Pulled = len(pulled)
		return pr.save(ctx, false)
	})
	seen = nil
	rp.PullMS = time.Since(start).Milliseconds()
	r.obs.endPhase(ctx, pullSpan, t.ID, rp.Provider, PhasePull, rp.PullMS, err)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return fail(err)
	}

	// Reading the stored state, deciding and writing happen under the tenant+provider lock, so no
	// event interleaves with the run in this process.
	unlock := r.o.Writer.Lock(t.ID, rp.Provider)
	defer unlock()
	rp.Phase = PhaseMatch
	if err := pr.save(ctx, true); err != nil {
		return nil, err
	}
	storedCRM, err := r.store.CRMUsers(ctx, t.ID, rp.Provider)
	if err != nil {
		return nil, err
	}
	mappings, err := r.store.Mappings(ctx, t.ID, rp.Provider)
	if err != nil {
		return nil, err
	}
	// Outstanding auto-provisioning requests (rule 7): their CRM users stay pending_team instead of
	// being listed as unmapped, and a platform user that arrived for one is mapped auto_provisioned.
	pending, err := r.store.Provisions(ctx, t.ID, rp.Provider)
	if err != nil {
		return nil, err
	}
	settings, _ := t.ProviderSettings(rp.Provider)
	in := mapping.Input{
		Pending:  pending,
		Provider: rp.Provider, PlatformUsers: platform, CRMUsers: make([]mapping.CRMUser, len(pulled)), Mappings: mappings,
		Settings: mapping.Settings{RemapOnDeactivation: settings.RemapOnDeactivation, AutoProvisioning: settings.AutoProvisioning, FallbackOwnerID: settings.FallbackOwnerID},
		Now:      r.o.Now().UTC().Truncate(time.Millisecond),
	}
	after := make(map[string]mapping.CRMUser, len(pulled))
	for i, u := range pulled {
		in.CRMUsers[i] = u.CRMUser
		after[u.ID] = u.CRMUser
	}
	start = time.Now()
	_, matchSpan := r.obs.startPhase(ctx, rp.Provider, PhaseMatch)
	res := mapping.Reconcile(in)
	rp.RulesMS = time.Since(start).Milliseconds()
	r.obs.endPhase(ctx, matchSpan, t.ID, rp.Provider, PhaseMatch, rp.RulesMS, nil)
	rp.Processed = len(pulled)

	if !run.DryRun {
		rp.Phase = PhaseWrite
		if err := pr.save(ctx, true); err != nil {
			return nil, err
		}
		start = time.Now()
		ctx, writeSpan := r.obs.startPhase(ctx, rp.Provider, PhaseWrite)
		defer writeSpan.End() // on an early return; endPhase ends it otherwise
		if err := r.store.WriteCRMUsers(ctx, t.ID, rp.Provider, mongostore.DiffCRMUsers(storedCRM, pulled)); err != nil {
			return nil, err
		}
		r.o.Log.Debug("sync users step", "tenant", t.ID, "provider", rp.Provider, "step", "crm users written", "ms", time.Since(start).Milliseconds())
		err := r.o.Writer.Commit(ctx, changes.Commit{
			Tenant: t.ID, Provider: rp.Provider, Stored: mappings, Upserts: res.Upserts, Deletes: res.Deletes, Changes: res.Changes,
			CRMBefore: func(id string) (mapping.CRMUser, bool) { u, ok := storedCRM[id]; return u.CRMUser, ok },
			CRMAfter:  func(id string) (mapping.CRMUser, bool) { u, ok := after[id]; return u, ok },
			EventID:   "sync:" + run.ID, Source: "mapper.sync_users",
		})
		if err != nil {
			return nil, err
		}
		r.o.Log.Debug("sync users step", "tenant", t.ID, "provider", rp.Provider, "step", "mappings committed", "ms", time.Since(start).Milliseconds())
		// Requests the rules no longer keep (mapped now, or the CRM user is gone) are done.
		kept := make(map[string]bool, len(res.Pending))
		for _, p := range res.Pending {
			kept[p.CRMUserID] = true
		}
		for _, p := range pending {
			if !kept[p.CRMUserID] {
				if err := r.store.DeleteProvision(ctx, t.ID, rp.Provider, p.CRMUserID); err != nil {
					return nil, err
				}
			}
		}
		if err := r.store.ReplaceProblems(ctx, t.ID, rp.Provider, res.Problems, nil); err != nil {
			return nil, err
		}
		r.o.Log.Debug("sync users step", "tenant", t.ID, "provider", rp.Provider, "step", "problems written", "ms", time.Since(start).Milliseconds())
		rp.WriteMS = time.Since(start).Milliseconds()
		r.obs.endPhase(ctx, writeSpan, t.ID, rp.Provider, PhaseWrite, rp.WriteMS, nil)
	}
	c := res.Counts
	rp.Counts = &mongostore.RunCounts{Mapped: c.Mapped, Created: c.Created, Remapped: c.Remapped, Removed: c.Removed,
		Conflicts: c.Conflicts, Errors: c.Errors, UnmappedPlatform: c.UnmappedPlatform, UnmappedCRM: c.UnmappedCRM,
		Pulled: len(pulled), ChangesTotal: len(res.Changes), ErrorsTotal: len(res.Problems)}
	prep.Counts = &ownersyncv1.SyncCounts{Mapped: int32(c.Mapped), Created: int32(c.Created), Remapped: int32(c.Remapped),
		Removed: int32(c.Removed), Conflicts: int32(c.Conflicts), Errors: int32(c.Errors), UnmappedPlatform: int32(c.UnmappedPlatform),
		UnmappedCrm: int32(c.UnmappedCRM), Pulled: int32(len(pulled))}
	prep.ChangesTotal, prep.ErrorsTotal = int32(len(res.Changes)), int32(len(res.Problems))
	rp.Changes, rp.Errors = nil, nil
	for _, ch := range res.Changes[:min(len(res.Changes), r.o.ListCap)] {
		rp.Changes = append(rp.Changes, mongostore.RunChange{Change: string(ch.Kind), PlatformUserID: ch.PlatformUserID, CRMUserID: ch.CRMUserID,
			PreviousCRMUserID: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
		prep.Changes = append(prep.Changes, &ownersyncv1.SyncChange{Change: changes.Kind(ch.Kind), PlatformUserId: ch.PlatformUserID,
			CrmUserId: ch.CRMUserID, PreviousCrmUserId: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
	}
	problems := append([]mapping.Problem(nil), res.Problems...)
	// Errors before conflicts in the capped list: they are what the admin must act on first.
	sort.SliceStable(problems, func(i, j int) bool { return !problems[i].Conflict() && problems[j].Conflict() })
	for _, p := range problems[:min(len(problems), r.o.ListCap)] {
		rp.Errors = append(rp.Errors, mongostore.RunProblem{Code: p.Code, PlatformUserID: p.PlatformUserID, CRMUserID: p.CRMUserID,
			Email: p.Email, Message: p.Message, Fix: p.Fix})
		prep.Errors = append(prep.Errors, &ownersyncv1.SyncError{Code: p.Code, PlatformUserId: p.PlatformUserID, CrmUserId: p.CRMUserID,
			Email: p.Email, Message: p.Message, Fix: p.Fix})
	}
	rp.Phase = PhaseDone
	r.obs.providerDone(ctx, t.ID, rp.Provider, rp.Counts)
	return prep, pr.save(ctx, true)
}

func fixFor(provider string) string {
	if provider == mapping.HubSpot {
		return "Check the HubSpot connection (private-app token or OAuth app and its crm.objects.owners.read scope) and HubSpot's status, then run Sync Users again."
	}
	return "Check the Salesforce connection (connected app, integration user with API access and View Setup, org limits) and Salesforce's status, then run Sync Users again."
}

func trigger(s string) ownersyncv1.SyncTrigger {
	switch s {
	case TriggerManual:
		return ownersyncv1.SyncTrigger_SYNC_TRIGGER_MANUAL
	case TriggerSchedule:
		return ownersyncv1.SyncTrigger_SYNC_TRIGGER_SCHEDULE
	}
	return ownersyncv1.SyncTrigger_SYNC_TRIGGER_API
}

// Interval is how often a tenant's schedule runs Sync Users: its configured interval, never less
// than tenant.MinScheduleInterval when HubSpot is connected; 0 when the schedule is off.
func Interval(t *tenant.Tenant) time.Duration {
	if !t.Schedule.Enabled {
		return 0
	}
	d := t.Schedule.IntervalDuration()
	if d <= 0 {
		return 0
	}
	if t.HubSpot != nil && t.HubSpot.Enabled && d < tenant.MinScheduleInterval {
		d = tenant.MinScheduleInterval
	}
	return d
}

// Schedule starts due scheduled runs every tick until ctx ends. list returns the tenants; a
// tenant's last start is read from sync_runs once, then kept in memory.
func (r *Runner) Schedule(ctx context.Context, tick time.Duration, list func(context.Context) ([]tenant.Tenant, error)) error {
	last := map[string]time.Time{}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		tenants, err := list(ctx)
		if err != nil {
			r.o.Log.Warn("scheduler: list tenants", "err", err)
		}
		for i := range tenants {
			tn := &tenants[i]
			every := Interval(tn)
			if every == 0 {
				continue
			}
			prev, ok := last[tn.ID]
			if !ok {
				runs, err := r.store.Runs(ctx, tn.ID, 1)
				if err != nil {
					r.o.Log.Warn("scheduler: last run", "tenant", tn.ID, "err", err)
					continue
				}
				if len(runs) > 0 {
					prev = runs[0].StartedAt
				}
				last[tn.ID] = prev
			}
			if r.o.Now().Sub(prev) < every {
				continue
			}
			run, started, err := r.Start(ctx, Request{Tenant: tn.ID, Trigger: TriggerSchedule})
			if err != nil {
				r.o.Log.Warn("scheduler: start sync users", "tenant", tn.ID, "err", err)
				continue
			}
			last[tn.ID] = run.StartedAt
			if started {
				r.o.Log.Info("scheduled sync users started", "tenant", tn.ID, "run", run.ID)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
