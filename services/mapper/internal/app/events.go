// Package app is mapper's core: it applies user-changed events, CRM user refreshes and owner
// changes (auto-provisioning) to the mappings, and serves the admin API and console (it implements
// domain.Admin) over the store, the rules, the mappings view and Sync Users. It works in domain
// types; the store, the view, the CRM directories and the event publisher are interfaces declared
// here and implemented by the edges (mongostore, kvview, crm, events).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Fields a partial CrmUserChanged may carry (CrmUserChanged.fields).
const (
	FieldEmail     = "email"
	FieldFirstName = "first_name"
	FieldLastName  = "last_name"
	FieldActive    = "active"
	FieldUserType  = "user_type"
	FieldUsername  = "username"
	FieldKind      = "kind"
)

// Tenants finds tenant configurations (tenantstore.Cache).
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Store keeps the users, mappings, problems, provisioning requests and runs (mongostore.Store).
// Missing documents are errors wrapping domain.ErrNotFound.
type Store interface {
	PlatformUser(ctx context.Context, tenant, id string) (*domain.PlatformUser, error)
	PlatformUsers(ctx context.Context, tenant string) ([]domain.PlatformUser, error)
	PlatformUsersByEmail(ctx context.Context, tenant string, emails []string) ([]domain.PlatformUser, error)
	UpsertPlatformUser(ctx context.Context, u domain.PlatformUser) (applied bool, err error)
	CRMUser(ctx context.Context, tenant string, prov provider.Provider, id string) (domain.CRMUser, error)
	CRMUsers(ctx context.Context, tenant string, prov provider.Provider) (map[string]domain.CRMUser, error)
	CRMUsersByEmail(ctx context.Context, tenant string, prov provider.Provider, emails []string) ([]domain.CRMUser, error)
	PutCRMUser(ctx context.Context, tenant string, prov provider.Provider, u domain.CRMUser) (stored domain.CRMUser, changed bool, err error)
	DeleteCRMUser(ctx context.Context, tenant string, prov provider.Provider, id string) error
	Mappings(ctx context.Context, tenant string, prov provider.Provider) ([]mapping.Mapping, error)
	MappingsNaming(ctx context.Context, tenant string, prov provider.Provider, platformUserIDs, crmUserIDs []string) ([]mapping.Mapping, error)
	Generation(ctx context.Context, tenant string, prov provider.Provider) (int64, error)
	Problems(ctx context.Context, tenant string, prov provider.Provider) ([]domain.Problem, error)
	ReplaceUserProblems(ctx context.Context, tenant string, prov provider.Provider, platformUserIDs, crmUserIDs, emails []string, problems []mapping.Problem) error
	Provision(ctx context.Context, tenant string, prov provider.Provider, crmUserID string) (mapping.Provision, error)
	Provisions(ctx context.Context, tenant string, prov provider.Provider, crmUserIDs ...string) ([]mapping.Provision, error)
	PutProvision(ctx context.Context, tenant string, p mapping.Provision) (created bool, err error)
	DeleteProvision(ctx context.Context, tenant string, prov provider.Provider, crmUserID string) error
	Run(ctx context.Context, tenant, id string) (*domain.SyncRun, error)
	Runs(ctx context.Context, tenant string, limit int) ([]domain.SyncRun, error)
	RecordHistory(ctx context.Context, tenant string, prov provider.Provider, recordType, recordID string) ([]domain.HistoryEntry, error)
	FailedWrites(ctx context.Context, tenant string, limit int) (domain.FailedWrites, error)
}

// View is the mappings view as far as the core rebuilds it (kvview.View).
type View interface {
	Generation(ctx context.Context, tenant string, prov provider.Provider) (int64, error)
	RebuildMappings(ctx context.Context, tenant string, prov provider.Provider, entries []domain.ViewEntry, generation int64) error
}

// Directories builds a tenant's CRM user directories (crm.Factory).
type Directories interface {
	Directory(t *tenant.Tenant, prov provider.Provider) (domain.Directory, error)
}

// UserDirectory is the CRM user directory view the writer reads (kvview.Directory): every stored
// CRM user's kind and active flag.
type UserDirectory interface {
	PutCRMUsers(ctx context.Context, tenant string, prov provider.Provider, users []domain.CRMUser, gone []string) error
	RebuildDirectory(ctx context.Context, tenant string, prov provider.Provider, users []domain.CRMUser) error
	DirectoryBuilt(ctx context.Context, tenant string, prov provider.Provider) (bool, error)
}

// Runner starts Sync Users runs (syncusers.Runner).
type Runner interface {
	Start(ctx context.Context, r domain.SyncRequest) (run *domain.SyncRun, started bool, err error)
}

// Provisions publishes auto-provisioning requests (events.Publisher).
type Provisions interface {
	ProvisionRequested(ctx context.Context, r domain.ProvisionRequest) error
}

// Options are the core's dependencies.
type Options struct {
	Writer      *changes.Writer
	Store       Store
	View        View
	Tenants     Tenants
	Directories Directories
	// UserDirectory receives every CRM user the events and refreshes store (nil: no directory view).
	UserDirectory UserDirectory
	Runner        Runner
	// Provisions publishes auto-provisioning requests (rule 7); OwnerChanged fails without it
	// when a request is due.
	Provisions Provisions
	Log        *slog.Logger
	Now        func() time.Time
	// LockWait bounds how long an event waits for a Sync Users run (or another event) of the same
	// tenant and provider; then it fails with domain.ErrBusy and the consumer redelivers it later.
	// It must stay below the consumers' AckWait (config.EventLockWait).
	LockWait time.Duration
}

// Service is mapper's core.
type Service struct {
	w          *changes.Writer
	store      Store
	view       View
	tenants    Tenants
	dirs       Directories
	userDir    UserDirectory
	runner     Runner
	provisions Provisions
	log        *slog.Logger
	now        func() time.Time
	lockWait   time.Duration
}

// New returns the core.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{w: o.Writer, store: o.Store, view: o.View, tenants: o.Tenants, dirs: o.Directories, runner: o.Runner,
		provisions: o.Provisions, log: o.Log, now: o.Now, lockWait: o.LockWait}
}

// tenant returns a configured tenant; an unknown one is a not-found error wrapping
// domain.ErrUnknownTenant.
func (s *Service) tenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	t, err := s.tenants.Get(ctx, id)
	if errors.Is(err, tenant.ErrNotFound) {
		return nil, &domain.Error{Code: domain.CodeNotFound, Message: fmt.Sprintf("tenant %s not found", id), Err: domain.ErrUnknownTenant}
	}
	return t, err
}

// PlatformUserChanged stores a platform user (older changes than the stored one are ignored) and
// applies the rules to it for every connected provider. A tenant that is not configured yet keeps
// its users for its first Sync Users; nothing is mapped. Idempotent: the rules run on the stored
// state, and the mapping.changed ids derive from eventID.
func (s *Service) PlatformUserChanged(ctx context.Context, eventID string, u domain.PlatformUser) error {
	t, err := s.tenant(ctx, u.Tenant)
	if errors.Is(err, domain.ErrUnknownTenant) {
		_, err := s.store.UpsertPlatformUser(ctx, u)
		return err
	}
	if err != nil {
		return err
	}
	// Store and rules under the locks of every connected provider (taken in one order, so two
	// events never wait for each other), so no other event of the tenant and provider runs its
	// rules between this user's store and its rules (docs/architecture.md#sync-users).
	providers := t.Connected()
	for _, p := range providers {
		unlock, err := s.w.LockWithin(ctx, t.ID, p, s.lockWait)
		if err != nil {
			return err
		}
		defer unlock()
	}
	prev, err := s.store.PlatformUser(ctx, u.Tenant, u.ID)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	if _, err := s.store.UpsertPlatformUser(ctx, u); err != nil {
		return err
	}
	ev := mapping.Event{PlatformUserID: u.ID}
	if prev != nil && !mapping.SameEmail(prev.Email, u.Email) {
		ev.PreviousEmail = prev.Email
	}
	for _, p := range providers {
		if err := s.applyLocked(ctx, t, p, ev, eventID, nil); err != nil {
			return err
		}
	}
	return nil
}

// CRMUserChanged stores a CRM user, merging a partial change (fields lists what the source
// carried; empty means complete) into the stored user, and applies the rules to it.
func (s *Service) CRMUserChanged(ctx context.Context, tenantID string, prov provider.Provider, eventID string, u domain.CRMUser, fields []string) error {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if _, ok := t.ProviderSettings(provider.Provider(prov)); !ok {
		return fmt.Errorf("%w: %s %s", domain.ErrNotConnected, tenantID, prov)
	}
	// Store and rules under one lock: the rules of another event of the tenant and provider never
	// run between this user's store and its rules (issue 14 item 4).
	unlock, err := s.w.LockWithin(ctx, t.ID, prov, s.lockWait)
	if err != nil {
		return err
	}
	defer unlock()
	prev, err := s.store.CRMUser(ctx, tenantID, prov, u.ID)
	known := err == nil
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	merged := Merge(prev, known, u, fields)
	stored, _, err := s.store.PutCRMUser(ctx, tenantID, prov, merged)
	if err != nil {
		return err
	}
	if err := s.putDirectory(ctx, tenantID, prov, []domain.CRMUser{stored}, nil); err != nil {
		return err
	}
	ev := mapping.Event{CRMUserID: u.ID}
	if known && !mapping.SameEmail(prev.Email, merged.Email) {
		ev.PreviousEmail = prev.Email
	}
	var before *mapping.CRMUser
	if known {
		before = &prev.CRMUser
	}
	return s.applyLocked(ctx, t, prov, ev, eventID, before)
}

// RefreshCRMUser re-reads one CRM user from the CRM (user.refresh, e.g. after the writer got
// INACTIVE_OWNER_OR_USER) and applies it; a user the CRM no longer has is removed from the store.
func (s *Service) RefreshCRMUser(ctx context.Context, tenantID string, prov provider.Provider, crmUserID, eventID string) error {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return err
	}
	if _, ok := t.ProviderSettings(provider.Provider(prov)); !ok {
		return fmt.Errorf("%w: %s %s", domain.ErrNotConnected, tenantID, prov)
	}
	dir, err := s.dirs.Directory(t, prov)
	if err != nil {
		return err
	}
	u, err := dir.Get(ctx, crmUserID) // the CRM call stays outside the lock
	unlock, lerr := s.w.LockWithin(ctx, t.ID, prov, s.lockWait)
	if lerr != nil {
		return lerr
	}
	defer unlock()
	prev, perr := s.store.CRMUser(ctx, tenantID, prov, crmUserID)
	known := perr == nil
	if perr != nil && !errors.Is(perr, domain.ErrNotFound) {
		return perr
	}
	ev := mapping.Event{CRMUserID: crmUserID}
	switch {
	case errors.Is(err, domain.ErrNotFound):
		if !known {
			return nil
		}
		if err := s.store.DeleteCRMUser(ctx, tenantID, prov, crmUserID); err != nil {
			return err
		}
		if err := s.putDirectory(ctx, tenantID, prov, nil, []string{crmUserID}); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		u.SourceTime = time.Time{} // a fresh read from the CRM wins over any event
		stored, _, err := s.store.PutCRMUser(ctx, tenantID, prov, u)
		if err != nil {
			return err
		}
		if err := s.putDirectory(ctx, tenantID, prov, []domain.CRMUser{stored}, nil); err != nil {
			return err
		}
		if known && !mapping.SameEmail(prev.Email, u.Email) {
			ev.PreviousEmail = prev.Email
		}
	}
	var before *mapping.CRMUser
	if known {
		before = &prev.CRMUser
	}
	return s.applyLocked(ctx, t, prov, ev, eventID, before)
}

// putDirectory writes stored CRM users to the directory view, and removes the gone ones.
func (s *Service) putDirectory(ctx context.Context, tenantID string, prov provider.Provider, users []domain.CRMUser, gone []string) error {
	if s.userDir == nil {
		return nil
	}
	return s.userDir.PutCRMUsers(ctx, tenantID, prov, users, gone)
}

// Merge applies a (possibly partial) CRM user change to the stored user.
func Merge(prev domain.CRMUser, known bool, u domain.CRMUser, fields []string) domain.CRMUser {
	if !known || len(fields) == 0 {
		if u.Kind == "" {
			u.Kind = mapping.CRMKindUser
		}
		return u
	}
	out := prev
	out.SourceTime = u.SourceTime
	for _, f := range fields {
		switch f {
		case FieldEmail:
			out.Email = u.Email
		case FieldFirstName:
			out.FirstName = u.FirstName
		case FieldLastName:
			out.LastName = u.LastName
		case FieldActive:
			out.Active = u.Active
		case FieldUserType:
			out.UserType = u.UserType
		case FieldUsername:
			out.Username = u.Username
		case FieldKind:
			out.Kind = u.Kind
		}
	}
	if u.HubSpotUserID != 0 {
		out.HubSpotUserID = u.HubSpotUserID
	}
	return out
}

func settingsOf(t *tenant.Tenant, prov provider.Provider) mapping.Settings {
	st, _ := t.ProviderSettings(provider.Provider(prov))
	return mapping.Settings{RemapOnDeactivation: st.RemapOnDeactivation, AutoProvisioning: st.AutoProvisioning, FallbackOwnerID: st.FallbackOwnerID}
}

// neighbourhood is what mapping.Apply needs around one event, read from the store.
type neighbourhood struct {
	platform map[string]mapping.PlatformUser
	crm      map[string]mapping.CRMUser
	mappings []mapping.Mapping
}

func (n *neighbourhood) input(prov provider.Provider, st mapping.Settings, now time.Time) mapping.Input {
	in := mapping.Input{Provider: prov, Mappings: n.mappings, Settings: st, Now: now}
	for _, u := range n.platform {
		in.PlatformUsers = append(in.PlatformUsers, u)
	}
	for _, u := range n.crm {
		in.CRMUsers = append(in.CRMUsers, u)
	}
	return in
}

// loadNeighbourhood reads the touched user, the users of both sides under its emails, the
// mappings naming any of them, the users those mappings name and the users sharing the emails of
// the platform users so named (the remap candidates) — what mapping.Apply documents it needs.
// Each read is an equality lookup on an indexed field.
func (s *Service) loadNeighbourhood(ctx context.Context, tenantID string, prov provider.Provider, platformIDs, crmIDs, emails []string) (*neighbourhood, error) {
	n := &neighbourhood{platform: map[string]mapping.PlatformUser{}, crm: map[string]mapping.CRMUser{}}
	addEmails := func(emails []string) error {
		ps, err := s.store.PlatformUsersByEmail(ctx, tenantID, emails)
		if err != nil {
			return err
		}
		for _, u := range ps {
			n.platform[u.ID] = u.Rules()
		}
		cs, err := s.store.CRMUsersByEmail(ctx, tenantID, prov, emails)
		if err != nil {
			return err
		}
		for _, u := range cs {
			n.crm[u.ID] = u.CRMUser
		}
		return nil
	}
	addIDs := func(pids, cids []string) error {
		for _, id := range pids {
			if _, ok := n.platform[id]; ok || id == "" {
				continue
			}
			u, err := s.store.PlatformUser(ctx, tenantID, id)
			if errors.Is(err, domain.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			n.platform[id] = u.Rules()
		}
		for _, id := range cids {
			if _, ok := n.crm[id]; ok || id == "" {
				continue
			}
			u, err := s.store.CRMUser(ctx, tenantID, prov, id)
			if errors.Is(err, domain.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			n.crm[id] = u.CRMUser
		}
		return nil
	}
	if err := addIDs(platformIDs, crmIDs); err != nil {
		return nil, err
	}
	for _, u := range n.platform {
		emails = append(emails, u.Email)
	}
	for _, u := range n.crm {
		emails = append(emails, u.Email)
	}
	if err := addEmails(emails); err != nil {
		return nil, err
	}
	ms, err := s.store.MappingsNaming(ctx, tenantID, prov, keys(n.platform), keys(n.crm))
	if err != nil {
		return nil, err
	}
	n.mappings = ms
	var pids, cids []string
	for _, m := range ms {
		pids, cids = append(pids, m.PlatformUserID), append(cids, m.CRMUserID)
	}
	if err := addIDs(pids, cids); err != nil {
		return nil, err
	}
	var more []string
	for _, id := range pids {
		if u, ok := n.platform[id]; ok && !slices.Contains(emails, u.Email) {
			more = append(more, u.Email)
		}
	}
	if err := addEmails(more); err != nil {
		return nil, err
	}
	return n, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// applyLocked runs mapping.Apply for one touched user and commits the outcome; the caller holds
// the tenant-and-provider lock since before it stored the user. before is the touched CRM user's
// state before the event (nil when new or a platform event).
func (s *Service) applyLocked(ctx context.Context, t *tenant.Tenant, prov provider.Provider, ev mapping.Event, eventID string, before *mapping.CRMUser) error {
	var pids, cids, emails []string
	if ev.PlatformUserID != "" {
		pids = append(pids, ev.PlatformUserID)
	}
	if ev.CRMUserID != "" {
		cids = append(cids, ev.CRMUserID)
	}
	if ev.PreviousEmail != "" {
		emails = append(emails, ev.PreviousEmail)
	}
	n, err := s.loadNeighbourhood(ctx, t.ID, prov, pids, cids, emails)
	if err != nil {
		return err
	}
	in := n.input(prov, settingsOf(t, prov), s.now().UTC().Truncate(time.Millisecond))
	// Outstanding provisioning requests of the CRM users around the event: a platform user matched
	// to one is mapped auto_provisioned (rule 7).
	if in.Pending, err = s.store.Provisions(ctx, t.ID, prov, keys(n.crm)...); err != nil {
		return err
	}
	d := mapping.Apply(in, ev)
	crmAfter := func(id string) (mapping.CRMUser, bool) { u, ok := n.crm[id]; return u, ok }
	crmBefore := crmAfter
	if ev.CRMUserID != "" {
		crmBefore = func(id string) (mapping.CRMUser, bool) {
			if id == ev.CRMUserID {
				if before == nil {
					return mapping.CRMUser{}, false
				}
				return *before, true
			}
			return crmAfter(id)
		}
	}
	err = s.w.Commit(ctx, changes.Commit{
		Tenant: t.ID, Provider: prov, Stored: n.mappings, Upserts: d.Upserts, Deletes: d.Deletes, Changes: d.Changes,
		CRMBefore: crmBefore, CRMAfter: crmAfter, EventID: eventID, Source: "mapper.events", PublishFirst: true,
	})
	if err != nil {
		return err
	}
	if err := s.store.ReplaceUserProblems(ctx, t.ID, prov, d.CheckedPlatformUsers, d.CheckedCRMUsers, nil, d.Problems); err != nil {
		return err
	}
	return s.settleProvisions(ctx, t.ID, prov, in.Pending, d.Upserts)
}

// settleProvisions removes the provisioning requests that the committed mappings answered: their
// CRM user is now mapped (the mapping itself keeps made_by auto_provisioned, and so its
// pending_team status, from then on).
func (s *Service) settleProvisions(ctx context.Context, tenantID string, prov provider.Provider, pending []mapping.Provision, upserts []mapping.Mapping) error {
	if len(pending) == 0 {
		return nil
	}
	for _, m := range upserts {
		for _, p := range pending {
			if p.CRMUserID == m.CRMUserID {
				if err := s.store.DeleteProvision(ctx, tenantID, prov, p.CRMUserID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
