package mapping

import (
	"slices"
	"time"
)

var (
	t0  = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	now = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
)

// pu is an active platform person.
func pu(id, email string) PlatformUser {
	return PlatformUser{ID: id, Email: email, FirstName: "F" + id, LastName: "L" + id, Status: PlatformActive, Kind: KindUser, TeamID: "team1"}
}

func withStatus(u PlatformUser, s PlatformStatus) PlatformUser { u.Status = s; return u }
func withKind(u PlatformUser, k PlatformKind) PlatformUser     { u.Kind = k; return u }
func withTeam(u PlatformUser, team string) PlatformUser        { u.TeamID = team; return u }

// cu is an active CRM person.
func cu(id, email string) CRMUser {
	return CRMUser{ID: id, Email: email, FirstName: "F" + id, LastName: "L" + id, Active: true, Kind: CRMKindUser}
}

func inactive(u CRMUser) CRMUser { u.Active = false; return u }
func queue(u CRMUser) CRMUser    { u.Kind = CRMKindQueue; return u }

// mapped is a stored synced mapping.
func mapped(p, c, email string, by MadeBy) Mapping {
	return Mapping{Provider: Salesforce, PlatformUserID: p, CRMUserID: c, Email: email, Status: StatusSynced, MadeBy: by, CreatedAt: t0, UpdatedAt: t0}
}

func withMappingStatus(m Mapping, s Status, reason string) Mapping {
	m.Status, m.Reason = s, reason
	return m
}

// mp, ch and pr are the parts of mappings, changes and problems the rule tables compare.
type mp struct {
	P, C, Prev string
	Status     Status
	MadeBy     MadeBy
}

type ch struct {
	Kind       ChangeKind
	P, C, Prev string
	Reason     string
}

type pr struct {
	Code string
	P, C string
}

func mps(ms []Mapping) []mp {
	var out []mp
	for _, m := range ms {
		out = append(out, mp{P: m.PlatformUserID, C: m.CRMUserID, Prev: m.PreviousCRMUserID, Status: m.Status, MadeBy: m.MadeBy})
	}
	return out
}

func chs(cs []Change) []ch {
	var out []ch
	for _, c := range cs {
		out = append(out, ch{Kind: c.Kind, P: c.PlatformUserID, C: c.CRMUserID, Prev: c.PreviousCRMUserID, Reason: c.Reason})
	}
	return out
}

func prs(ps []Problem) []pr {
	var out []pr
	for _, p := range ps {
		out = append(out, pr{Code: p.Code, P: p.PlatformUserID, C: p.CRMUserID})
	}
	return out
}

// outcome is what a rule table checks of a Reconcile or Apply.
type outcome struct {
	Mappings []mp
	Changes  []ch
	Problems []pr
}

func reconcileOutcome(in Input) outcome {
	r := Reconcile(in)
	return outcome{Mappings: mps(r.Mappings), Changes: chs(r.Changes), Problems: prs(r.Problems)}
}

// applyOutcome applies the event and reports the mappings after writing the delta.
func applyOutcome(in Input, ev Event) outcome {
	d := Apply(in, ev)
	return outcome{Mappings: mps(writeDelta(in.Mappings, d)), Changes: chs(d.Changes), Problems: prs(d.Problems)}
}

// writeDelta does what the store does with a Delta: delete, then upsert keyed by platform user.
func writeDelta(stored []Mapping, d Delta) []Mapping {
	byP := map[string]Mapping{}
	var order []string
	for _, m := range stored {
		if _, ok := byP[m.PlatformUserID]; !ok {
			order = append(order, m.PlatformUserID)
		}
		byP[m.PlatformUserID] = m
	}
	for _, m := range d.Deletes {
		if cur, ok := byP[m.PlatformUserID]; ok && cur.CRMUserID == m.CRMUserID {
			delete(byP, m.PlatformUserID)
		}
	}
	for _, m := range d.Upserts {
		if _, ok := byP[m.PlatformUserID]; !ok {
			order = append(order, m.PlatformUserID)
		}
		byP[m.PlatformUserID] = m
	}
	var out []Mapping
	seen := map[string]bool{}
	for _, id := range order {
		if m, ok := byP[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, m)
		}
	}
	slices.SortFunc(out, byPlatformUser)
	return out
}

func sf(platform []PlatformUser, crm []CRMUser, ms ...Mapping) Input {
	return Input{Provider: Salesforce, PlatformUsers: platform, CRMUsers: crm, Mappings: ms, Settings: DefaultSettings(), Now: now}
}

func withPrev(m Mapping, prev string) Mapping { m.PreviousCRMUserID = prev; return m }
