package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/google/uuid"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// snapshot is one provider's users and mappings read whole (the admin lists and counts).
type snapshot struct {
	platform []domain.PlatformUser
	crm      map[string]domain.CRMUser
	mappings []mapping.Mapping
}

func (s *Service) snapshot(ctx context.Context, tenantID string, prov provider.Provider, platform []domain.PlatformUser) (*snapshot, error) {
	crm, err := s.store.CRMUsers(ctx, tenantID, prov)
	if err != nil {
		return nil, err
	}
	ms, err := s.store.Mappings(ctx, tenantID, prov)
	if err != nil {
		return nil, err
	}
	return &snapshot{platform: platform, crm: crm, mappings: ms}, nil
}

func (s *Service) connected(ctx context.Context, tenantID string, prov provider.Provider) (*tenant.Tenant, []provider.Provider, error) {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return nil, nil, err
	}
	if prov == "" {
		return t, t.Connected(), nil
	}
	if _, ok := t.ProviderSettings(prov); !ok {
		return nil, nil, &domain.Error{Code: domain.CodeInvalid, Message: fmt.Sprintf("provider %s is not connected for tenant %s", prov, tenantID), Err: domain.ErrNotConnected}
	}
	return t, []provider.Provider{prov}, nil
}

// Overview implements domain.Admin.
func (s *Service) Overview(ctx context.Context, tenantID string) (domain.Overview, error) {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return domain.Overview{}, err
	}
	platform, err := s.store.PlatformUsers(ctx, tenantID)
	if err != nil {
		return domain.Overview{}, err
	}
	runs, err := s.store.Runs(ctx, tenantID, 20)
	if err != nil {
		return domain.Overview{}, err
	}
	out := domain.Overview{Tenant: tenantID}
	for i := range runs {
		if runs[i].Status != domain.RunRunning {
			out.LastSync = &runs[i]
			break
		}
	}
	for _, p := range mapping.Providers {
		po := domain.ProviderOverview{Provider: p, PlatformUsers: len(platform)}
		if _, ok := t.ProviderSettings(provider.Provider(p)); !ok {
			out.Providers = append(out.Providers, po)
			continue
		}
		po.Connected = true
		sn, err := s.snapshot(ctx, tenantID, p, platform)
		if err != nil {
			return domain.Overview{}, err
		}
		po.CRMUsers = len(sn.crm)
		if st, _ := t.ProviderSettings(provider.Provider(p)); st.FallbackOwnerID != "" {
			po.FallbackOwnerID = st.FallbackOwnerID
			po.FallbackOwnerProblem = fallbackProblem(sn.crm, st.FallbackOwnerID)
		}
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
			return domain.Overview{}, err
		}
		var pc mapping.ProblemCounts
		for _, pr := range problems {
			pc.Add(pr.Problem)
		}
		po.Errors, po.Conflicts = pc.Errors, pc.Conflicts
		for _, u := range platform {
			if u.Rules().Mappable() && !mappedP[u.ID] {
				po.UnmappedPlatform++
			}
		}
		pending, err := s.pendingProvisions(ctx, tenantID, p)
		if err != nil {
			return domain.Overview{}, err
		}
		for id, u := range sn.crm {
			if u.Active && u.Kind == mapping.CRMKindUser && u.NotPersonReason() != "" && !mappedC[id] {
				po.NotMappable++
			}
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
			if at := runs[i].SyncedAt(p); at != nil {
				po.LastSyncAt = at
				break
			}
		}
		out.Providers = append(out.Providers, po)
	}
	return out, nil
}

// fallbackProblem says why the fallback owner cannot own records, as the stored CRM users tell
// (the same directory the writer reads): "inactive", "a queue" or "unknown" (no stored user has
// the id; before the first Sync Users every id is unknown, so the overview waits for one).
func fallbackProblem(crm map[string]domain.CRMUser, id string) string {
	u, ok := crm[id]
	if !ok {
		if len(crm) == 0 {
			return ""
		}
		return "unknown"
	}
	switch {
	case u.Kind == mapping.CRMKindQueue:
		return "a queue"
	case !u.Active:
		return "inactive"
	}
	return ""
}

// ListMappings implements domain.Admin. It reads the provider's mappings and users whole and
// filters in memory: FerretDB scans for any filter but _id equality, so one read of each set is
// the cheapest plan, and the joined names make the search by name possible.
func (s *Service) ListMappings(ctx context.Context, tenantID string, q domain.MappingQuery) (domain.MappingPage, error) {
	_, providers, err := s.connected(ctx, tenantID, q.Provider)
	if err != nil {
		return domain.MappingPage{}, err
	}
	platform, err := s.store.PlatformUsers(ctx, tenantID)
	if err != nil {
		return domain.MappingPage{}, err
	}
	byID := make(map[string]domain.PlatformUser, len(platform))
	for _, u := range platform {
		byID[u.ID] = u
	}
	needle := strings.ToLower(strings.TrimSpace(q.Q))
	var items []domain.MappedUsers
	for _, p := range providers {
		sn, err := s.snapshot(ctx, tenantID, p, nil)
		if err != nil {
			return domain.MappingPage{}, err
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
		per = domain.DefaultPerPage
	}
	out := domain.MappingPage{Total: len(items), Page: page, PerPage: per, Items: []domain.MappedUsers{}}
	if start := (page - 1) * per; start < len(items) {
		out.Items = items[start:min(start+per, len(items))]
	}
	return out, nil
}

func matches(m domain.MappedUsers, lower, exact string) bool {
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

func toMapping(m mapping.Mapping, p domain.PlatformUser, c domain.CRMUser) domain.MappedUsers {
	email := p.Email
	if email == "" {
		email = m.Email
	}
	return domain.MappedUsers{
		Provider: m.Provider, PlatformUserID: m.PlatformUserID, PlatformUserName: p.Rules().Name(), PlatformUserEmail: email,
		CRMUserID: m.CRMUserID, CRMUserName: c.Name(), CRMUserEmail: c.Email, CRMUserActive: c.Active,
		PreviousCRMUserID: m.PreviousCRMUserID, Status: string(m.Status), MadeBy: string(m.MadeBy), Reason: m.Reason,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
}

// problemReasons indexes the stored problems' messages by user, for the unmapped lists.
func (s *Service) problemReasons(ctx context.Context, tenantID string, prov provider.Provider) (platform, crm map[string]string, err error) {
	ps, err := s.store.Problems(ctx, tenantID, prov)
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

// UnmappedPlatformUsers implements domain.Admin.
func (s *Service) UnmappedPlatformUsers(ctx context.Context, tenantID string, prov provider.Provider) ([]domain.UnmappedUser, error) {
	_, providers, err := s.connected(ctx, tenantID, prov)
	if err != nil {
		return nil, err
	}
	platform, err := s.store.PlatformUsers(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := []domain.UnmappedUser{}
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
			out = append(out, domain.UnmappedUser{Provider: p, ID: u.ID, Name: r.Name(), Email: u.Email, Status: u.Status, Reason: reasons[u.ID]})
		}
	}
	sortUnmapped(out)
	return out, nil
}

// UnmappedCRMUsers implements domain.Admin.
func (s *Service) UnmappedCRMUsers(ctx context.Context, tenantID string, prov provider.Provider) ([]domain.UnmappedUser, error) {
	_, providers, err := s.connected(ctx, tenantID, prov)
	if err != nil {
		return nil, err
	}
	out := []domain.UnmappedUser{}
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
			uu := domain.UnmappedUser{Provider: p, ID: id, Name: u.Name(), Email: u.Email, Status: "active", Reason: reasons[id]}
			if pending[id] {
				uu.Status, uu.Reason = string(mapping.StatusPendingTeam), "a platform user was requested for this CRM user (auto-provisioning)"
			}
			out = append(out, uu)
		}
	}
	sortUnmapped(out)
	return out, nil
}

func sortUnmapped(us []domain.UnmappedUser) {
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

// Errors implements domain.Admin: the stored problems (rules and CRM API errors), errors before
// conflicts, then by provider, code and users.
func (s *Service) Errors(ctx context.Context, tenantID string, prov provider.Provider) ([]domain.Problem, error) {
	_, providers, err := s.connected(ctx, tenantID, prov)
	if err != nil {
		return nil, err
	}
	out := []domain.Problem{}
	for _, p := range providers {
		ps, err := s.store.Problems(ctx, tenantID, p)
		if err != nil {
			return nil, err
		}
		for _, pr := range ps {
			pr.Provider = p
			out = append(out, pr)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ca, cb := a.Conflict(), b.Conflict()
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

// MapManually implements domain.Admin.
func (s *Service) MapManually(ctx context.Context, tenantID string, prov provider.Provider, platformUserID, crmUserID, actor string) (domain.MappedUsers, error) {
	t, _, err := s.connected(ctx, tenantID, prov)
	if err != nil {
		return domain.MappedUsers{}, err
	}
	unlock := s.w.Lock(tenantID, prov)
	defer unlock()
	n, err := s.loadNeighbourhood(ctx, tenantID, prov, []string{platformUserID}, []string{crmUserID}, nil)
	if err != nil {
		return domain.MappedUsers{}, err
	}
	d, err := mapping.Pin(n.input(prov, settingsOf(t, prov), s.now().UTC().Truncate(time.Millisecond)), platformUserID, crmUserID)
	switch {
	case errors.Is(err, mapping.ErrPlatformUserNotFound), errors.Is(err, mapping.ErrCRMUserNotFound):
		return domain.MappedUsers{}, domain.Errorf(domain.CodeNotFound, "%v", err)
	case errors.Is(err, mapping.ErrCRMUserPinned):
		return domain.MappedUsers{}, domain.Errorf(domain.CodeConflict, "%v", err)
	case errors.Is(err, mapping.ErrPlatformUserInvalid), errors.Is(err, mapping.ErrCRMUserInvalid):
		return domain.MappedUsers{}, domain.Errorf(domain.CodeInvalid, "%v", err)
	case err != nil:
		return domain.MappedUsers{}, err
	}
	if err := s.commitAdmin(ctx, tenantID, prov, n, d); err != nil {
		return domain.MappedUsers{}, err
	}
	for _, m := range d.Upserts {
		if m.PlatformUserID == platformUserID {
			p, _ := s.store.PlatformUser(ctx, tenantID, platformUserID)
			var pu domain.PlatformUser
			if p != nil {
				pu = *p
			}
			return toMapping(m, pu, domain.CRMUser{CRMUser: n.crm[m.CRMUserID]}), nil
		}
	}
	for _, m := range n.mappings { // already pinned exactly so: nothing to write
		if m.PlatformUserID == platformUserID {
			p, _ := s.store.PlatformUser(ctx, tenantID, platformUserID)
			var pu domain.PlatformUser
			if p != nil {
				pu = *p
			}
			return toMapping(m, pu, domain.CRMUser{CRMUser: n.crm[m.CRMUserID]}), nil
		}
	}
	return domain.MappedUsers{}, fmt.Errorf("pin %s → %s produced no mapping", platformUserID, crmUserID)
}

func (s *Service) commitAdmin(ctx context.Context, tenantID string, prov provider.Provider, n *neighbourhood, d mapping.Delta) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	crm := func(id string) (mapping.CRMUser, bool) { u, ok := n.crm[id]; return u, ok }
	if err := s.w.Commit(ctx, changes.Commit{Tenant: tenantID, Provider: prov, Stored: n.mappings, Upserts: d.Upserts,
		Deletes: d.Deletes, Changes: d.Changes, CRMBefore: crm, CRMAfter: crm, EventID: "admin:" + id.String(), Source: "mapper.admin"}); err != nil {
		return err
	}
	if len(d.CheckedPlatformUsers) > 0 || len(d.CheckedCRMUsers) > 0 {
		return s.store.ReplaceUserProblems(ctx, tenantID, prov, d.CheckedPlatformUsers, d.CheckedCRMUsers, nil, d.Problems)
	}
	return nil
}

// Unmap implements domain.Admin.
func (s *Service) Unmap(ctx context.Context, tenantID string, prov provider.Provider, platformUserID, actor string) error {
	t, _, err := s.connected(ctx, tenantID, prov)
	if err != nil {
		return err
	}
	unlock := s.w.Lock(tenantID, prov)
	defer unlock()
	n, err := s.loadNeighbourhood(ctx, tenantID, prov, []string{platformUserID}, nil, nil)
	if err != nil {
		return err
	}
	found := false
	for _, m := range n.mappings {
		found = found || m.PlatformUserID == platformUserID
	}
	if !found {
		return domain.Errorf(domain.CodeNotFound, "platform user %s has no %s mapping", platformUserID, prov)
	}
	d := mapping.Unpin(n.input(prov, settingsOf(t, prov), s.now().UTC().Truncate(time.Millisecond)), platformUserID)
	return s.commitAdmin(ctx, tenantID, prov, n, d)
}

// StartSync implements domain.Admin.
func (s *Service) StartSync(ctx context.Context, tenantID string, r domain.SyncRequest) (*domain.SyncRun, bool, error) {
	if _, _, err := s.connected(ctx, tenantID, ""); err != nil {
		return nil, false, err
	}
	r.Tenant = tenantID
	if r.Trigger == "" {
		r.Trigger = domain.TriggerAPI
	}
	return s.runner.Start(ctx, r)
}

// Runs implements domain.Admin.
func (s *Service) Runs(ctx context.Context, tenantID string, limit int) ([]domain.SyncRun, error) {
	return s.store.Runs(ctx, tenantID, limit)
}

// Run implements domain.Admin.
func (s *Service) Run(ctx context.Context, tenantID, id string) (*domain.SyncRun, error) {
	r, err := s.store.Run(ctx, tenantID, id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, domain.Errorf(domain.CodeNotFound, "sync run %s not found", id)
	}
	return r, err
}

// RecordHistory implements domain.Admin over writer's ownership_history.
func (s *Service) RecordHistory(ctx context.Context, tenantID string, prov provider.Provider, recordType, recordID string) ([]domain.HistoryEntry, error) {
	return s.store.RecordHistory(ctx, tenantID, prov, recordType, recordID)
}

// FailedWrites implements domain.Admin over writer's ownership_history.
func (s *Service) FailedWrites(ctx context.Context, tenantID string, limit int) (domain.FailedWrites, error) {
	return s.store.FailedWrites(ctx, tenantID, limit)
}

// pendingProvisions returns the CRM users of a provider with an outstanding provisioning request.
func (s *Service) pendingProvisions(ctx context.Context, tenantID string, prov provider.Provider) (map[string]bool, error) {
	ps, err := s.store.Provisions(ctx, tenantID, prov)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ps))
	for _, p := range ps {
		out[p.CRMUserID] = true
	}
	return out, nil
}
