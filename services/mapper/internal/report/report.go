// Package report is the outcome of a Sync Users run as the admin reads it, built once from the
// rules' result: per provider the counts, the changes and the problems, with the lists capped so
// that a report stays small however many users changed, and the totals kept. It is pure Go; the
// run record in MongoDB (mongostore), the report.sync event (events, which the notifier turns into
// the email) and the admin API's JSON (httpapi) all convert from it.
package report

import (
	"github.com/ownersync/ownersync/libs/provider"
	"slices"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Limits cap the lists of one provider's report, so that it stays readable in an email and well
// under a NATS message's size (config.SyncListCap).
type Limits struct {
	Changes int
	Errors  int
}

// Report is one Sync Users run.
type Report struct {
	// ID is the report's event id ("report:<run id>").
	ID         string
	RunID      string
	Tenant     string
	TenantName string
	// Trigger is api, manual or schedule.
	Trigger string
	DryRun  bool
	// EmailReport: the dry run asked for its report to be emailed (non-dry runs always are,
	// when the tenant's reports are on).
	EmailReport bool
	AdminURL    string
	StartedAt   time.Time
	FinishedAt  time.Time
	Providers   []Provider
}

// Counts are one provider's totals; Pulled is the number of CRM users read from the CRM.
type Counts struct {
	mapping.Counts
	Pulled int
}

// Provider is one provider's part of a run.
type Provider struct {
	Provider provider.Provider
	// Counts are zero when the pull failed.
	Counts Counts
	// Changes lists the changes in the rules' order (each user's changes in the order they
	// happen), capped; ChangesTotal is the number before capping.
	Changes      []mapping.Change
	ChangesTotal int
	// Errors lists the problems, errors before conflicts (what the admin must act on first),
	// capped; ErrorsTotal is the number before capping.
	Errors      []mapping.Problem
	ErrorsTotal int
	// NotMappable lists the CRM users who are not people (integration, automated, Chatter-only
	// users), apart from the errors and never counted as errors, capped like the errors;
	// NotMappableTotal is the number before capping.
	NotMappable      []mapping.NotMappable
	NotMappableTotal int
	// Failure is set when the provider's pull failed; the run then changed nothing for it.
	Failure string
}

// FromResult builds a provider's report from the rules' result. pulled is the number of CRM users
// read. A negative limit means no cap. The result is not modified.
func FromResult(provider provider.Provider, r mapping.Result, pulled int, lim Limits) Provider {
	p := Provider{
		Provider:     provider,
		Counts:       Counts{Counts: r.Counts, Pulled: pulled},
		ChangesTotal: len(r.Changes),
		ErrorsTotal:  len(r.Problems),
	}
	p.Changes = capped(r.Changes, lim.Changes)
	problems := slices.Clone(r.Problems)
	slices.SortStableFunc(problems, func(a, b mapping.Problem) int { return errorsFirst(a) - errorsFirst(b) })
	p.Errors = capped(problems, lim.Errors)
	p.NotMappable = capped(r.NotMappable, lim.Errors)
	p.NotMappableTotal = len(r.NotMappable)
	return p
}

// Failed is the report of a provider whose pull failed: nothing changed, the reason is given.
func Failed(provider provider.Provider, reason string) Provider {
	return Provider{Provider: provider, Failure: reason}
}

func errorsFirst(p mapping.Problem) int {
	if p.Conflict() {
		return 1
	}
	return 0
}

// capped returns a copy of the first n items of s (all of them for a negative n; nil for none).
func capped[T any](s []T, n int) []T {
	if n < 0 || n > len(s) {
		n = len(s)
	}
	if n == 0 {
		return nil
	}
	return slices.Clone(s[:n])
}
