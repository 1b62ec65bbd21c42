// Package report turns the outcome of a Sync Users run into what the admin reads: per provider the
// counts, the changes and the problems, with the lists capped so that a report stays small however
// many users changed, and the totals kept. It is pure Go; the mapper's edge converts it to the
// SyncReport event and the admin API's JSON.
package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Limits cap the lists of one provider's report.
type Limits struct {
	Changes int
	Errors  int
}

// DefaultLimits keep a report readable in an email and well under a NATS message's size.
var DefaultLimits = Limits{Changes: 200, Errors: 200}

// Trigger says what started a run.
type Trigger string

// Triggers of a run.
const (
	TriggerManual   Trigger = "manual"
	TriggerSchedule Trigger = "schedule"
	TriggerAPI      Trigger = "api"
)

// Report is one Sync Users run.
type Report struct {
	RunID      string
	Trigger    Trigger
	DryRun     bool
	StartedAt  time.Time
	FinishedAt time.Time
	Providers  []Provider
}

// Counts are one provider's totals; Pulled is the number of CRM users read from the CRM.
type Counts struct {
	mapping.Counts
	Pulled int
}

// Provider is one provider's part of a run.
type Provider struct {
	Provider string
	Counts   Counts
	// Changes lists the most important changes first (removals, remaps, errors, conflicts, then
	// creations and resolutions), capped; ChangesTotal is the number before capping.
	Changes      []mapping.Change
	ChangesTotal int
	// Errors lists the problems, a broken fallback owner first, capped; ErrorsTotal is the number
	// before capping.
	Errors      []mapping.Problem
	ErrorsTotal int
	// ErrorCodes counts the problems per code, over all of them, sorted by code.
	ErrorCodes []CodeCount
	// Failure is set when the provider's pull failed; the run then changed nothing for it.
	Failure string
}

// CodeCount is the number of problems with one code.
type CodeCount struct {
	Code  string
	Count int
}

// changeRank puts what the admin must notice first: removals, remaps, errors, conflicts, then
// creations and resolutions.
func changeRank(k mapping.ChangeKind) int {
	switch k {
	case mapping.ChangeRemoved:
		return 0
	case mapping.ChangeRemapped:
		return 1
	case mapping.ChangeError:
		return 2
	case mapping.ChangeConflict:
		return 3
	case mapping.ChangeCreated:
		return 4
	}
	return 5
}

// FromResult builds a provider's report from the rules' result. pulled is the number of CRM users
// read. The result is not modified.
func FromResult(provider string, r mapping.Result, pulled int, lim Limits) Provider {
	p := Provider{
		Provider:     provider,
		Counts:       Counts{Counts: r.Counts, Pulled: pulled},
		ChangesTotal: len(r.Changes),
		ErrorsTotal:  len(r.Problems),
	}
	p.Changes = topN(r.Changes, lim.Changes, func(a, b mapping.Change) int {
		return cmp.Compare(changeRank(a.Kind), changeRank(b.Kind))
	})
	p.Errors = topN(r.Problems, lim.Errors, func(a, b mapping.Problem) int {
		return cmp.Compare(problemRank(a), problemRank(b))
	})
	counts := map[string]int{}
	for _, pr := range r.Problems {
		counts[pr.Code]++
	}
	for code, n := range counts {
		p.ErrorCodes = append(p.ErrorCodes, CodeCount{Code: code, Count: n})
	}
	slices.SortFunc(p.ErrorCodes, func(a, b CodeCount) int { return cmp.Compare(a.Code, b.Code) })
	return p
}

// Failed is the report of a provider whose pull failed: nothing changed, the reason is given.
func Failed(provider string, reason string) Provider {
	return Provider{Provider: provider, Failure: reason}
}

func problemRank(p mapping.Problem) int {
	if p.Code == mapping.CodeFallbackOwnerInvalid {
		return 0
	}
	return 1
}

// topN returns at most n items of s, ordered by rank and, within a rank, in their order in s. A
// negative n means no cap. s is not modified.
func topN[T any](s []T, n int, rank func(a, b T) int) []T {
	if n < 0 || n > len(s) {
		n = len(s)
	}
	if n == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.SortStableFunc(out, rank)
	return slices.Clip(out[:n])
}
