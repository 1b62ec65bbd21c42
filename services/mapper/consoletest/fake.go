// Package consoletest holds the in-memory mapper core (domain.Admin and domain.DeadLetters) that
// the admin API's tests (internal/httpapi) and the console's handler tests share, and the console's
// browser tests and its browser tests (the _test files here drive Debian's Chromium
// with chromedp and save a PNG of every screen under <repo>/screenshots/console-*.png; without
// chromium they skip and say so).
//
// The fake keeps users and mappings in memory and applies manual mapping, unmapping, search,
// paging and Sync Users runs to them, so a test sees its own actions reflected in later pages. A
// run advances one phase on every Run call and finishes after Steps calls, which lets a test
// watch the live progress deterministically.
package consoletest

import (
	"context"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// User is a platform user (Provider empty) or a CRM user of Provider.
type User struct {
	Provider provider.Provider
	ID       string
	Name     string
	Email    string
	Active   bool
	// NotPerson is why a CRM user is not a person (an integration or automated user), with
	// UserType and License: such a user is never unmapped, it is listed as not mappable.
	NotPerson string
	UserType  string
	License   string
}

// Service is an in-memory domain.Admin for one or more tenants (data is shared by all).
type Service struct {
	mu sync.Mutex
	// Err, when set, is returned by every method.
	Err error
	// Steps is how many Run calls a run takes to finish (3 when zero).
	Steps int
	// Now is the clock.
	Now func() time.Time

	calls    []string
	platform []User
	crm      []User
	maps     []domain.MappedUsers
	problems []domain.Problem
	runs     []domain.SyncRun
	history  []domain.HistoryEntry
	steps    map[string]int
}

var _ domain.Admin = (*Service)(nil)

// T0 is the fixed time of the seeded data.
var T0 = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// Hostile is a CRM user name every page must escape.
const Hostile = `<script>alert(1)</script>`

// NewService returns an empty core.
func NewService() *Service {
	return &Service{Now: func() time.Time { return T0 }, steps: map[string]int{}}
}

// SFUserID returns the 18-character Salesforce user id number n.
func SFUserID(n int) string {
	id, err := sfid.To18(fmt.Sprintf("005%012d", n))
	if err != nil {
		panic(err)
	}
	return id
}

// NewDemo returns a core with salesforce data: mapped users u001…u0NN, three unmapped platform
// users (u901–u903), two unmapped Salesforce users (one named Hostile), one conflict, one error,
// one problem and one finished run; hubspot has two mapped users.
func NewDemo(mapped int) *Service {
	s := NewService()
	first := []string{"Ada", "Bob", "Cyd", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Joe"}
	last := []string{"Lovelace", "Byte", "Cache", "Dataset", "Event", "Frame", "Graph", "Heap", "Index", "Join"}
	for i := 1; i <= mapped; i++ {
		name := first[i%len(first)] + " " + last[(i/len(first))%len(last)]
		email := fmt.Sprintf("user%03d@acme.example", i)
		pu := User{ID: fmt.Sprintf("u%03d", i), Name: name, Email: email, Active: true}
		cu := User{Provider: "salesforce", ID: SFUserID(i), Name: name, Email: email, Active: true}
		s.platform = append(s.platform, pu)
		s.crm = append(s.crm, cu)
		m := domain.MappedUsers{Provider: "salesforce", PlatformUserID: pu.ID, PlatformUserName: name, PlatformUserEmail: email,
			CRMUserID: cu.ID, CRMUserName: name, CRMUserEmail: email, CRMUserActive: true, Status: "synced", MadeBy: "email", CreatedAt: T0, UpdatedAt: T0}
		switch i {
		case 2:
			m.Status, m.Reason = "conflict", "two active Salesforce users have the email "+email
		case 3:
			m.Status, m.Reason, m.CRMUserActive = "error", "the Salesforce user was deactivated", false
			s.crm[len(s.crm)-1].Active = false
		}
		s.maps = append(s.maps, m)
	}
	s.platform = append(s.platform,
		User{ID: "u901", Name: "Nina New", Email: "nina@acme.example", Active: true},
		User{ID: "u902", Name: "Otto Other", Email: "otto@acme.example", Active: true},
		User{ID: "u903", Name: "Pia Private", Email: "pia@acme.example", Active: true})
	s.crm = append(s.crm,
		User{Provider: "salesforce", ID: SFUserID(901), Name: Hostile, Email: "evil@acme.example", Active: true},
		User{Provider: "salesforce", ID: SFUserID(902), Name: "Otto Other", Email: "otto.other@acme.example", Active: true},
		User{Provider: "salesforce", ID: SFUserID(903), Name: "Integration User", Email: "integration@acme.example", Active: true,
			UserType: "Standard", License: "Salesforce Integration",
			NotPerson: "an integration user (Salesforce Integration licence), used by other systems, not by a person"},
		User{Provider: "hubspot", ID: "9001", Name: "Hugo Hub", Email: "user001@acme.example", Active: true},
		User{Provider: "hubspot", ID: "9002", Name: "Hana Hub", Email: "user002@acme.example", Active: true})
	for i, id := range []string{"9001", "9002"} {
		pu := s.platform[i]
		s.maps = append(s.maps, domain.MappedUsers{Provider: "hubspot", PlatformUserID: pu.ID, PlatformUserName: pu.Name, PlatformUserEmail: pu.Email,
			CRMUserID: id, CRMUserName: s.crm[len(s.crm)-2+i].Name, CRMUserEmail: pu.Email, CRMUserActive: true, Status: "synced", MadeBy: "email", CreatedAt: T0, UpdatedAt: T0})
	}
	s.problems = []domain.Problem{{Problem: mapping.Problem{Provider: "salesforce", Code: "ambiguous_email", PlatformUserID: "u002", Email: "user002@acme.example",
		Name: s.platform[1].Name, CRMUserID: SFUserID(902), Message: "two active Salesforce users have the email user002@acme.example",
		Fix: "deactivate one of the Salesforce users or map the platform user manually"}, Since: T0}}
	if mapped >= 3 {
		s.problems = append(s.problems, domain.Problem{Problem: mapping.Problem{Provider: "salesforce", Code: "crm_user_inactive", Name: s.platform[2].Name,
			PlatformUserID: "u003", CRMUserID: SFUserID(3), Email: "user003@acme.example", Message: "the Salesforce user was deactivated",
			Fix: "reactivate the Salesforce user, or map the platform user manually"}, Since: T0})
	}
	s.runs = []domain.SyncRun{{ID: "run-0", Tenant: "acme", Trigger: "schedule", Status: domain.RunSucceeded, Phase: domain.PhaseDone,
		StartedAt: T0, FinishedAt: T0.Add(4 * time.Second), Providers: []domain.RunProvider{{Provider: "salesforce", Phase: domain.PhaseDone,
			Pulled: mapped + 4, Processed: mapped + 3, Outcome: &report.Provider{Provider: "salesforce", Counts: report.Counts{Pulled: mapped + 4,
				Counts: mapping.Counts{Mapped: mapped, Created: mapped, UnmappedPlatform: 3, UnmappedCRM: 2}},
				NotMappable: s.notMappable("salesforce"), NotMappableTotal: len(s.notMappable("salesforce"))}}}}}
	s.history = []domain.HistoryEntry{{ID: "h1", Tenant: "acme", Provider: "salesforce", RecordType: "contact", RecordID: "003000000000001AAA", At: T0,
		Direction: "crm_to_platform", Outcome: "assigned", OwnerAfter: SFUserID(1), PlatformUserID: "u001", EventID: "sf:1"}}
	s.history = append(s.history, FailedWriteSeed()...)
	return s
}

// FailedWriteSeed returns two failed record writes of tenant acme: one the CRM refused (with its
// error code), one with no valid owner to write.
func FailedWriteSeed() []domain.HistoryEntry {
	return []domain.HistoryEntry{
		{ID: "h-failed-1", Tenant: "acme", Provider: "salesforce", RecordType: "contact", RecordID: "003000000000007AAA", At: T0.Add(2 * time.Minute),
			Direction: "platform_to_crm", Outcome: "failed", OwnerBefore: SFUserID(1), OwnerAfter: SFUserID(3), PlatformUserID: "u003",
			EventID: "pl:7", ErrorCode: "INACTIVE_OWNER_OR_USER",
			Reason: "salesforce write of 003000000000007AAA failed (permanent, INACTIVE_OWNER_OR_USER): operation performed with inactive user"},
		{ID: "h-failed-2", Tenant: "acme", Provider: "hubspot", RecordType: "contact", RecordID: "501", At: T0.Add(time.Minute),
			Direction: "platform_to_crm", Outcome: "failed", PlatformUserID: "u902", EventID: "pl:8",
			Reason: "no usable hubspot mapping for platform user u902 and no fallback owner"},
	}
}

// SetErr makes every method fail with err (nil restores normal answers).
func (s *Service) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Err = err
}

// AddPlatformUser adds a platform user.
func (s *Service) AddPlatformUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.platform = append(s.platform, u)
}

// AddMapping adds a mapping as it is (the users it names need not exist).
func (s *Service) AddMapping(m domain.MappedUsers) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maps = append(s.maps, m)
}

// AddRun adds a run in front of the others (Runs lists the newest first).
func (s *Service) AddRun(r domain.SyncRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append([]domain.SyncRun{r}, s.runs...)
}

// AddHistory adds an ownership history entry.
func (s *Service) AddHistory(h domain.HistoryEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, h)
}

// FinishRuns ends every running run as enough Run calls would (without recording calls).
func (s *Service) FinishRuns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.runs {
		for s.runs[i].Status == domain.RunRunning {
			s.advance(&s.runs[i])
		}
	}
}

// AddCRMUser adds a CRM user (e.g. one with a hostile name).
func (s *Service) AddCRMUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crm = append(s.crm, u)
}

// SetProblems replaces the problems Errors returns.
func (s *Service) SetProblems(ps []domain.Problem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = ps
}

// TakeCalls returns and clears the recorded calls, one line each ("Method arg arg …").
func (s *Service) TakeCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

// Calls returns the recorded calls whose line starts with prefix.
func (s *Service) Calls(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (s *Service) record(format string, a ...any) error {
	s.calls = append(s.calls, fmt.Sprintf(format, a...))
	return s.Err
}

func (s *Service) mapped(provider provider.Provider, platformID string) int {
	for i, m := range s.maps {
		if m.Provider == provider && m.PlatformUserID == platformID {
			return i
		}
	}
	return -1
}

func (s *Service) crmMapped(provider provider.Provider, crmID string) bool {
	for _, m := range s.maps {
		if m.Provider == provider && m.CRMUserID == crmID {
			return true
		}
	}
	return false
}

// Overview implements domain.Admin.
func (s *Service) Overview(_ context.Context, tenant string) (domain.Overview, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.record("Overview %s", tenant); err != nil {
		return domain.Overview{}, err
	}
	ov := domain.Overview{Tenant: tenant}
	for _, p := range mapping.Providers {
		po := domain.ProviderOverview{Provider: p, Connected: true, PlatformUsers: len(s.platform)}
		for _, u := range s.crm {
			if u.Provider == p {
				po.CRMUsers++
			}
		}
		for _, m := range s.maps {
			if m.Provider != p {
				continue
			}
			po.Mapped++
			if m.MadeBy == "manual" {
				po.Manual++
			}
		}
		// The one definition of the counts (mapping.CountProblems): each problem of the provider
		// is an error or a conflict.
		var pc mapping.ProblemCounts
		for _, pr := range s.problems {
			if pr.Provider == p {
				pc.Add(pr.Problem)
			}
		}
		po.Errors, po.Conflicts = pc.Errors, pc.Conflicts
		po.UnmappedPlatform = len(s.unmappedPlatform(p))
		po.UnmappedCRM = len(s.unmappedCRM(p))
		po.NotMappable = len(s.notMappable(p))
		ov.Providers = append(ov.Providers, po)
	}
	for i := range s.runs {
		if s.runs[i].Status != domain.RunRunning {
			r := s.runs[i]
			ov.LastSync = &r
			for j := range ov.Providers {
				ov.Providers[j].LastSyncAt = r.Finished()
			}
			break
		}
	}
	return ov, nil
}

// ListMappings implements domain.Admin with the documented order and matching.
func (s *Service) ListMappings(_ context.Context, tenant string, q domain.MappingQuery) (domain.MappingPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.record("ListMappings %s %+v", tenant, q); err != nil {
		return domain.MappingPage{}, err
	}
	var all []domain.MappedUsers
	needle := strings.ToLower(q.Q)
	for _, m := range s.maps {
		if q.Provider != "" && m.Provider != q.Provider || q.Status != "" && m.Status != q.Status {
			continue
		}
		if needle != "" && !(m.PlatformUserID == q.Q || m.CRMUserID == q.Q ||
			strings.Contains(strings.ToLower(m.PlatformUserName), needle) || strings.Contains(strings.ToLower(m.PlatformUserEmail), needle) ||
			strings.Contains(strings.ToLower(m.CRMUserName), needle) || strings.Contains(strings.ToLower(m.CRMUserEmail), needle)) {
			continue
		}
		all = append(all, m)
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if ea, eb := strings.ToLower(a.PlatformUserEmail), strings.ToLower(b.PlatformUserEmail); ea != eb {
			return ea < eb
		}
		return a.PlatformUserID < b.PlatformUserID
	})
	page := domain.MappingPage{Total: len(all), Page: q.Page, PerPage: q.PerPage, Items: []domain.MappedUsers{}}
	from := (q.Page - 1) * q.PerPage
	if from < len(all) {
		page.Items = append(page.Items, all[from:min(len(all), from+q.PerPage)]...)
	}
	return page, nil
}

func (s *Service) unmappedPlatform(provider provider.Provider) []domain.UnmappedUser {
	out := []domain.UnmappedUser{}
	for _, u := range s.platform {
		if u.Active && s.mapped(provider, u.ID) < 0 {
			out = append(out, domain.UnmappedUser{Provider: provider, ID: u.ID, Name: u.Name, Email: u.Email, Status: "active", Reason: "no " + string(provider) + " user has this email"})
		}
	}
	return out
}

func (s *Service) unmappedCRM(provider provider.Provider) []domain.UnmappedUser {
	out := []domain.UnmappedUser{}
	for _, u := range s.crm {
		if u.Provider == provider && u.Active && u.NotPerson == "" && !s.crmMapped(provider, u.ID) {
			out = append(out, domain.UnmappedUser{Provider: provider, ID: u.ID, Name: u.Name, Email: u.Email, Status: "active"})
		}
	}
	return out
}

// eachProvider is list(provider), or for provider "" the lists of both (every provider is
// connected in the fake).
func (s *Service) eachProvider(provider provider.Provider, list func(provider.Provider) []domain.UnmappedUser) []domain.UnmappedUser {
	if provider != "" {
		return list(provider)
	}
	return append(list("salesforce"), list("hubspot")...)
}

// notMappable lists the provider's CRM users who are not people (a run's result lists them).
func (s *Service) notMappable(provider provider.Provider) []mapping.NotMappable {
	var out []mapping.NotMappable
	for _, u := range s.crm {
		if u.Provider == provider && u.Active && u.NotPerson != "" && !s.crmMapped(provider, u.ID) {
			out = append(out, mapping.NotMappable{Provider: provider, CRMUserID: u.ID, Name: u.Name, Email: u.Email,
				UserType: u.UserType, License: u.License, Reason: u.NotPerson})
		}
	}
	return out
}

// UnmappedPlatformUsers implements domain.Admin.
func (s *Service) UnmappedPlatformUsers(_ context.Context, tenant string, provider provider.Provider) ([]domain.UnmappedUser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eachProvider(provider, s.unmappedPlatform), s.record("UnmappedPlatformUsers %s %s", tenant, provider)
}

// UnmappedCRMUsers implements domain.Admin.
func (s *Service) UnmappedCRMUsers(_ context.Context, tenant string, provider provider.Provider) ([]domain.UnmappedUser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eachProvider(provider, s.unmappedCRM), s.record("UnmappedCRMUsers %s %s", tenant, provider)
}

// Errors implements domain.Admin.
func (s *Service) Errors(_ context.Context, tenant string, provider provider.Provider) ([]domain.Problem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Problem
	for _, p := range s.problems {
		if provider == "" || p.Provider == provider {
			out = append(out, p)
		}
	}
	return out, s.record("Errors %s %s", tenant, provider)
}

// MapManually implements domain.Admin: it pins the users, replacing either's mapping.
func (s *Service) MapManually(_ context.Context, tenant string, provider provider.Provider, platformUserID, crmUserID, actor string) (domain.MappedUsers, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.record("MapManually %s %s %s %s %s", tenant, provider, platformUserID, crmUserID, actor); err != nil {
		return domain.MappedUsers{}, err
	}
	var pu, cu *User
	for i := range s.platform {
		if s.platform[i].ID == platformUserID {
			pu = &s.platform[i]
		}
	}
	for i := range s.crm {
		if s.crm[i].Provider == provider && s.crm[i].ID == crmUserID {
			cu = &s.crm[i]
		}
	}
	if pu == nil || cu == nil {
		return domain.MappedUsers{}, domain.Errorf(domain.CodeNotFound, "unknown platform user %s or %s user %s", platformUserID, provider, crmUserID)
	}
	if !cu.Active {
		return domain.MappedUsers{}, domain.Errorf(domain.CodeInvalid, "the %s user %s is inactive", provider, crmUserID)
	}
	kept := s.maps[:0]
	for _, m := range s.maps {
		if m.Provider == provider && (m.PlatformUserID == platformUserID || m.CRMUserID == crmUserID) {
			continue
		}
		kept = append(kept, m)
	}
	now := s.Now()
	m := domain.MappedUsers{Provider: provider, PlatformUserID: pu.ID, PlatformUserName: pu.Name, PlatformUserEmail: pu.Email,
		CRMUserID: cu.ID, CRMUserName: cu.Name, CRMUserEmail: cu.Email, CRMUserActive: true, Status: "synced", MadeBy: "manual", CreatedAt: now, UpdatedAt: now}
	s.maps = append(kept, m)
	return m, nil
}

// Unmap implements domain.Admin.
func (s *Service) Unmap(_ context.Context, tenant string, provider provider.Provider, platformUserID, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.record("Unmap %s %s %s %s", tenant, provider, platformUserID, actor); err != nil {
		return err
	}
	i := s.mapped(provider, platformUserID)
	if i < 0 {
		return domain.Errorf(domain.CodeNotFound, "platform user %s has no %s mapping", platformUserID, provider)
	}
	s.maps = append(s.maps[:i], s.maps[i+1:]...)
	return nil
}

// StartSync implements domain.Admin: a new run, or the running one.
func (s *Service) StartSync(_ context.Context, tenant string, r domain.SyncRequest) (*domain.SyncRun, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.record("StartSync %s %+v", tenant, r); err != nil {
		return nil, false, err
	}
	for _, run := range s.runs {
		if run.Tenant == tenant && run.Status == domain.RunRunning {
			return &run, false, nil
		}
	}
	run := domain.SyncRun{ID: fmt.Sprintf("run-%d", len(s.runs)), Tenant: tenant, Trigger: r.Trigger, DryRun: r.DryRun, EmailReport: r.EmailReport,
		Status: domain.RunRunning, Phase: domain.PhaseStarting, StartedAt: s.Now()}
	s.runs = append([]domain.SyncRun{run}, s.runs...)
	return &run, true, nil
}

// Runs implements domain.Admin.
func (s *Service) Runs(_ context.Context, tenant string, limit int) ([]domain.SyncRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.SyncRun
	for _, r := range s.runs {
		if r.Tenant == tenant && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, s.record("Runs %s %d", tenant, limit)
}

var phases = []string{domain.PhaseStarting, domain.PhasePull, domain.PhaseMatch, domain.PhaseWrite, domain.PhaseReport}

// Run implements domain.Admin; every call advances a running run by one step. A running run's
// progress is on its salesforce part (waiting while the run's phase says where it is); a finished
// run has both providers' results.
func (s *Service) Run(_ context.Context, tenant, id string) (*domain.SyncRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.record("Run %s %s", tenant, id); err != nil {
		return nil, err
	}
	for i := range s.runs {
		r := &s.runs[i]
		if r.ID != id || r.Tenant != tenant {
			continue
		}
		s.advance(r)
		run := *r
		return &run, nil
	}
	return nil, domain.Errorf(domain.CodeNotFound, "no run %s", id)
}

// advance moves a running run one step on.
func (s *Service) advance(r *domain.SyncRun) {
	if r.Status != domain.RunRunning {
		return
	}
	steps := s.Steps
	if steps <= 0 {
		steps = 3
	}
	s.steps[r.ID]++
	n := s.steps[r.ID]
	total := len(s.platform) + len(s.crm)
	r.Phase = phases[min(n, len(phases)-1)]
	sf := domain.RunProvider{Provider: "salesforce", Phase: domain.PhaseWaiting,
		Pulled: min(total, total*n/steps), Processed: min(len(s.platform), len(s.platform)*n/steps)}
	r.Providers = []domain.RunProvider{sf}
	if n >= steps {
		r.Status, r.Phase, r.FinishedAt = domain.RunSucceeded, domain.PhaseDone, s.Now()
		r.Providers = nil
		for _, p := range mapping.Providers {
			rp := domain.RunProvider{Provider: p, Phase: domain.PhaseDone}
			if p == sf.Provider {
				rp.Pulled, rp.Processed = sf.Pulled, sf.Processed
			}
			c := mapping.Counts{UnmappedPlatform: len(s.unmappedPlatform(p)), UnmappedCRM: len(s.unmappedCRM(p))}
			for _, m := range s.maps {
				if m.Provider == p {
					c.Mapped++
				}
			}
			nm := s.notMappable(p)
			rp.Outcome = &report.Provider{Provider: p, Counts: report.Counts{Counts: c, Pulled: rp.Pulled}, NotMappable: nm, NotMappableTotal: len(nm)}
			r.Providers = append(r.Providers, rp)
		}
	}
}

// RecordHistory implements domain.Admin.
func (s *Service) RecordHistory(_ context.Context, tenant string, provider provider.Provider, recordType, recordID string) ([]domain.HistoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.HistoryEntry
	for _, h := range s.history {
		if h.Provider == provider && h.RecordType == recordType && h.RecordID == recordID {
			out = append(out, h)
		}
	}
	return out, s.record("RecordHistory %s %s %s %s", tenant, provider, recordType, recordID)
}

// FailedWrites implements domain.Admin: the history entries with outcome failed, newest first.
func (s *Service) FailedWrites(_ context.Context, tenant string, limit int) (domain.FailedWrites, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out domain.FailedWrites
	for _, h := range s.history {
		if h.Tenant == tenant && h.Outcome == "failed" {
			out.Entries = append(out.Entries, h)
		}
	}
	sort.SliceStable(out.Entries, func(i, j int) bool { return out.Entries[i].At.After(out.Entries[j].At) })
	out.Total = len(out.Entries)
	if limit > 0 && len(out.Entries) > limit {
		out.Entries = out.Entries[:limit]
	}
	return out, s.record("FailedWrites %s %d", tenant, limit)
}

// DeadLetters is an in-memory domain.DeadLetters; Replay removes the replayed letters.
type DeadLetters struct {
	mu      sync.Mutex
	Letters []domain.DeadLetter
	calls   []string
}

var _ domain.DeadLetters = (*DeadLetters)(nil)

// List implements domain.DeadLetters.
func (d *DeadLetters) List(_ context.Context, tenant string, f domain.DLQFilter) ([]domain.DeadLetter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("List %s %+v", tenant, f))
	var out []domain.DeadLetter
	for _, l := range d.Letters {
		if selects(f, l) {
			out = append(out, l)
		}
	}
	return out, nil
}

// Replay implements domain.DeadLetters: it republishes (removes) the letters f selects.
func (d *DeadLetters) Replay(_ context.Context, tenant string, f domain.DLQFilter) (domain.ReplayResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("Replay %s %+v", tenant, f))
	var res domain.ReplayResult
	kept := d.Letters[:0]
	for _, l := range d.Letters {
		if selects(f, l) {
			res.Replayed = append(res.Replayed, domain.ReplayedLetter{ID: l.ID, Subject: l.Subject, MsgID: fmt.Sprintf("replay:%d", l.ID)})
		} else {
			kept = append(kept, l)
		}
	}
	d.Letters = kept
	return res, nil
}

// selects reports whether f selects l: every field set matches (the subject as a NATS subject
// filter with * and a final >).
func selects(f domain.DLQFilter, l domain.DeadLetter) bool {
	if f.Service != "" && l.Service != f.Service || f.Subject != "" && !subjectMatches(f.Subject, l.Subject) {
		return false
	}
	if len(f.IDs) == 0 {
		return true
	}
	for _, id := range f.IDs {
		if id == l.ID {
			return true
		}
	}
	return false
}

func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range ft {
		switch {
		case t == ">":
			return i < len(st)
		case i >= len(st):
			return false
		case t != "*" && t != st[i]:
			return false
		}
	}
	return len(ft) == len(st)
}

// TakeCalls returns and clears the recorded calls.
func (d *DeadLetters) TakeCalls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

// DeadLetterSeed returns two dead letters of tenant acme (ids 4 and 7).
func DeadLetterSeed() []domain.DeadLetter {
	return []domain.DeadLetter{
		{ID: 4, Service: "writer", Subject: "crm.owner.changed.acme.salesforce", Stream: "CRM", StreamSequence: 9, Error: "permanent: INVALID_CROSS_REFERENCE_KEY", At: T0, EventType: "OwnerChanged", Size: 42},
		{ID: 7, Service: "mapper", Subject: "platform.user.changed.acme", Stream: "PLATFORM", StreamSequence: 12, Error: "permanent: unknown tenant " + Hostile, At: T0, Size: 64},
	}
}
