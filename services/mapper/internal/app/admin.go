package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/ownerhistory"
	libprovider "github.com/ownersync/ownersync/libs/provider"

	"github.com/google/uuid"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
)

var _ httpapi.Service = (*Service)(nil)

// snapshot is one provider's users and mappings read whole (the admin lists and counts).
type snapshot struct {
	platform []mongostore.PlatformUser
	crm      map[string]mongostore.CRMUser
	mappings []mapping.Mapping
}

func (s *Service) snapshot(ctx context.Context, tenantID, provider string, platform []mongostore.PlatformUser) (*snapshot, error) {
	crm, err := s.store.CRMUsers(ctx, tenantID, provider)
	if err != nil {
		return nil, err
	}
	ms, err := s.store.Mappings(ctx, tenantID, provider)
	if err != nil {
		return nil, err
	}
	return &snapshot{platform: platform, crm: crm, mappings: ms}, nil
}

func (s *Service) connected(ctx context.Context, tenantID, provider string) (*tenant.Tenant, []string, error) {
	t, err := s.tenant(ctx, tenantID)
	if errors.Is(err, ErrUnknownTenant) {
		return nil, nil, httpapi.NotFound("tenant %s not found", tenantID)
	}
	if err != nil {
		return nil, nil, err
	}
	if provider == "" {
		return t, t.Connected(), nil
	}
	if _, ok := t.ProviderSettings(provider); !ok {
		return nil, nil, httpapi.Invalid("provider %s is not connected for tenant %s", provider, tenantID)
	}
	return t, []string{provider}, nil
}

// Overview implements httpapi.Service.
func (s *Service) Overview(ctx context.Context, tenantID string) (httpapi.Overview, error) {
	t, err := s.tenant(ctx, tenantID)
	if errors.Is(err, ErrUnknownTenant) {
		return httpapi.Overview{}, httpapi.NotFound("tenant %s not found", tenantID)
	}
	if err != nil {
		return httpapi.Overview{}, err
	}
	platform, err := s.store.PlatformUsers(ctx, tenantID)
	if err != nil {
		return httpapi.Overview{}, err
	}
	runs, err := s.store.Runs(ctx, tenantID, 20)
	if err != nil {
		return httpapi.Overview{}, err
	}
	out := httpapi.Overview{Tenant: tenantID}
	for i := range runs {
		if runs[i].Status != mongostore.RunRunning {
			r := toRun(&runs[i])
			out.LastSync = &r
			break
		}
	}
	for _, p := range mapping.Providers {
		po := httpapi.ProviderOverview{Provider: p, PlatformUsers: len(platform)}
		if _, ok := t.ProviderSettings(p); !ok {
			out.Providers = append(out.Providers, po)
			continue
		}
		po.Connected = true
		sn, err := s.snapshot(ctx, tenantID, p, platform)
		if err != nil {
			return httpapi.Overview{}, err
		}
		po.CRMUsers = len(sn.crm)
		mappedP := map[string]bool{}
		mappedC := map[string]bool{}
		for _, m := range sn.mappings {
			mappedP[m.PlatformUserID], mappedC[m.CRMUserID] = true, true
			// Conflicts and errors are counted from the problems below, which include every
			// mapping in conflict or error (and the unmapped users' problems) exactly once.
			switch m.Status {
			case mapping.StatusSynced:
				po.Mapped++
			case mapping.StatusPendingTeam:
				po.PendingTeam++
			}
			if m.MadeBy == mapping.MadeByManual {
				po.Manual++
			}
		}
		problems, err := s.store.Problems(ctx, tenantID, p)
		if err != nil {
			return httpapi.Overview{}, err
		}
		for _, pr := range problems {
			if pr.Conflict() {
				po.Conflicts++
			} else {
				po.Errors++
			}
		}
		for _, u := range platform {
			if u.Rules().Mappable() && !mappedP[u.ID] {
				po.UnmappedPlatform++
			}
		}
		pending, err := s.pendingProvisions(ctx, tenantID, p)
		if err != nil {
			return httpapi.Overview{}, err
		}
		for id, u := range sn.crm {
			if !u.Mappable() || mappedC[id] {
				continue
			}
			if pending[id] {
				po.PendingTeam++ // a provisioning request is outstanding (rule 7)
				continue
			}
			po.UnmappedCRM++
		}
		for i := range runs {
			if at := providerSyncedAt(&runs[i], p); at != nil {
				po.LastSyncAt = at
				break
			}
		}
		out.Providers = append(out.Providers, po)
	}
	return out, nil
}

func providerSyncedAt(r *mongostore.SyncRun, provider string) *time.Time {
	if r.Status == mongostore.RunRunning || r.DryRun {
		return nil
	}
	for _, p := range r.Providers {
		if p.Provider == provider && p.Failure == "" && p.Counts != nil {
			at := r.FinishedAt
			return &at
		}
	}
	return nil
}

// ListMappings implements httpapi.Service. It reads the provider's mappings and users whole and
// filters in memory: FerretDB scans for any filter but _id equality, so one read of each set is
// the cheapest plan, and the joined names make the search by name possible.
func (s *Service) ListMappings(ctx context.Context, tenantID string, q httpapi.MappingQuery) (httpapi.MappingPage, error) {
	_, providers, err := s.connected(ctx, tenantID, q.Provider)
	if err != nil {
		return httpapi.MappingPage{}, err
	}
	platform, err := s.store.PlatformUsers(ctx, tenantID)
	if err != nil {
		return httpapi.MappingPage{}, err
	}
	byID := make(map[string]mongostore.PlatformUser, len(platform))
	for _, u := range platform {
		byID[u.ID] = u
	}
	needle := strings.ToLower(strings.TrimSpace(q.Q))
	var items []httpapi.Mapping
	for _, p := range providers {
		sn, err := s.snapshot(ctx, tenantID, p, nil)
		if err != nil {
			return httpapi.MappingPage{}, err
		}
		for _, m := range sn.mappings {
			if q.Status != "" && string(m.Status) != q.Status {
				continue
			}
			it := toMapping(m, byID[m.PlatformUserID], sn.crm[m.CRMUserID])
			if needle != "" && !matches(it, needle, strings.TrimSpace(q.Q)) {
				continue
			}
			items = append(items, it)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		ea, eb := strings.ToLower(a.PlatformUserEmail), strings.ToLower(b.PlatformUserEmail)
		if ea != eb {
			return ea < eb
		}
		return a.PlatformUserID < b.PlatformUserID
	})
	page, per := max(q.Page, 1), q.PerPage
	if per <= 0 {
		per = httpapi.DefaultPerPage
	}
	out := httpapi.MappingPage{Total: len(items), Page: page, PerPage: per, Items: []httpapi.Mapping{}}
	if start := (page - 1) * per; start < len(items) {
		out.Items = items[start:min(start+per, len(items))]
	}
	return out, nil
}

func matches(m httpapi.Mapping, lower, exact string) bool {
	if m.PlatformUserID == exact || m.CRMUserID == exact {
		return true
	}
	for _, f := range []string{m.PlatformUserName, m.PlatformUserEmail, m.CRMUserName, m.CRMUserEmail} {
		if strings.Contains(strings.ToLower(f), lower) {
			return true
		}
	}
	return false
}

func toMapping(m mapping.Mapping, p mongostore.PlatformUser, c mongostore.CRMUser) httpapi.Mapping {
	email := p.Email
	if email == "" {
		email = m.Email
	}
	return httpapi.Mapping{
		Provider: m.Provider, PlatformUserID: m.PlatformUserID, PlatformUserName: p.Rules().Name(), PlatformUserEmail: email,
		CRMUserID: m.CRMUserID, CRMUserName: c.Name(), CRMUserEmail: c.Email, CRMUserActive: c.Active,
		PreviousCRMUserID: m.PreviousCRMUserID, Status: string(m.Status), MadeBy: string(m.MadeBy), Reason: m.Reason,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
}

// problemReasons indexes the stored problems' messages by user, for the unmapped lists.
func (s *Service) problemReasons(ctx context.Context, tenantID, provider string) (platform, crm map[string]string, err error) {
	ps, err := s.store.Problems(ctx, tenantID, provider)
	if err != nil {
		return nil, nil, err
	}
	platform, crm = map[string]string{}, map[string]string{}
	for _, p := range ps {
		if p.PlatformUserID != "" && platform[p.PlatformUserID] == "" {
			platform[p.PlatformUserID] = p.Message
		}
		if p.CRMUserID != "" && crm[p.CRMUserID] == "" {
			crm[p.CRMUserID] = p.Message
		}
	}
	return platform, crm, nil
}

// UnmappedPlatformUsers implements httpapi.Service.
func (s *Service) UnmappedPlatformUsers(ctx context.Context, tenantID, provider string) ([]httpapi.UnmappedUser, error) {
	_, providers, err := s.connected(ctx, tenantID, provider)
	if err != nil {
		return nil, err
	}
	platform, err := s.store.PlatformUsers(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := []httpapi.UnmappedUser{}
	for _, p := range providers {
		ms, err := s.store.Mappings(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		reasons, _, err := s.problemReasons(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		mapped := make(map[string]bool, len(ms))
		for _, m := range ms {
			mapped[m.PlatformUserID] = true
		}
		for _, u := range platform {
			r := u.Rules()
			if !r.Mappable() || mapped[u.ID] {
				continue
			}
			out = append(out, httpapi.UnmappedUser{Provider: p, ID: u.ID, Name: r.Name(), Email: u.Email, Status: u.Status, Reason: reasons[u.ID]})
		}
	}
	sortUnmapped(out)
	return out, nil
}

// UnmappedCRMUsers implements httpapi.Service.
func (s *Service) UnmappedCRMUsers(ctx context.Context, tenantID, provider string) ([]httpapi.UnmappedUser, error) {
	_, providers, err := s.connected(ctx, tenantID, provider)
	if err != nil {
		return nil, err
	}
	out := []httpapi.UnmappedUser{}
	for _, p := range providers {
		sn, err := s.snapshot(ctx, tenantID, p, nil)
		if err != nil {
			return nil, err
		}
		_, reasons, err := s.problemReasons(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		mapped := make(map[string]bool, len(sn.mappings))
		for _, m := range sn.mappings {
			mapped[m.CRMUserID] = true
		}
		pending, err := s.pendingProvisions(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		for id, u := range sn.crm {
			if !u.Mappable() || mapped[id] {
				continue
			}
			uu := httpapi.UnmappedUser{Provider: p, ID: id, Name: u.Name(), Email: u.Email, Status: "active", Reason: reasons[id]}
			if pending[id] {
				uu.Status, uu.Reason = string(mapping.StatusPendingTeam), "a platform user was requested for this CRM user (auto-provisioning)"
			}
			out = append(out, uu)
		}
	}
	sortUnmapped(out)
	return out, nil
}

func sortUnmapped(us []httpapi.UnmappedUser) {
	sort.Slice(us, func(i, j int) bool {
		a, b := us[i], us[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if ea, eb := strings.ToLower(a.Email), strings.ToLower(b.Email); ea != eb {
			return ea < eb
		}
		return a.ID < b.ID
	})
}

// Errors implements httpapi.Service: the stored problems (rules and CRM API errors), errors before
// conflicts, then by code and users.
func (s *Service) Errors(ctx context.Context, tenantID, provider string) ([]httpapi.Problem, error) {
	_, providers, err := s.connected(ctx, tenantID, provider)
	if err != nil {
		return nil, err
	}
	out := []httpapi.Problem{}
	for _, p := range providers {
		ps, err := s.store.Problems(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		for _, pr := range ps {
			since := pr.Since
			hp := httpapi.Problem{Provider: p, Code: pr.Code, PlatformUserID: pr.PlatformUserID, CRMUserID: pr.CRMUserID,
				Email: pr.Email, Message: pr.Message, Fix: pr.Fix, Since: &since}
			if pr.CRMUserID != "" {
				hp.CRMUserIDs = []string{pr.CRMUserID}
			}
			if pr.PlatformUserID != "" {
				hp.PlatformUserIDs = []string{pr.PlatformUserID}
			}
			out = append(out, hp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ca, cb := isConflict(a.Code), isConflict(b.Code)
		if ca != cb {
			return !ca
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		if a.PlatformUserID != b.PlatformUserID {
			return a.PlatformUserID < b.PlatformUserID
		}
		return a.CRMUserID < b.CRMUserID
	})
	return out, nil
}

func isConflict(code string) bool { return mapping.Problem{Code: code}.Conflict() }

// MapManually implements httpapi.Service.
func (s *Service) MapManually(ctx context.Context, tenantID, provider, platformUserID, crmUserID, actor string) (httpapi.Mapping, error) {
	t, _, err := s.connected(ctx, tenantID, provider)
	if err != nil {
		return httpapi.Mapping{}, err
	}
	unlock := s.w.Lock(tenantID, provider)
	defer unlock()
	n, err := s.loadNeighbourhood(ctx, tenantID, provider, []string{platformUserID}, []string{crmUserID}, nil)
	if err != nil {
		return httpapi.Mapping{}, err
	}
	d, err := mapping.Pin(n.input(provider, settingsOf(t, provider), s.now().UTC().Truncate(time.Millisecond)), platformUserID, crmUserID)
	switch {
	case errors.Is(err, mapping.ErrPlatformUserNotFound), errors.Is(err, mapping.ErrCRMUserNotFound):
		return httpapi.Mapping{}, httpapi.NotFound("%v", err)
	case errors.Is(err, mapping.ErrCRMUserPinned):
		return httpapi.Mapping{}, httpapi.Conflict("%v", err)
	case errors.Is(err, mapping.ErrPlatformUserInvalid), errors.Is(err, mapping.ErrCRMUserInvalid):
		return httpapi.Mapping{}, httpapi.Invalid("%v", err)
	case err != nil:
		return httpapi.Mapping{}, err
	}
	if err := s.commitAdmin(ctx, tenantID, provider, n, d); err != nil {
		return httpapi.Mapping{}, err
	}
	for _, m := range d.Upserts {
		if m.PlatformUserID == platformUserID {
			p, _ := s.store.PlatformUser(ctx, tenantID, platformUserID)
			var pu mongostore.PlatformUser
			if p != nil {
				pu = *p
			}
			return toMapping(m, pu, mongostore.CRMUser{CRMUser: n.crm[m.CRMUserID]}), nil
		}
	}
	for _, m := range n.mappings { // already pinned exactly so: nothing to write
		if m.PlatformUserID == platformUserID {
			p, _ := s.store.PlatformUser(ctx, tenantID, platformUserID)
			var pu mongostore.PlatformUser
			if p != nil {
				pu = *p
			}
			return toMapping(m, pu, mongostore.CRMUser{CRMUser: n.crm[m.CRMUserID]}), nil
		}
	}
	return httpapi.Mapping{}, fmt.Errorf("pin %s → %s produced no mapping", platformUserID, crmUserID)
}

func (s *Service) commitAdmin(ctx context.Context, tenantID, provider string, n *neighbourhood, d mapping.Delta) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	crm := func(id string) (mapping.CRMUser, bool) { u, ok := n.crm[id]; return u, ok }
	if err := s.w.Commit(ctx, changes.Commit{Tenant: tenantID, Provider: provider, Stored: n.mappings, Upserts: d.Upserts,
		Deletes: d.Deletes, Changes: d.Changes, CRMBefore: crm, CRMAfter: crm, EventID: "admin:" + id.String(), Source: "mapper.admin"}); err != nil {
		return err
	}
	if len(d.CheckedPlatformUsers) > 0 || len(d.CheckedCRMUsers) > 0 {
		return s.store.ReplaceUserProblems(ctx, tenantID, provider, d.CheckedPlatformUsers, d.CheckedCRMUsers, nil, d.Problems)
	}
	return nil
}

// Unmap implements httpapi.Service.
func (s *Service) Unmap(ctx context.Context, tenantID, provider, platformUserID, actor string) error {
	t, _, err := s.connected(ctx, tenantID, provider)
	if err != nil {
		return err
	}
	unlock := s.w.Lock(tenantID, provider)
	defer unlock()
	n, err := s.loadNeighbourhood(ctx, tenantID, provider, []string{platformUserID}, nil, nil)
	if err != nil {
		return err
	}
	found := false
	for _, m := range n.mappings {
		found = found || m.PlatformUserID == platformUserID
	}
	if !found {
		return httpapi.NotFound("platform user %s has no %s mapping", platformUserID, provider)
	}
	d := mapping.Unpin(n.input(provider, settingsOf(t, provider), s.now().UTC().Truncate(time.Millisecond)), platformUserID)
	return s.commitAdmin(ctx, tenantID, provider, n, d)
}

// StartSync implements httpapi.Service.
func (s *Service) StartSync(ctx context.Context, tenantID string, r httpapi.SyncRequest) (httpapi.Run, bool, error) {
	if _, _, err := s.connected(ctx, tenantID, ""); err != nil {
		return httpapi.Run{}, false, err
	}
	trigger := r.Trigger
	if trigger == "" {
		trigger = syncusers.TriggerAPI
	}
	run, started, err := s.runner.Start(ctx, syncusers.Request{Tenant: tenantID, Trigger: trigger, DryRun: r.DryRun})
	if err != nil {
		return httpapi.Run{}, false, err
	}
	return toRun(run), started, nil
}

// Runs implements httpapi.Service.
func (s *Service) Runs(ctx context.Context, tenantID string, limit int) ([]httpapi.Run, error) {
	runs, err := s.store.Runs(ctx, tenantID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.Run, len(runs))
	for i := range runs {
		out[i] = toRun(&runs[i])
	}
	return out, nil
}

// Run implements httpapi.Service.
func (s *Service) Run(ctx context.Context, tenantID, id string) (httpapi.Run, error) {
	r, err := s.store.Run(ctx, tenantID, id)
	if errors.Is(err, mongostore.ErrNotFound) {
		return httpapi.Run{}, httpapi.NotFound("sync run %s not found", id)
	}
	if err != nil {
		return httpapi.Run{}, err
	}
	return toRun(r), nil
}

func toRun(r *mongostore.SyncRun) httpapi.Run {
	out := httpapi.Run{ID: r.ID, Tenant: r.Tenant, Trigger: r.Trigger, DryRun: r.DryRun, State: r.Status, Phase: r.Phase,
		StartedAt: r.StartedAt.UTC(), Error: r.Error}
	if r.Status == mongostore.RunPartial {
		// The API knows running, succeeded and failed; a partial run failed for some provider,
		// which the provider entries say.
		out.State = mongostore.RunFailed
		if out.Error == "" {
			out.Error = "a provider failed; see providers"
		}
	}
	if !r.FinishedAt.IsZero() && r.Status != mongostore.RunRunning {
		f := r.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	for _, p := range r.Providers {
		out.Pulled += p.Pulled
		out.Processed += p.Processed
		rp := httpapi.RunProvider{Provider: p.Provider, Error: p.Failure}
		if c := p.Counts; c != nil {
			rp.Mapped, rp.Created, rp.Remapped, rp.Removed = c.Mapped, c.Created, c.Remapped, c.Removed
			rp.Conflicts, rp.Errors, rp.UnmappedPlatform, rp.UnmappedCRM = c.Conflicts, c.Errors, c.UnmappedPlatform, c.UnmappedCRM
			rp.ChangesTotal = c.ChangesTotal
		}
		for _, ch := range p.Changes {
			rp.Changes = append(rp.Changes, httpapi.Change{Kind: ch.Change, PlatformUserID: ch.PlatformUserID, CRMUserID: ch.CRMUserID,
				PreviousCRMUserID: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
		}
		out.Providers = append(out.Providers, rp)
	}
	if r.Status == mongostore.RunRunning {
		for _, p := range r.Providers {
			if p.Phase != syncusers.PhaseWaiting && p.Phase != syncusers.PhaseDone && p.Phase != syncusers.PhaseFailed {
				out.Phase = p.Provider + ":" + p.Phase
			}
		}
	}
	return out
}

// RecordHistory implements httpapi.Service over writer's ownership_history collection
// (libs/ownerhistory).
func (s *Service) RecordHistory(ctx context.Context, tenantID, provider, recordType, recordID string) ([]httpapi.HistoryEntry, error) {
	docs, err := ownerhistory.Read(ctx, s.store.DB(), ownerhistory.Record{Tenant: tenantID, Provider: libprovider.Provider(provider), RecordType: recordType, RecordID: recordID})
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.HistoryEntry, len(docs))
	for i, d := range docs {
		out[i] = httpapi.HistoryEntry{ID: d.ID, Tenant: d.Tenant, Provider: string(d.Provider), RecordType: d.RecordType,
			RecordID: d.RecordID, At: d.At, Direction: d.Direction, Outcome: d.Outcome, OwnerBefore: d.OwnerBefore,
			OwnerAfter: d.OwnerAfter, PlatformUserID: d.PlatformUserID, EventID: d.EventID, Reason: d.Reason,
			PlatformRecordID: d.PlatformRecordID, OccurredAt: d.OccurredAt}
	}
	return out, nil
}

// pendingProvisions returns the CRM users of a provider with an outstanding provisioning request.
func (s *Service) pendingProvisions(ctx context.Context, tenantID, provider string) (map[string]bool, error) {
	ps, err := s.store.Provisions(ctx, tenantID, provider)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ps))
	for _, p := range ps {
		out[p.CRMUserID] = true
	}
	return out, nil
}
