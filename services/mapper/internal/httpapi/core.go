package httpapi

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// coreService is the mapper core as the API's handlers use it: each method calls domain.Admin
// and converts its domain types to the API's JSON shapes at this boundary.
type coreService struct{ c domain.Admin }

func (s coreService) Overview(ctx context.Context, tenant string) (Overview, error) {
	o, err := s.c.Overview(ctx, tenant)
	if err != nil {
		return Overview{}, err
	}
	out := Overview{Tenant: o.Tenant}
	for _, p := range o.Providers {
		out.Providers = append(out.Providers, ProviderOverview(p))
	}
	if o.LastSync != nil {
		r := NewRun(o.LastSync)
		out.LastSync = &r
	}
	return out, nil
}

func (s coreService) ListMappings(ctx context.Context, tenant string, q MappingQuery) (MappingPage, error) {
	p, err := s.c.ListMappings(ctx, tenant, domain.MappingQuery(q))
	if err != nil {
		return MappingPage{}, err
	}
	out := MappingPage{Total: p.Total, Page: p.Page, PerPage: p.PerPage, Items: make([]Mapping, len(p.Items))}
	for i, m := range p.Items {
		out.Items[i] = Mapping(m)
	}
	return out, nil
}

func unmapped(us []domain.UnmappedUser, err error) ([]UnmappedUser, error) {
	if err != nil {
		return nil, err
	}
	out := make([]UnmappedUser, len(us))
	for i, u := range us {
		out[i] = UnmappedUser(u)
	}
	return out, nil
}

func (s coreService) UnmappedPlatformUsers(ctx context.Context, tenant string, provider provider.Provider) ([]UnmappedUser, error) {
	return unmapped(s.c.UnmappedPlatformUsers(ctx, tenant, provider))
}

func (s coreService) UnmappedCRMUsers(ctx context.Context, tenant string, provider provider.Provider) ([]UnmappedUser, error) {
	return unmapped(s.c.UnmappedCRMUsers(ctx, tenant, provider))
}

func (s coreService) Errors(ctx context.Context, tenant string, provider provider.Provider) ([]Problem, error) {
	ps, err := s.c.Errors(ctx, tenant, provider)
	if err != nil {
		return nil, err
	}
	out := make([]Problem, len(ps))
	for i, pr := range ps {
		since := pr.Since
		p := Problem{Provider: pr.Provider, Code: pr.Code, Kind: pr.Kind(), Name: pr.Name, PlatformUserID: pr.PlatformUserID, CRMUserID: pr.CRMUserID,
			Email: pr.Email, Message: pr.Message, Fix: pr.Fix, Since: &since}
		if pr.CRMUserID != "" {
			p.CRMUserIDs = []string{pr.CRMUserID}
		}
		if pr.PlatformUserID != "" {
			p.PlatformUserIDs = []string{pr.PlatformUserID}
		}
		out[i] = p
	}
	return out, nil
}

func (s coreService) MapManually(ctx context.Context, tenant string, provider provider.Provider, platformUserID, crmUserID, actor string) (Mapping, error) {
	m, err := s.c.MapManually(ctx, tenant, provider, platformUserID, crmUserID, actor)
	return Mapping(m), err
}

func (s coreService) Unmap(ctx context.Context, tenant string, provider provider.Provider, platformUserID, actor string) error {
	return s.c.Unmap(ctx, tenant, provider, platformUserID, actor)
}

func (s coreService) StartSync(ctx context.Context, tenant string, r SyncRequest) (Run, bool, error) {
	run, created, err := s.c.StartSync(ctx, tenant, domain.SyncRequest{Tenant: tenant, Trigger: r.Trigger, DryRun: r.DryRun, EmailReport: r.EmailReport, Actor: r.Actor})
	if err != nil {
		return Run{}, false, err
	}
	return NewRun(run), created, nil
}

func (s coreService) Runs(ctx context.Context, tenant string, limit int) ([]Run, error) {
	rs, err := s.c.Runs(ctx, tenant, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Run, len(rs))
	for i := range rs {
		out[i] = NewRun(&rs[i])
	}
	return out, nil
}

func (s coreService) Run(ctx context.Context, tenant, id string) (Run, error) {
	r, err := s.c.Run(ctx, tenant, id)
	if err != nil {
		return Run{}, err
	}
	return NewRun(r), nil
}

func (s coreService) RecordHistory(ctx context.Context, tenant string, provider provider.Provider, recordType, recordID string) ([]HistoryEntry, error) {
	hs, err := s.c.RecordHistory(ctx, tenant, provider, recordType, recordID)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryEntry, len(hs))
	for i, h := range hs {
		out[i] = HistoryEntry(h)
	}
	return out, nil
}

// NewRun is the API's view of a run: the states running, succeeded and failed (a partial run is
// failed, its providers say which), the phase of the provider being worked on while it runs.
func NewRun(r *domain.SyncRun) Run {
	out := Run{ID: r.ID, Tenant: r.Tenant, Trigger: r.Trigger, DryRun: r.DryRun, EmailReport: r.EmailReport, State: r.State(), Phase: r.LivePhase(),
		StartedAt: r.StartedAt.UTC(), FinishedAt: r.Finished(), Error: r.ErrorText()}
	out.Pulled, out.Processed = r.Progress()
	for _, p := range r.Providers {
		rp := RunProvider{Provider: p.Provider, Error: p.Failure()}
		if p.Succeeded() {
			o := p.Outcome
			c := o.Counts
			rp.Mapped, rp.Created, rp.Remapped, rp.Removed = c.Mapped, c.Created, c.Remapped, c.Removed
			rp.Conflicts, rp.Errors, rp.UnmappedPlatform, rp.UnmappedCRM = c.Conflicts, c.Errors, c.UnmappedPlatform, c.UnmappedCRM
			rp.ChangesTotal, rp.NotMappableTotal = o.ChangesTotal, o.NotMappableTotal
			for _, n := range o.NotMappable {
				rp.NotMappable = append(rp.NotMappable, NotMappableUser{CRMUserID: n.CRMUserID, Name: n.Name, Email: n.Email,
					UserType: n.UserType, License: n.License, Reason: n.Reason})
			}
			for _, ch := range o.Changes {
				rp.Changes = append(rp.Changes, Change{Kind: string(ch.Kind), PlatformUserID: ch.PlatformUserID, CRMUserID: ch.CRMUserID,
					PreviousCRMUserID: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
			}
		}
		out.Providers = append(out.Providers, rp)
	}
	return out
}

// deadLetters converts the DLQ's listing to the API's shape.
func deadLetters(ls []domain.DeadLetter) []DeadLetter {
	out := make([]DeadLetter, len(ls))
	for i, l := range ls {
		out[i] = DeadLetter(l)
	}
	return out
}

// replayResult converts a replay's result to the API's shape.
func replayResult(r domain.ReplayResult) ReplayResult {
	out := ReplayResult{Replayed: make([]ReplayedLetter, len(r.Replayed))}
	for i, l := range r.Replayed {
		out.Replayed[i] = ReplayedLetter(l)
	}
	for _, f := range r.Failed {
		out.Failed = append(out.Failed, ReplayFailure(f))
	}
	return out
}
