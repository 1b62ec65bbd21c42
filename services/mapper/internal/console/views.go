package console

import (
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// The console's view shapes: what its templates render, converted here from the core's domain
// types (the admin API converts the same types to its JSON shapes in httpapi; the console does not
// import httpapi, scripts/check-deps.sh checks it). A view embeds the domain type when the page
// shows it as it is and adds what only the page needs.

// mappingRow is one mapping of the Mapped users list.
type mappingRow struct{ domain.MappedUsers }

// mappingPage is one page of the Mapped users list.
type mappingPage struct {
	Items []mappingRow
	Total int
}

func newMappingPage(p domain.MappingPage) mappingPage {
	return mappingPage{Total: p.Total, Items: views(p.Items, func(m domain.MappedUsers) mappingRow { return mappingRow{m} })}
}

// unmappedRow is a user without a mapping; FixURL (platform users) links to the user in the
// platform.
type unmappedRow struct {
	domain.UnmappedUser
	FixURL string
}

func unmappedRows(us []domain.UnmappedUser, fixURL func(id string) string) []unmappedRow {
	out := make([]unmappedRow, len(us))
	for i, u := range us {
		out[i] = unmappedRow{UnmappedUser: u}
		if fixURL != nil {
			out[i].FixURL = fixURL(u.ID)
		}
	}
	return out
}

// problemView is one error of the Errors page, with the users involved listed and the console
// page where the admin fixes it (FixURL, FixLabel; set by the page).
type problemView struct {
	mapping.Problem
	PlatformUserIDs []string
	CRMUserIDs      []string
	Since           *time.Time
	FixURL          string
	FixLabel        string
}

func problemViews(ps []domain.Problem) []problemView {
	out := make([]problemView, len(ps))
	for i, pr := range ps {
		since := pr.Since
		v := problemView{Problem: pr.Problem, Since: &since}
		if pr.CRMUserID != "" {
			v.CRMUserIDs = []string{pr.CRMUserID}
		}
		if pr.PlatformUserID != "" {
			v.PlatformUserIDs = []string{pr.PlatformUserID}
		}
		out[i] = v
	}
	return out
}

// runView is a Sync Users run as its page, the runs list and the header show it: the states
// running, succeeded and failed, the live phase, and each provider's result once it ended.
type runView struct {
	ID         string
	Trigger    string
	DryRun     bool
	State      string
	Phase      string
	Pulled     int
	Processed  int
	StartedAt  time.Time
	FinishedAt *time.Time
	Error      string
	Providers  []runProviderView
}

// runProviderView is one provider's result of a run: its counts, the changes of the run (the
// plan of a dry run) and the CRM users who are not people, each capped, with their totals.
type runProviderView struct {
	Provider provider.Provider
	Error    string
	mapping.Counts
	Changes          []mapping.Change
	ChangesTotal     int
	NotMappable      []mapping.NotMappable
	NotMappableTotal int
}

func newRunView(r *domain.SyncRun) runView {
	out := runView{ID: r.ID, Trigger: r.Trigger, DryRun: r.DryRun, State: r.State(), Phase: r.LivePhase(),
		StartedAt: r.StartedAt.UTC(), FinishedAt: r.Finished(), Error: r.ErrorText()}
	out.Pulled, out.Processed = r.Progress()
	for _, p := range r.Providers {
		v := runProviderView{Provider: p.Provider, Error: p.Failure()}
		if p.Succeeded() {
			o := p.Outcome
			v.Counts, v.Changes, v.ChangesTotal = o.Counts.Counts, o.Changes, o.ChangesTotal
			v.NotMappable, v.NotMappableTotal = o.NotMappable, o.NotMappableTotal
		}
		out.Providers = append(out.Providers, v)
	}
	return out
}

func runViews(rs []domain.SyncRun) []runView {
	return views(rs, func(r domain.SyncRun) runView { return newRunView(&r) })
}

// historyRow is one entry of a record's ownership history.
type historyRow struct{ domain.HistoryEntry }

func historyRows(hs []domain.HistoryEntry) []historyRow {
	return views(hs, func(h domain.HistoryEntry) historyRow { return historyRow{h} })
}

// deadLetterRow is one dead letter of the DLQ page.
type deadLetterRow struct{ domain.DeadLetter }

func deadLetterRows(ls []domain.DeadLetter) []deadLetterRow {
	return views(ls, func(l domain.DeadLetter) deadLetterRow { return deadLetterRow{l} })
}

// views converts each of ds to its view.
func views[D, V any](ds []D, view func(D) V) []V {
	out := make([]V, len(ds))
	for i, d := range ds {
		out[i] = view(d)
	}
	return out
}

// overviewView is the Overview page: each provider's counts.
type overviewView struct{ Providers []domain.ProviderOverview }
