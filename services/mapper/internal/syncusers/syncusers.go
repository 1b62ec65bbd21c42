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
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// Tenants finds tenant configurations.
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Directories builds a tenant's CRM user directories (crm.Factory).
type Directories interface {
	Directory(t *tenant.Tenant, provider provider.Provider) (domain.Directory, error)
}

// Store keeps the runs, users, mappings, problems and provisioning requests (mongostore.Store).
type Store interface {
	LockRun(ctx context.Context, tenant, runID string, ttl time.Duration) (holder string, err error)
	RefreshLock(ctx context.Context, tenant, runID string, ttl time.Duration) error
	UnlockRun(ctx context.Context, tenant, runID string) error
	PutRun(ctx context.Context, r *domain.SyncRun) error
	Run(ctx context.Context, tenant, id string) (*domain.SyncRun, error)
	Runs(ctx context.Context, tenant string, limit int) ([]domain.SyncRun, error)
	PlatformUsers(ctx context.Context, tenant string) ([]domain.PlatformUser, error)
	ReadCRMUsers(ctx context.Context, tenant string, provider provider.Provider) (domain.StoredCRMUsers, error)
	WriteCRMUsers(ctx context.Context, tenant string, provider provider.Provider, stored domain.StoredCRMUsers, d domain.CRMUsersDiff) error
	ReadMappings(ctx context.Context, tenant string, provider provider.Provider) (domain.StoredMappings, error)
	SaveMappings(ctx context.Context, tenant string, provider provider.Provider, read domain.StoredMappings, upserts, deletes []mapping.Mapping) error
	Provisions(ctx context.Context, tenant string, provider provider.Provider, crmUserIDs ...string) ([]mapping.Provision, error)
	DeleteProvision(ctx context.Context, tenant string, provider provider.Provider, crmUserID string) error
	ReplaceProblems(ctx context.Context, tenant string, provider provider.Provider, problems []mapping.Problem, keep func(domain.Problem) bool) error
	SetCRMError(ctx context.Context, tenant string, provider provider.Provider, message, fix string) error
}

// UserDirectory is the CRM user directory view the writer reads (kvview.Directory).
type UserDirectory interface {
	PutCRMUsers(ctx context.Context, tenant string, provider provider.Provider, users []domain.CRMUser, gone []string) error
}

// TimeZones records a HubSpot account's time zone in the tenant's connection when it names none
// (tenantstore.Store).
type TimeZones interface {
	SetHubSpotTimeZone(ctx context.Context, tenantID, tz string) error
}

// Reports publishes a run's report (events.Publisher: the report.sync event the notifier mails).
type Reports interface {
	SyncReport(ctx context.Context, r report.Report) error
}

// Options configure a Runner.
type Options struct {
	Writer      *changes.Writer
	Store       Store
	Tenants     Tenants
	Directories Directories
	// UserDirectory receives every pulled CRM user (and the vanished ones) of a run that writes;
	// nil: no directory view.
	UserDirectory UserDirectory
	// TimeZones records the HubSpot account's time zone read at a run (nil: not recorded).
	TimeZones TimeZones
	// Reports publishes the report of each run.
	Reports Reports
	// AdminURL is the admin API/console base URL put into reports.
	AdminURL string
	Log      *slog.Logger
	Now      func() time.Time
	// ListCap caps the changes and errors listed per provider in a report and a run record (the
	// totals are always complete); required (config.SyncListCap).
	ListCap int
	// LockTTL is how long a run's lock lives without a refresh; required (config.SyncLockTTL).
	LockTTL time.Duration
	// MaxUsers and MaxPages bound what one provider's pull may return (users counted as
	// received, both HubSpot passes together); Deadline bounds the time from the run's start to
	// the end of its last pull. Exceeding one fails the run with a *LimitError before anything
	// is written (issue 13 item 7: a CRM that pages forever must not grow mapper without end).
	// Zero means no bound (tests); config sets all three.
	MaxUsers int
	MaxPages int
	Deadline time.Duration
	// Meter and Tracer record the runs' metrics and spans (nil: not recorded).
	Meter  metric.MeterProvider
	Tracer trace.TracerProvider
	// Claims lets one mapper replica fire a due schedule (coordkv.KV); nil: this process is the
	// only scheduler.
	Claims Claims
}

// Claims decide which replica does a piece of work once.
type Claims interface {
	// Claim returns won for the one caller that does the work named by key; done marks it finished.
	Claim(ctx context.Context, key string) (won bool, done func(), err error)
}

// LimitError is a run stopped by one of its bounds; the mappings and stored CRM users are as
// they were before the run.
type LimitError struct {
	Provider provider.Provider
	// What is "users", "pages" or "deadline".
	What string
	// Limit is the bound (a count, or the deadline's duration).
	Limit string
	// Setting is the configuration variable that sets it.
	Setting string
}

func (e *LimitError) Error() string {
	name := providerName(e.Provider)
	var what string
	switch e.What {
	case "users":
		what = fmt.Sprintf("%s listed more than %s users", name, e.Limit)
	case "pages":
		what = fmt.Sprintf("%s returned more than %s pages of users", name, e.Limit)
	default:
		what = fmt.Sprintf("the run took longer than %s while reading %s users", e.Limit, name)
	}
	return fmt.Sprintf("Sync Users stopped: %s (%s); no mapping or stored user was changed", what, e.Setting)
}

func providerName(p provider.Provider) string {
	switch p {
	case mapping.Salesforce:
		return "Salesforce"
	case mapping.HubSpot:
		return "HubSpot"
	}
	return string(p)
}

// Runner runs Sync Users.
type Runner struct {
	o     Options
	store Store
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
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o, store: o.Store, base: ctx, obs: newObserver(o.Meter, o.Tracer)}
}

// Wait waits for the background runs to end.
func (r *Runner) Wait() { r.wg.Wait() }

// Start begins a run in the background and returns its record as first stored. When a run of the
// tenant is already going, it returns that run and started=false.
func (r *Runner) Start(ctx context.Context, req domain.SyncRequest) (run *domain.SyncRun, started bool, err error) {
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
// the tenant is already going, it returns that run and domain.ErrRunning.
func (r *Runner) Run(ctx context.Context, req domain.SyncRequest) (*domain.SyncRun, *report.Report, error) {
	t, err := r.o.Tenants.Get(ctx, req.Tenant)
	if err != nil {
		return nil, nil, err
	}
	run, started, err := r.begin(ctx, t, req)
	if err != nil {
		return nil, nil, err
	}
	if !started {
		return run, nil, domain.ErrRunning
	}
	rep, err := r.execute(ctx, t, run)
	return run, rep, err
}

func (r *Runner) begin(ctx context.Context, t *tenant.Tenant, req domain.SyncRequest) (*domain.SyncRun, bool, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, false, err
	}
	runID := id.String()
	holder, err := r.store.LockRun(ctx, t.ID, runID, r.o.LockTTL)
	if errors.Is(err, domain.ErrRunning) {
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
		trigger = domain.TriggerAPI
	}
	run := &domain.SyncRun{ID: runID, Tenant: t.ID, Trigger: trigger, DryRun: req.DryRun, EmailReport: req.DryRun && req.EmailReport, Status: domain.RunRunning,
		Phase: domain.PhaseStarting, StartedAt: r.o.Now().UTC()}
	for _, p := range t.Connected() {
		run.Providers = append(run.Providers, domain.RunProvider{Provider: p, Phase: domain.PhaseWaiting})
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
	run  *domain.SyncRun
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

func (r *Runner) execute(ctx context.Context, t *tenant.Tenant, run *domain.SyncRun) (rep *report.Report, err error) {
	// The outcome is decided into final while the record still says running; the lock is freed
	// before the record shows the outcome, so whoever sees a finished run can start the next one.
	final := domain.SyncRun{}
	ctx, span := r.obs.startRun(ctx, run)
	defer func() { r.obs.endRun(ctx, span, run, err) }()
	defer func() {
		// The lock must go even when ctx ended.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err != nil {
			final.Status, final.Phase, final.Error = domain.RunFailed, domain.PhaseFailed, err.Error()
			final.FinishedAt = r.o.Now().UTC()
		}
		_ = r.store.UnlockRun(uctx, t.ID, run.ID)
		run.Status, run.Phase, run.Error, run.FinishedAt = final.Status, final.Phase, final.Error, final.FinishedAt
		if perr := r.store.PutRun(uctx, run); perr != nil && err == nil {
			err = perr
		}
	}()
	pr := &progress{r: r, run: run}
	run.Phase = domain.PhaseLoad
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
	rep = &report.Report{RunID: run.ID, Tenant: t.ID, TenantName: t.Name, Trigger: run.Trigger, DryRun: run.DryRun,
		EmailReport: run.EmailReport, AdminURL: r.o.AdminURL, StartedAt: run.StartedAt}
	// Every provider is read first, under the run's deadline, and only then is anything written:
	// a run stopped by a bound (LimitError) leaves every provider's state as it was.
	pullCtx, cancelPull := ctx, context.CancelFunc(func() {})
	if r.o.Deadline > 0 {
		pullCtx, cancelPull = context.WithDeadline(ctx, run.StartedAt.Add(r.o.Deadline))
	}
	defer cancelPull()
	pulled := make([][]domain.CRMUser, len(run.Providers))
	outcomes := make([]*report.Provider, len(run.Providers))
	for i := range run.Providers {
		rp := &run.Providers[i]
		run.Phase = string(rp.Provider)
		users, failure, err := r.pull(ctx, pullCtx, t, run, rp, pr)
		if err != nil {
			return nil, err
		}
		pulled[i], outcomes[i] = users, failure
	}
	cancelPull()
	failed := 0
	for i := range run.Providers {
		rp := &run.Providers[i]
		run.Phase = string(rp.Provider)
		if outcomes[i] == nil {
			prep, err := r.apply(ctx, t, run, rp, platform, pulled[i], pr)
			if err != nil {
				return nil, err
			}
			outcomes[i] = &prep
		}
		pulled[i] = nil
		if rp.Failure() != "" {
			failed++
		}
		rep.Providers = append(rep.Providers, *outcomes[i])
	}
	run.Phase = domain.PhaseReport
	final.FinishedAt = r.o.Now().UTC()
	final.Phase = domain.PhaseDone
	switch {
	case failed == 0:
		final.Status = domain.RunSucceeded
	case failed == len(run.Providers):
		final.Status = domain.RunFailed
		final.Error = "every provider failed"
	default:
		final.Status = domain.RunPartial
	}
	run.ReportID = "report:" + run.ID
	rep.ID, rep.FinishedAt = run.ReportID, final.FinishedAt
	if err := pr.save(ctx, true); err != nil {
		return nil, err
	}
	if err := r.o.Reports.SyncReport(ctx, *rep); err != nil {
		return nil, fmt.Errorf("publish report %s: %w", run.ReportID, err)
	}
	return rep, nil
}

// failProvider records a CRM failure of rp in the run, the report and (unless a dry run) the
// tenant's CRM error.
func (r *Runner) failProvider(ctx context.Context, t *tenant.Tenant, run *domain.SyncRun, rp *domain.RunProvider, pr *progress, err error) (*report.Provider, error) {
	out := report.Failed(rp.Provider, err.Error())
	rp.Phase, rp.Outcome = domain.PhaseFailed, &out
	if !run.DryRun {
		if serr := r.store.SetCRMError(ctx, t.ID, rp.Provider, "Sync Users could not read the CRM users: "+out.Failure,
			fixFor(rp.Provider)); serr != nil {
			return nil, serr
		}
	}
	return &out, pr.save(ctx, true)
}

// pull reads one provider's users within the run's bounds (pullCtx carries the deadline). A CRM
// failure is recorded and returned as the provider's outcome; the error is for mapper's own
// storage failing or a *LimitError, both of which end the run.
func (r *Runner) pull(ctx, pullCtx context.Context, t *tenant.Tenant, run *domain.SyncRun, rp *domain.RunProvider, pr *progress) ([]domain.CRMUser, *report.Provider, error) {
	dir, err := r.o.Directories.Directory(t, rp.Provider)
	if err != nil {
		out, err := r.failProvider(ctx, t, run, rp, pr, err)
		return nil, out, err
	}
	rp.Phase = domain.PhasePull
	if err := pr.save(ctx, true); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	var pulled []domain.CRMUser
	seen := map[string]bool{}
	pages, received := 0, 0
	var limit *LimitError
	// Each CRM page is a client span (salesforce GET, hubspot GET) under the pull span.
	spanCtx, pullSpan := r.obs.startPhase(pullCtx, rp.Provider, domain.PhasePull)
	err = dir.Pull(spanCtx, func(page []domain.CRMUser) error {
		pullSpan.AddEvent("page", trace.WithAttributes(attribute.Int("ownersync.sync.page_users", len(page))))
		pages++
		received += len(page)
		switch {
		case r.o.MaxPages > 0 && pages > r.o.MaxPages:
			limit = &LimitError{Provider: rp.Provider, What: "pages", Limit: fmt.Sprint(r.o.MaxPages), Setting: "OWNERSYNC_SYNC_MAX_PAGES"}
			return limit
		case r.o.MaxUsers > 0 && received > r.o.MaxUsers:
			limit = &LimitError{Provider: rp.Provider, What: "users", Limit: fmt.Sprint(r.o.MaxUsers), Setting: "OWNERSYNC_SYNC_MAX_USERS"}
			return limit
		}
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
	if err != nil && limit == nil && ctx.Err() == nil && errors.Is(pullCtx.Err(), context.DeadlineExceeded) {
		limit = &LimitError{Provider: rp.Provider, What: "deadline", Limit: r.o.Deadline.String(), Setting: "OWNERSYNC_SYNC_RUN_DEADLINE"}
	}
	if limit != nil {
		err = limit
	}
	r.obs.endPhase(ctx, pullSpan, t.ID, rp.Provider, domain.PhasePull, rp.PullMS, err)
	if limit != nil {
		rp.Phase = domain.PhaseFailed
		r.o.Log.WarnContext(ctx, "sync users stopped by a bound", "tenant", t.ID, "provider", rp.Provider, "bound", limit.What, "pages", pages, "users", received)
		return nil, nil, limit
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		out, err := r.failProvider(ctx, t, run, rp, pr, err)
		return nil, out, err
	}
	if !run.DryRun {
		r.recordTimeZone(ctx, t, rp.Provider, dir)
	}
	return pulled, nil, nil
}

// AccountZoner is a directory that can read its CRM account's time zone (HubSpot: the account
// info API).
type AccountZoner interface {
	AccountTimeZone(ctx context.Context) (string, error)
}

// recordTimeZone writes the HubSpot account's time zone into the tenant's connection when the
// connection names none (issue 14 item 9: the daily limit resets at the account's midnight, and the
// writer reads the zone from the connection). A failure is logged: the writer can still read the
// zone itself.
func (r *Runner) recordTimeZone(ctx context.Context, t *tenant.Tenant, provider provider.Provider, dir domain.Directory) {
	z, ok := dir.(AccountZoner)
	if r.o.TimeZones == nil || !ok || provider != mapping.HubSpot || t.HubSpot == nil || t.HubSpot.TimeZone != "" {
		return
	}
	tz, err := z.AccountTimeZone(ctx)
	if err == nil && tz != "" {
		if _, lerr := time.LoadLocation(tz); lerr != nil {
			err = fmt.Errorf("account time zone %q is not a known IANA name: %w", tz, lerr)
		} else {
			err = r.o.TimeZones.SetHubSpotTimeZone(ctx, t.ID, tz)
		}
	}
	if err != nil {
		r.o.Log.WarnContext(ctx, "hubspot account time zone not recorded", "tenant", t.ID, "error", err)
		return
	}
	if tz != "" {
		r.o.Log.InfoContext(ctx, "hubspot account time zone recorded in the connection", "tenant", t.ID, "time_zone", tz)
	}
}

// apply matches one provider's pulled users against the stored state and (unless a dry run)
// writes what changed; the error is for mapper's own storage failing.
func (r *Runner) apply(ctx context.Context, t *tenant.Tenant, run *domain.SyncRun, rp *domain.RunProvider, platform []mapping.PlatformUser, pulled []domain.CRMUser, pr *progress) (report.Provider, error) {
	var start time.Time
	// Reading the stored state, deciding and writing happen under the tenant+provider lock, so no
	// event interleaves with the run in this process.
	unlock := r.o.Writer.Lock(t.ID, rp.Provider)
	defer unlock()
	rp.Phase = domain.PhaseMatch
	if err := pr.save(ctx, true); err != nil {
		return report.Provider{}, err
	}
	storedRead, err := r.store.ReadCRMUsers(ctx, t.ID, rp.Provider)
	storedCRM := storedRead.Users
	if err != nil {
		return report.Provider{}, err
	}
	storedMappings, err := r.store.ReadMappings(ctx, t.ID, rp.Provider)
	mappings := storedMappings.Mappings
	if err != nil {
		return report.Provider{}, err
	}
	// Outstanding auto-provisioning requests (rule 7): their CRM users stay pending_team instead of
	// being listed as unmapped, and a platform user that arrived for one is mapped auto_provisioned.
	pending, err := r.store.Provisions(ctx, t.ID, rp.Provider)
	if err != nil {
		return report.Provider{}, err
	}
	settings, _ := t.ProviderSettings(provider.Provider(rp.Provider))
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
	_, matchSpan := r.obs.startPhase(ctx, rp.Provider, domain.PhaseMatch)
	res := mapping.Reconcile(in)
	rp.RulesMS = time.Since(start).Milliseconds()
	r.obs.endPhase(ctx, matchSpan, t.ID, rp.Provider, domain.PhaseMatch, rp.RulesMS, nil)
	rp.Processed = len(pulled)

	if !run.DryRun {
		rp.Phase = domain.PhaseWrite
		if err := pr.save(ctx, true); err != nil {
			return report.Provider{}, err
		}
		start = time.Now()
		ctx, writeSpan := r.obs.startPhase(ctx, rp.Provider, domain.PhaseWrite)
		defer writeSpan.End() // on an early return; endPhase ends it otherwise
		diff := domain.DiffCRMUsers(storedCRM, pulled)
		if err := r.store.WriteCRMUsers(ctx, t.ID, rp.Provider, storedRead, diff); err != nil {
			return report.Provider{}, err
		}
		// Every pulled user, not only the changed ones: a directory write lost after an earlier
		// run's MongoDB write is repaired here.
		if r.o.UserDirectory != nil {
			if err := r.o.UserDirectory.PutCRMUsers(ctx, t.ID, rp.Provider, pulled, diff.Deletes); err != nil {
				return report.Provider{}, err
			}
		}
		r.o.Log.DebugContext(ctx, "sync users step", "step", "crm users written", "ms", time.Since(start).Milliseconds())
		err := r.o.Writer.Commit(ctx, changes.Commit{
			Tenant: t.ID, Provider: rp.Provider, Stored: mappings, Upserts: res.Upserts, Deletes: res.Deletes, Changes: res.Changes,
			CRMBefore: func(id string) (mapping.CRMUser, bool) { u, ok := storedCRM[id]; return u.CRMUser, ok },
			CRMAfter:  func(id string) (mapping.CRMUser, bool) { u, ok := after[id]; return u, ok },
			EventID:   "sync:" + run.ID, Source: "mapper.sync_users",
		})
		if err != nil {
			return report.Provider{}, err
		}
		if err := r.store.SaveMappings(ctx, t.ID, rp.Provider, storedMappings, res.Upserts, res.Deletes); err != nil {
			return report.Provider{}, err
		}
		r.o.Log.DebugContext(ctx, "sync users step", "step", "mappings committed", "ms", time.Since(start).Milliseconds())
		// Requests the rules no longer keep (mapped now, or the CRM user is gone) are done.
		kept := make(map[string]bool, len(res.Pending))
		for _, p := range res.Pending {
			kept[p.CRMUserID] = true
		}
		for _, p := range pending {
			if !kept[p.CRMUserID] {
				if err := r.store.DeleteProvision(ctx, t.ID, rp.Provider, p.CRMUserID); err != nil {
					return report.Provider{}, err
				}
			}
		}
		if err := r.store.ReplaceProblems(ctx, t.ID, rp.Provider, res.Problems, nil); err != nil {
			return report.Provider{}, err
		}
		r.o.Log.DebugContext(ctx, "sync users step", "step", "problems written", "ms", time.Since(start).Milliseconds())
		rp.WriteMS = time.Since(start).Milliseconds()
		r.obs.endPhase(ctx, writeSpan, t.ID, rp.Provider, domain.PhaseWrite, rp.WriteMS, nil)
	}
	out := report.FromResult(rp.Provider, res, len(pulled), report.Limits{Changes: r.o.ListCap, Errors: r.o.ListCap})
	rp.Phase, rp.Outcome = domain.PhaseDone, &out
	r.obs.providerDone(ctx, t.ID, rp.Provider, out.Counts)
	return out, pr.save(ctx, true)
}

func fixFor(provider provider.Provider) string {
	if provider == mapping.HubSpot {
		return "Check the HubSpot connection (private-app token or OAuth app and its crm.objects.owners.read scope) and HubSpot's status, then run Sync Users again."
	}
	return "Check the Salesforce connection (connected app, integration user with API access and View Setup, org limits) and Salesforce's status, then run Sync Users again."
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
// tenant's last start is read from sync_runs once, then kept in memory. With Claims, a schedule
// that looks due is checked against the latest run in sync_runs (another replica may have fired
// it) and fired only by the replica that claims the successor of that run, so across replicas a
// due schedule fires once.
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
			r.fireIfDue(ctx, &tenants[i], last)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// fireIfDue starts tn's scheduled run when its interval has passed since its last run.
func (r *Runner) fireIfDue(ctx context.Context, tn *tenant.Tenant, last map[string]time.Time) {
	every := Interval(tn)
	if every == 0 {
		return
	}
	prev, ok := last[tn.ID]
	if ok && r.o.Now().Sub(prev) < every {
		return
	}
	latest := "none"
	if !ok || r.o.Claims != nil {
		runs, err := r.store.Runs(ctx, tn.ID, 1)
		if err != nil {
			r.o.Log.Warn("scheduler: last run", "tenant", tn.ID, "err", err)
			return
		}
		prev = time.Time{}
		if len(runs) > 0 {
			prev, latest = runs[0].StartedAt, runs[0].ID
		}
		last[tn.ID] = prev
		if r.o.Now().Sub(prev) < every {
			return
		}
	}
	done := func() {}
	if r.o.Claims != nil {
		won, d, err := r.o.Claims.Claim(ctx, "schedule."+tn.ID+".after."+latest)
		if err != nil {
			r.o.Log.Warn("scheduler: claim the due run", "tenant", tn.ID, "err", err)
			return
		}
		if !won {
			return // another replica fires it; the next tick reads its run
		}
		done = d
	}
	run, started, err := r.Start(ctx, domain.SyncRequest{Tenant: tn.ID, Trigger: domain.TriggerSchedule})
	if err != nil {
		r.o.Log.Warn("scheduler: start sync users", "tenant", tn.ID, "err", err)
		return
	}
	done()
	last[tn.ID] = run.StartedAt
	if started {
		r.o.Log.Info("scheduled sync users started", "tenant", tn.ID, "run", run.ID)
	}
}
