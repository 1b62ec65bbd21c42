// Package writeback is what the writer does with one owner change
// (docs/architecture.md#owner-writeback): it checks the tenant's direction, tells our own echoes
// and stale or duplicated deliveries from real changes (compare-and-set on the record's state),
// translates the owner to the other side, publishes the platform's OwnerAssign or pushes the owner
// to every connected CRM through the batcher, and records every outcome in the ownership history.
//
// The handlers return nil when the change is done, an ownership.Unretryable error when redelivery
// cannot help and any other error, possibly an ownership.RetryAfter, when it should come back later;
// the events edge maps them to ack, dead letter and redelivery. Effects are idempotent, so a redelivery after a failure part-way through
// finishes the work without doing any part twice in the CRM or on the platform.
package writeback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// ErrUnknownTenant is returned (wrapped) by Policies for a tenant that is not configured; the
// change is dead-lettered.
var ErrUnknownTenant = errors.New("unknown tenant")

// Policies returns a tenant's writeback configuration.
type Policies interface {
	Policy(ctx context.Context, tenant string) (ownership.Policy, error)
}

// States updates record states with compare-and-set; *recordstate.Store implements it over KV.
type States interface {
	UpdateRecord(ctx context.Context, r ownership.RecordRef, fn ownership.UpdateFunc) (ownership.RecordState, error)
}

// Writes queues CRM owner writes into batches; *batcher.Batcher[ownership.BatchKey,
// ownership.OwnerWrite, ownership.Written] flushed by crmwrite implements it.
type Writes interface {
	Submit(ctx context.Context, key ownership.BatchKey, recordID string, w ownership.OwnerWrite) *batcher.Future[ownership.Written]
}

// Links remembers which CRM record a platform record is; *recordstate.Links implements it.
type Links interface {
	Link(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, platformRecordID string) (string, bool, error)
	SaveLink(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, platformRecordID, crmRecordID string) error
}

// Finder finds a CRM record by email, and reads a CRM record's email; *crmwrite.Finder implements
// it, batching the lookups of concurrent changes through the per-tenant limiter.
// ownership.ErrAmbiguousEmail means several records have the email.
type Finder interface {
	FindRecord(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, email string) (string, bool, error)
	RecordEmail(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, id string) (string, bool, error)
}

// Publisher publishes what the writer tells the rest of the system.
type Publisher interface {
	// Assign publishes OwnerAssign on owner.assign.<tenant> for a CRM change. It is called again
	// when the change is redelivered, so its message id must derive from ch.EventID (JetStream then
	// drops the repeat).
	Assign(ctx context.Context, ch ownership.CRMOwnerChange, a ownership.Assignment) error
	// RefreshUser asks mapper to re-read a CRM user (user.refresh.<tenant>.<provider>).
	RefreshUser(ctx context.Context, tenant string, p provider.Provider, crmUserID, reason string) error
	// Alert publishes an Alert on alert.<tenant>.
	Alert(ctx context.Context, a Alert) error
}

// History appends to the ownership history (ownership_history, batched inserts).
type History interface {
	Record(ctx context.Context, e Entry) error
}

// Outcome is what happened to one change for one record, as the history shows it.
type Outcome string

// History outcomes.
const (
	Applied     Outcome = "applied"     // published to the platform, or written to the CRM
	Fallback    Outcome = "fallback"    // written to the CRM with the tenant's fallback owner
	Skipped     Outcome = "skipped"     // the direction or the object modules say no
	Echo        Outcome = "echo"        // the CRM reporting our own write
	Stale       Outcome = "stale"       // older than what the record already has
	Duplicate   Outcome = "duplicate"   // delivered again after it was done
	Unchanged   Outcome = "unchanged"   // the record already has this owner
	Superseded  Outcome = "superseded"  // a newer change to the record replaced it in the batch
	NotFound    Outcome = "not_found"   // no CRM record to write to
	Failed      Outcome = "failed"      // no valid owner, or the CRM refused the write for good
	Redelivered Outcome = "redelivered" // delivered again before its effect was confirmed; done again
)

// Entry is one line of a record's ownership history.
type Entry struct {
	Tenant           string
	Provider         provider.Provider
	RecordType       ownership.RecordType
	CRMRecordID      string
	PlatformRecordID string
	EventID          string
	Origin           ownership.Origin
	Outcome          Outcome
	// OwnerBefore is the CRM owner the record had as far as the writer knew (the last applied one).
	OwnerBefore string
	// OwnerID is the CRM owner the change named (from the CRM) or that was written (to the CRM).
	OwnerID string
	// PlatformUserID is the platform owner: the change's (from the platform) or the assigned one.
	PlatformUserID string
	// Assign is the OwnerAssign outcome published for a CRM change.
	Assign ownership.AssignOutcome
	Reason string
	// ErrorCode is the CRM's error code of a refused write (outcome Failed).
	ErrorCode  string
	OccurredAt time.Time
	At         time.Time
}

// AlertKind names the kind of an Alert (Alert.kind in the proto).
type AlertKind string

// Alert kinds raised by the writer.
const (
	AlertWritebackFailed AlertKind = "writeback_failed"
	AlertQuotaExhausted  AlertKind = "quota_exhausted"
	// AlertFallbackInactive: the fallback owner is inactive or archived, so platform changes that
	// need it are not written. Raised once per tenant, provider and fallback owner (its id derives
	// from them, so JetStream's duplicate window drops the repeats of every replica), not per record.
	AlertFallbackInactive AlertKind = "fallback_owner_inactive"
)

// fallbackAlertEvery is how long one writer process stays quiet about an inactive fallback owner
// after raising the alert: the SYNC stream's default duplicate window, which drops the other
// replicas' copies of the same alert id.
const fallbackAlertEvery = time.Hour

// Alert is something a tenant admin must see.
type Alert struct {
	Tenant   string
	Provider provider.Provider
	Kind     AlertKind
	Summary  string
	Details  string
	// Record names the record concerned ("<provider>/<type>/<id>"), when there is one.
	Record string
	// EventID is the change the alert is about, or another stable id, so that a redelivery raises
	// the same alert (the publisher derives the message id from it).
	EventID string
}

// QuotaAlert is the Alert for a limiter notice of a daily quota near exhaustion (wire it to
// crmwrite.Config.OnNotice); ok is false for other notices.
func QuotaAlert(n ratelimit.Notice) (Alert, bool) {
	if n.Kind != ratelimit.QuotaNearExhaustion {
		return Alert{}, false
	}
	return Alert{
		Tenant:   n.Key.Tenant,
		Provider: n.Key.Provider,
		Kind:     AlertQuotaExhausted,
		Summary:  fmt.Sprintf("%s daily API quota nearly used up: owner writes are held", n.Key.Provider),
		Details: fmt.Sprintf("%d of %d daily API requests used, %d left; owner writes to %s resume at %s, and nothing is lost meanwhile",
			n.Used, n.Limit, n.Remaining, n.Key.Provider, n.Until.UTC().Format(time.RFC3339)),
		EventID: fmt.Sprintf("quota:%s:%s:%d", n.Key.Tenant, n.Key.Provider, n.Until.Unix()),
	}, true
}

// Deps are the Engine's collaborators. Links and Finder are optional: without them a platform
// change reaches only the CRM records whose ids it carries.
type Deps struct {
	Policies  Policies
	View      ownership.View
	States    States
	Writes    Writes
	Links     Links
	Finder    Finder
	Publisher Publisher
	History   History
}

// Config tunes an Engine.
type Config struct {
	// EchoWindow is how far a CRM change's time may be from our write for it to count as our echo.
	// Default 10 minutes.
	EchoWindow time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Engine handles owner changes. It is safe for concurrent use.
type Engine struct {
	cfg Config
	d   Deps
	tr  *ownership.Translator
	// raised remembers when this process raised a fallback-owner alert (key tenant/provider/owner).
	raised sync.Map
}

// New returns an Engine.
func New(cfg Config, d Deps) *Engine {
	if cfg.EchoWindow <= 0 {
		cfg.EchoWindow = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Engine{cfg: cfg, d: d, tr: ownership.NewTranslator(d.View)}
}

func (e *Engine) policy(ctx context.Context, tenant string) (ownership.Policy, error) {
	pol, err := e.d.Policies.Policy(ctx, tenant)
	if errors.Is(err, ErrUnknownTenant) {
		return pol, ownership.Unretryable(fmt.Errorf("tenant %s: %w", tenant, err))
	}
	if err != nil {
		return pol, fmt.Errorf("tenant %s configuration: %w", tenant, err)
	}
	return pol, nil
}

func (e *Engine) record(ctx context.Context, en Entry) error {
	en.At = e.cfg.Now()
	if err := e.d.History.Record(ctx, en); err != nil {
		return fmt.Errorf("record %s history of %s %s %s: %w", en.Outcome, en.Provider, en.RecordType, en.CRMRecordID, err)
	}
	return nil
}

// verdictOutcome is the history outcome of a verdict that ends the work.
var verdictOutcome = map[ownership.Verdict]Outcome{
	ownership.Echo:      Echo,
	ownership.Stale:     Stale,
	ownership.Duplicate: Duplicate,
	ownership.Unchanged: Unchanged,
}

// CRMChange handles an owner change made in a CRM: unless the tenant's direction keeps it from the
// platform, or it is our own echo, stale or a duplicate, it publishes the OwnerAssign the platform
// must apply. deliveries is how many times the change has been delivered (1 the first time).
func (e *Engine) CRMChange(ctx context.Context, ch ownership.CRMOwnerChange, deliveries uint64) error {
	pol, err := e.policy(ctx, ch.Tenant)
	if err != nil {
		return err
	}
	en := Entry{Tenant: ch.Tenant, Provider: ch.Provider, RecordType: ch.RecordType, CRMRecordID: ch.RecordID,
		EventID: ch.EventID, Origin: ownership.FromCRM, OwnerID: ch.OwnerID, OccurredAt: ch.OccurredAt}
	if a, skip := ownership.SkipCRMChange(pol, ch); skip {
		en.Outcome, en.Reason = Skipped, a.Reason
		return e.record(ctx, en)
	}
	obs := ownership.Observation{Origin: ownership.FromCRM, Provider: ch.Provider, EventID: ch.EventID, Owner: ch.OwnerID, At: ch.OccurredAt}
	var verdict ownership.Verdict
	st, err := e.d.States.UpdateRecord(ctx, ownership.RecordRef{Tenant: ch.Tenant, Provider: ch.Provider, RecordType: ch.RecordType, RecordID: ch.RecordID},
		func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
			en.OwnerBefore = cur.AppliedOwner
			verdict = ownership.Judge(cur, obs, e.cfg.EchoWindow)
			if verdict == ownership.Apply || verdict == ownership.Unchanged {
				next := cur.Apply(obs)
				if ch.Email != "" {
					next.RecordEmail = ch.Email
				}
				return next, true, nil
			}
			return cur, false, nil
		})
	if err != nil {
		return err
	}
	en.PlatformRecordID = st.PlatformRecordID
	if out, done := verdictOutcome[verdict]; done {
		en.Outcome, en.Reason = out, verdictReason(verdict, st)
		return e.record(ctx, en)
	}
	a, err := e.tr.ToPlatform(ctx, pol, ch)
	if err != nil {
		return err
	}
	if awaitsProvisioning(pol, ch, a, deliveries) {
		// Redelivery re-judges the change as Redo and translates it again once mapper's mapping for
		// the provisioned user (pending_team) is in the view, so the platform can hold the assignment.
		return ownership.RetryAfter(fmt.Errorf("%s owner %s of %s %s awaits auto-provisioning", ch.Provider, ch.OwnerID, ch.RecordType, ch.RecordID),
			provisionWaitStep)
	}
	a.PlatformRecordID = st.PlatformRecordID
	if ch.Email, err = e.recordEmail(ctx, ch, st); err != nil {
		return err
	}
	if err := e.d.Publisher.Assign(ctx, ch, a); err != nil {
		return fmt.Errorf("publish owner assignment for %s %s %s: %w", ch.Provider, ch.RecordType, ch.RecordID, err)
	}
	en.Outcome, en.Assign, en.PlatformUserID, en.Reason = Applied, a.Outcome, a.OwnerUserID, a.Reason
	if verdict == ownership.Redo {
		en.Outcome = Redelivered
	}
	return e.record(ctx, en)
}

// recordEmail returns the email the OwnerAssign of a CRM change names its record by: the change's
// own, else the one stored with the record's state, else — for a HubSpot contact the platform has
// no link for, whose webhook carries only the contact id — the contact's email read from HubSpot
// (batched with other changes' reads, through the tenant's limiter) and stored with the state, so
// that a platform that does not store HubSpot ids can apply the assignment.
func (e *Engine) recordEmail(ctx context.Context, ch ownership.CRMOwnerChange, st ownership.RecordState) (string, error) {
	switch {
	case ch.Email != "":
		return ch.Email, nil
	case st.RecordEmail != "":
		return st.RecordEmail, nil
	case st.PlatformRecordID != "" || ch.Provider != provider.HubSpot || ch.RecordType != ownership.Contact || e.d.Finder == nil:
		return "", nil
	}
	email, ok, err := e.d.Finder.RecordEmail(ctx, ch.Tenant, ch.Provider, ch.RecordType, ch.RecordID)
	if err != nil {
		err = fmt.Errorf("read email of %s %s %s: %w", ch.Provider, ch.RecordType, ch.RecordID, err)
		if ce, isCRM := ownership.AsWriteError(err); isCRM && ce.RetryAfter > 0 {
			return "", ownership.RetryAfter(err, ce.RetryAfter)
		}
		return "", err
	}
	if !ok {
		return "", nil
	}
	if _, err := e.d.States.UpdateRecord(ctx, ownership.RecordRef{Tenant: ch.Tenant, Provider: ch.Provider, RecordType: ch.RecordType, RecordID: ch.RecordID},
		func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
			if cur.RecordEmail == email {
				return cur, false, nil
			}
			cur.RecordEmail = email
			return cur, true, nil
		}); err != nil {
		return "", err
	}
	return email, nil
}

// Auto-provisioning (docs/architecture.md#rule-7-auto-provisioning) takes mapper a moment: it
// publishes the request, the platform creates the user, mapper maps it. An unmapped user-owner of a
// tenant with auto-provisioning on is therefore retried every provisionWaitStep, for at most
// provisionWaitDeliveries deliveries, before the change is reported unassigned.
const (
	provisionWaitStep       = 2 * time.Second
	provisionWaitDeliveries = 8
)

func awaitsProvisioning(pol ownership.Policy, ch ownership.CRMOwnerChange, a ownership.Assignment, deliveries uint64) bool {
	return a.Outcome == ownership.UnassignedNoMapping && ch.OwnerID != "" && ch.OwnerKind != ownership.KindQueue &&
		pol.Providers[ch.Provider].AutoProvisioning && deliveries < provisionWaitDeliveries
}

// verdictReason says in words why a change was not acted on.
func verdictReason(v ownership.Verdict, st ownership.RecordState) string {
	switch v {
	case ownership.Echo:
		return fmt.Sprintf("the CRM reports owner %s that ownersync wrote at %s", st.WrittenOwner, st.WrittenAt.UTC().Format(time.RFC3339))
	case ownership.Stale:
		return fmt.Sprintf("older than the change applied last (%s, owner %s)", st.AppliedAt.UTC().Format(time.RFC3339Nano), st.AppliedOwner)
	case ownership.Duplicate:
		return "this change was already applied"
	case ownership.Unchanged:
		return fmt.Sprintf("the record already has owner %s", st.AppliedOwner)
	}
	return string(v)
}

// PlatformChange handles an owner change made on the platform: for every connected CRM whose
// direction allows it, it finds the CRM record, translates the owner (mapping, else fallback owner)
// and writes it through the batcher. A transient failure of any CRM sends the change back for
// later (CRMs already written see it as a duplicate then); a permanent one dead-letters it after
// recording the failure and raising an Alert.
func (e *Engine) PlatformChange(ctx context.Context, ch ownership.PlatformOwnerChange) error {
	pol, err := e.policy(ctx, ch.Tenant)
	if err != nil {
		return err
	}
	targets, err := e.tr.ToCRM(ctx, pol, ch)
	if err != nil {
		return err
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.target(ctx, ch, tg)
		}()
	}
	wg.Wait()
	return combine(errs)
}

// combine merges the targets' errors: any transient error makes the whole change transient (with
// the longest requested delay), else any permanent error makes it permanent.
func combine(errs []error) error {
	var transient, permanent []error
	var delay time.Duration
	for _, err := range errs {
		switch {
		case err == nil:
		case ownership.IsUnretryable(err):
			// Joined under one mark below.
			if ue, ok := err.(*ownership.UnretryableError); ok {
				err = ue.Err
			}
			permanent = append(permanent, err)
		default:
			transient = append(transient, err)
			if d, ok := ownership.RetryDelay(err); ok && d > delay {
				delay = d
			}
		}
	}
	switch {
	case len(transient) > 0 && delay > 0:
		return ownership.RetryAfter(errors.Join(transient...), delay)
	case len(transient) > 0:
		return errors.Join(transient...)
	case len(permanent) > 0:
		return ownership.Unretryable(errors.Join(permanent...))
	}
	return nil
}

// target carries a platform change to one CRM.
func (e *Engine) target(ctx context.Context, ch ownership.PlatformOwnerChange, tg ownership.Target) error {
	en := Entry{Tenant: ch.Tenant, Provider: tg.Provider, RecordType: ch.RecordType, CRMRecordID: tg.CRMRecordID,
		PlatformRecordID: ch.PlatformRecordID, EventID: ch.EventID, Origin: ownership.FromPlatform, OwnerID: tg.OwnerID,
		PlatformUserID: ch.OwnerUserID, OccurredAt: ch.OccurredAt, Reason: tg.Reason}
	switch tg.Outcome {
	case ownership.Skipped:
		en.Outcome = Skipped
		return e.record(ctx, en)
	case ownership.Failed:
		en.Outcome = Failed
		if err := e.record(ctx, en); err != nil {
			return err
		}
		if tg.FallbackInactive {
			if err := e.fallbackAlert(ctx, ch.Tenant, tg.Provider, tg.Reason); err != nil {
				return err
			}
			return ownership.Unretryable(errors.New(tg.Reason))
		}
		if err := e.alert(ctx, en, "no valid "+string(tg.Provider)+" owner for a platform owner change", tg.Reason); err != nil {
			return err
		}
		return ownership.Unretryable(errors.New(tg.Reason))
	}

	recordID, why, err := e.resolve(ctx, ch, tg)
	if err != nil {
		return err
	}
	if recordID == "" {
		en.Outcome, en.Reason = NotFound, why
		return e.record(ctx, en)
	}
	en.CRMRecordID = recordID
	key := ownership.RecordRef{Tenant: ch.Tenant, Provider: tg.Provider, RecordType: ch.RecordType, RecordID: recordID}
	obs := ownership.Observation{Origin: ownership.FromPlatform, Provider: tg.Provider, EventID: ch.EventID, Owner: tg.OwnerID, At: ch.OccurredAt}
	var (
		verdict ownership.Verdict
		prev    ownership.RecordState
	)
	st, err := e.d.States.UpdateRecord(ctx, key, func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		prev = cur
		en.OwnerBefore = cur.AppliedOwner
		verdict = ownership.Judge(cur, obs, e.cfg.EchoWindow)
		var next ownership.RecordState
		switch verdict {
		case ownership.Apply:
			next = cur.Claim(obs, e.cfg.Now())
		case ownership.Unchanged:
			next = cur.Apply(obs)
		default:
			return cur, false, nil
		}
		if ch.PlatformRecordID != "" {
			next.PlatformRecordID = ch.PlatformRecordID
		}
		if ch.Email != "" {
			next.RecordEmail = ch.Email
		}
		return next, true, nil
	})
	if err != nil {
		return err
	}
	if out, done := verdictOutcome[verdict]; done {
		en.Outcome, en.Reason = out, verdictReason(verdict, st)
		return e.record(ctx, en)
	}

	// The batcher keeps the write of the later change when two of one record meet
	// (crmwrite.Supersedes), pending together or one after the other's flush, so a newer change
	// that claimed the record meanwhile still wins even if its batch was sent first.
	fut := e.d.Writes.Submit(ctx, ownership.BatchKey{Tenant: ch.Tenant, Provider: tg.Provider, RecordType: ch.RecordType},
		recordID, ownership.OwnerWrite{RecordID: recordID, OwnerID: tg.OwnerID, TraceID: ch.EventID, At: ch.OccurredAt})
	res, err := fut.Wait(ctx)
	if err != nil {
		return fmt.Errorf("write owner of %s %s %s: %w", tg.Provider, ch.RecordType, recordID, err)
	}
	switch {
	case res.Superseded:
		en.Outcome, en.Reason = Superseded, "a newer change to the same record replaced this one before it was written"
		return e.record(ctx, en)
	case res.Err == nil:
		if _, err := e.d.States.UpdateRecord(ctx, key, func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
			next, ok := cur.Confirm(ch.EventID, e.cfg.Now())
			return next, ok, nil
		}); err != nil {
			return err
		}
		en.Outcome = Applied
		if tg.Outcome == ownership.Fallback {
			en.Outcome = Fallback
		}
		if verdict == ownership.Redo {
			en.Outcome = Redelivered
		}
		return e.record(ctx, en)
	}
	return e.writeFailed(ctx, ch, tg, en, key, prev, res.Err)
}

// writeFailed handles a CRM write that failed: a transient failure comes back later (the claim
// stays, so the redelivery writes again); a permanent one releases the claim, records the failure,
// raises an Alert, asks mapper to re-read an inactive owner, and is dead-lettered.
func (e *Engine) writeFailed(ctx context.Context, ch ownership.PlatformOwnerChange, tg ownership.Target, en Entry, key ownership.RecordRef, prev ownership.RecordState, werr error) error {
	ce, ok := ownership.AsWriteError(werr)
	if !ok || !ce.Permanent() {
		err := fmt.Errorf("write owner of %s %s %s: %w", tg.Provider, ch.RecordType, en.CRMRecordID, werr)
		if ok && ce.RetryAfter > 0 {
			return ownership.RetryAfter(err, ce.RetryAfter)
		}
		return err
	}
	if _, err := e.d.States.UpdateRecord(ctx, key, func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		if cur.AppliedEventID != ch.EventID || !cur.Pending {
			return cur, false, nil
		}
		next := cur
		next.AppliedOwner, next.AppliedAt, next.AppliedEventID = prev.AppliedOwner, prev.AppliedAt, prev.AppliedEventID
		next.WrittenOwner, next.WrittenAt, next.Pending = prev.WrittenOwner, prev.WrittenAt, prev.Pending
		return next, true, nil
	}); err != nil {
		return err
	}
	if ce.Class.RefreshUser && tg.OwnerID != "" {
		if err := e.d.Publisher.RefreshUser(ctx, ch.Tenant, tg.Provider, tg.OwnerID,
			fmt.Sprintf("%s refused %s as owner: %s", tg.Provider, tg.OwnerID, ce.Code)); err != nil {
			return fmt.Errorf("request refresh of %s user %s: %w", tg.Provider, tg.OwnerID, err)
		}
	}
	en.Outcome, en.Reason, en.ErrorCode = Failed, ce.Error(), ce.Code
	if err := e.record(ctx, en); err != nil {
		return err
	}
	if err := e.alert(ctx, en, fmt.Sprintf("%s refused an owner write", tg.Provider), ce.Error()); err != nil {
		return err
	}
	return ownership.Unretryable(ce)
}

// fallbackAlert raises the alert of an inactive fallback owner once per tenant and provider: one
// alert id per tenant, provider and fallback owner, published at most once an hour by this process.
func (e *Engine) fallbackAlert(ctx context.Context, tenant string, p provider.Provider, reason string) error {
	pol, err := e.policy(ctx, tenant)
	if err != nil {
		return err
	}
	owner := pol.Providers[p].FallbackOwnerID
	key := tenant + "/" + string(p) + "/" + owner
	now := e.cfg.Now()
	if at, ok := e.raised.Load(key); ok && now.Sub(at.(time.Time)) < fallbackAlertEvery {
		return nil
	}
	a := Alert{Tenant: tenant, Provider: p, Kind: AlertFallbackInactive,
		Summary: fmt.Sprintf("%s fallback owner %s is inactive: platform owner changes that need it are not written", p, owner),
		Details: fmt.Sprintf("%s. Platform owner changes whose owner has no usable %s mapping are recorded as failed in each record's history and dead-lettered until the fallback owner is active again or another one is set in the %s connection; replay the dead letters then. Example: %s",
			ownership.ReasonFallbackInactive, p, p, reason),
		EventID: fmt.Sprintf("fallback:%s:%s:%s", tenant, p, owner)}
	if err := e.d.Publisher.Alert(ctx, a); err != nil {
		return fmt.Errorf("raise alert: %w", err)
	}
	e.raised.Store(key, now)
	return nil
}

func (e *Engine) alert(ctx context.Context, en Entry, summary, details string) error {
	a := Alert{Tenant: en.Tenant, Provider: en.Provider, Kind: AlertWritebackFailed, Summary: summary, Details: details, EventID: en.EventID}
	if en.CRMRecordID != "" {
		a.Record = fmt.Sprintf("%s/%s/%s", en.Provider, en.RecordType, en.CRMRecordID)
	}
	if err := e.d.Publisher.Alert(ctx, a); err != nil {
		return fmt.Errorf("raise alert: %w", err)
	}
	return nil
}

// resolve finds the CRM record of a platform change for one CRM: the id the event carries, a stored
// link, or a search by email (whose result is then linked). An empty id comes with the reason.
func (e *Engine) resolve(ctx context.Context, ch ownership.PlatformOwnerChange, tg ownership.Target) (string, string, error) {
	if tg.CRMRecordID != "" {
		return tg.CRMRecordID, "", nil
	}
	if ch.PlatformRecordID != "" && e.d.Links != nil {
		id, ok, err := e.d.Links.Link(ctx, ch.Tenant, tg.Provider, ch.RecordType, ch.PlatformRecordID)
		if err != nil {
			return "", "", err
		}
		if ok {
			return id, "", nil
		}
	}
	if ch.Email == "" || e.d.Finder == nil {
		return "", fmt.Sprintf("the change names no %s record and platform record %q has no stored link or email", tg.Provider, ch.PlatformRecordID), nil
	}
	id, ok, err := e.d.Finder.FindRecord(ctx, ch.Tenant, tg.Provider, ch.RecordType, ch.Email)
	if errors.Is(err, ownership.ErrAmbiguousEmail) {
		return "", fmt.Sprintf("several %s %ss have email %s", tg.Provider, ch.RecordType, ch.Email), nil
	}
	if err != nil {
		err = fmt.Errorf("find %s %s by email: %w", tg.Provider, ch.RecordType, err)
		if ce, ok := ownership.AsWriteError(err); ok && ce.RetryAfter > 0 {
			// The tenant's CRM key is paused or held: come back when it takes calls again.
			return "", "", ownership.RetryAfter(err, ce.RetryAfter)
		}
		return "", "", err
	}
	if !ok {
		return "", fmt.Sprintf("no %s %s has email %s", tg.Provider, ch.RecordType, ch.Email), nil
	}
	if ch.PlatformRecordID != "" && e.d.Links != nil {
		if err := e.d.Links.SaveLink(ctx, ch.Tenant, tg.Provider, ch.RecordType, ch.PlatformRecordID, id); err != nil {
			return "", "", err
		}
	}
	return id, "", nil
}
