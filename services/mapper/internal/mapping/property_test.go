package mapping

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// randomInput builds a small tenant where emails collide often: few distinct emails in several
// spellings, users of every status and kind, and stored mappings that may be stale, duplicated or
// name users that no longer exist.
func randomInput(seed uint64) Input {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	emails := []string{"a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io", ""}
	spell := func() string {
		e := emails[r.IntN(len(emails))]
		switch r.IntN(4) {
		case 0:
			return strings.ToUpper(e)
		case 1:
			return " " + e + "\t"
		}
		return e
	}
	statuses := []PlatformStatus{PlatformActive, PlatformActive, PlatformActive, PlatformSuspended, PlatformDeleted}
	kinds := []PlatformKind{KindUser, KindUser, KindUser, KindExtension, KindCallDestination}
	in := Input{Provider: Salesforce, Now: now, Settings: Settings{RemapOnDeactivation: r.IntN(4) != 0, AutoProvisioning: r.IntN(2) == 0}}
	for i := range r.IntN(10) {
		u := pu(fmt.Sprintf("p%d", r.IntN(i+2)), spell()) // ids may repeat
		u.Status, u.Kind = statuses[r.IntN(len(statuses))], kinds[r.IntN(len(kinds))]
		if r.IntN(3) == 0 {
			u.TeamID = ""
		}
		in.PlatformUsers = append(in.PlatformUsers, u)
	}
	for i := range r.IntN(10) {
		u := cu(fmt.Sprintf("c%d", r.IntN(i+2)), spell())
		u.Active = r.IntN(3) != 0
		if r.IntN(6) == 0 {
			u.Kind = CRMKindQueue
		}
		in.CRMUsers = append(in.CRMUsers, u)
	}
	madeBy := []MadeBy{MadeByEmail, MadeByManual, MadeByRemapInactive, MadeByAutoProvisioned}
	status := []Status{StatusSynced, StatusConflict, StatusError, StatusPendingTeam}
	for range r.IntN(8) {
		m := mapped(fmt.Sprintf("p%d", r.IntN(10)), fmt.Sprintf("c%d", r.IntN(10)), spell(), madeBy[r.IntN(len(madeBy))])
		m.Status = status[r.IntN(len(status))]
		in.Mappings = append(in.Mappings, m)
	}
	for range r.IntN(3) {
		in.Pending = append(in.Pending, Provision{Provider: Salesforce, CRMUserID: fmt.Sprintf("c%d", r.IntN(10)), RequestedAt: t0})
	}
	if r.IntN(3) == 0 {
		in.Settings.FallbackOwnerID = fmt.Sprintf("c%d", r.IntN(10))
	}
	return in
}

// checkOneToOne fails when a platform user or a CRM user appears in two mappings.
func checkOneToOne(t *testing.T, what string, ms []Mapping) {
	t.Helper()
	byP, byC := map[string]string{}, map[string]string{}
	for _, m := range ms {
		if other, ok := byP[m.PlatformUserID]; ok {
			t.Errorf("%s: platform user %s mapped to %s and %s", what, m.PlatformUserID, other, m.CRMUserID)
		}
		if other, ok := byC[m.CRMUserID]; ok {
			t.Errorf("%s: CRM user %s mapped to %s and %s", what, m.CRMUserID, other, m.PlatformUserID)
		}
		byP[m.PlatformUserID], byC[m.CRMUserID] = m.CRMUserID, m.PlatformUserID
	}
}

// checkReconcile asserts the invariants of a Sync Users run.
func checkReconcile(t *testing.T, in Input) {
	t.Helper()
	r := Reconcile(in)
	checkOneToOne(t, "Reconcile", r.Mappings)

	known := map[string]bool{}
	for _, u := range in.PlatformUsers {
		known[u.ID] = true
	}
	stored := map[string]bool{}
	for _, m := range in.Mappings {
		stored[m.PlatformUserID] = true
	}
	platform := map[string]PlatformUser{}
	for _, u := range in.PlatformUsers {
		if _, ok := platform[u.ID]; !ok {
			platform[u.ID] = u
		}
	}
	crm := map[string]CRMUser{}
	for _, u := range in.CRMUsers {
		if _, ok := crm[u.ID]; !ok {
			crm[u.ID] = u
		}
	}
	// Sync Users never creates platform users: every platform user it names was given to it.
	for _, c := range r.Changes {
		if !known[c.PlatformUserID] && !stored[c.PlatformUserID] {
			t.Errorf("change names unknown platform user %q: %+v", c.PlatformUserID, c)
		}
		if c.Kind == ChangeCreated && !known[c.PlatformUserID] {
			t.Errorf("created a mapping for a platform user not in the input: %+v", c)
		}
	}
	for _, m := range r.Mappings {
		if !known[m.PlatformUserID] && !stored[m.PlatformUserID] {
			t.Errorf("mapping names unknown platform user: %+v", m)
		}
		p, pok := platform[m.PlatformUserID]
		c, cok := crm[m.CRMUserID]
		valid := pok && cok && p.Mappable() && c.Mappable()
		switch {
		case m.MadeBy == MadeByManual:
			if valid != (m.Status == StatusSynced) {
				t.Errorf("manual mapping status %s with valid=%v: %+v", m.Status, valid, m)
			}
		case !valid || !SameEmail(p.Email, c.Email):
			t.Errorf("Sync Users kept an invalid mapping: %+v", m)
		case m.MadeBy == MadeByRemapInactive && m.Status == StatusConflict:
			// Kept as a conflict only while several active CRM users have the email (rule 4).
			n := 0
			for _, u := range crm {
				if u.Mappable() && SameEmail(u.Email, p.Email) {
					n++
				}
			}
			if n < 2 {
				t.Errorf("Sync Users left a remap in conflict with %d active users of its email: %+v", n, m)
			}
		case m.Status != StatusSynced && m.Status != StatusPendingTeam:
			t.Errorf("Sync Users left a rule-made mapping in status %s: %+v", m.Status, m)
		}
	}

	// Counts agree with the lists.
	var want Counts
	for _, m := range r.Mappings {
		if m.Status == StatusSynced {
			want.Mapped++
		}
	}
	for _, c := range r.Changes {
		switch c.Kind {
		case ChangeCreated:
			want.Created++
		case ChangeRemapped:
			want.Remapped++
		case ChangeRemoved:
			want.Removed++
		}
	}
	for _, p := range r.Problems {
		if p.Conflict() {
			want.Conflicts++
		} else {
			want.Errors++
		}
		if p.Code == "" || p.Message == "" || p.Fix == "" {
			t.Errorf("problem without code, message or fix: %+v", p)
		}
	}
	mappedP, mappedC := map[string]bool{}, map[string]bool{}
	for _, m := range r.Mappings {
		mappedP[m.PlatformUserID], mappedC[m.CRMUserID] = true, true
	}
	for id, u := range platform {
		if u.Mappable() && !mappedP[id] {
			want.UnmappedPlatform++
		}
	}
	for id, u := range crm {
		if u.Mappable() && !mappedC[id] {
			want.UnmappedCRM++
		}
	}
	if diff := cmp.Diff(want, r.Counts); diff != "" {
		t.Errorf("counts disagree with the lists (-want +got):\n%s", diff)
	}

	// Sync Users reaches a fixed point: a second run over its own output changes nothing.
	again := in
	again.Mappings = r.Mappings
	again.Pending = r.Pending
	r2 := Reconcile(again)
	if len(r2.Changes) != 0 || len(r2.Upserts) != 0 || len(r2.Deletes) != 0 {
		t.Errorf("second run changed things: changes %+v upserts %+v deletes %+v", r2.Changes, r2.Upserts, r2.Deletes)
	}

	// The output does not depend on the order of the input.
	shuffled := in
	rr := rand.New(rand.NewPCG(uint64(len(in.PlatformUsers)), 7))
	shuffled.PlatformUsers = shuffle(rr, in.PlatformUsers)
	shuffled.CRMUsers = shuffle(rr, in.CRMUsers)
	shuffled.Mappings = shuffle(rr, in.Mappings)
	if !hasRepeatedIDs(in) {
		if diff := cmp.Diff(r, Reconcile(shuffled)); diff != "" {
			t.Errorf("result depends on input order (-in order +shuffled):\n%s", diff)
		}
	}

	// An event on any user, applied to the reconciled state, keeps one-to-one.
	for _, u := range in.PlatformUsers {
		d := Apply(again, Event{PlatformUserID: u.ID, PreviousEmail: "a@x.io"})
		checkOneToOne(t, "Apply platform "+u.ID, writeDelta(again.Mappings, d))
		checkChecked(t, d)
	}
	for _, u := range in.CRMUsers {
		d := Apply(again, Event{CRMUserID: u.ID, PreviousEmail: "b@x.io"})
		checkOneToOne(t, "Apply CRM "+u.ID, writeDelta(again.Mappings, d))
		checkChecked(t, d)
	}
	// And so do the admin's pins and unpins.
	for _, p := range in.PlatformUsers {
		for _, c := range in.CRMUsers {
			d, err := Pin(again, p.ID, c.ID)
			if err != nil {
				continue
			}
			after := writeDelta(again.Mappings, d)
			checkOneToOne(t, "Pin "+p.ID+" "+c.ID, after)
			checkChecked(t, d)
			if !slices.ContainsFunc(after, func(m Mapping) bool {
				return m.PlatformUserID == p.ID && m.CRMUserID == c.ID && m.MadeBy == MadeByManual && m.Status == StatusSynced
			}) {
				t.Errorf("Pin %s %s: the pin is not in the mappings after it: %+v", p.ID, c.ID, after)
			}
		}
		d := Unpin(again, p.ID)
		checkChecked(t, d)
		if after := writeDelta(again.Mappings, d); slices.ContainsFunc(after, func(m Mapping) bool { return m.PlatformUserID == p.ID }) {
			t.Errorf("Unpin %s left a mapping: %+v", p.ID, after)
		}
	}
	// And so does an event applied to a state Sync Users has not cleaned.
	for _, u := range in.CRMUsers {
		d := Apply(in, Event{CRMUserID: u.ID})
		checkOneToOne(t, "Apply on raw state, CRM "+u.ID, writeDelta(dedupeForStore(in.Mappings), d))
	}
}

// checkChecked fails when a Delta lists a problem or writes a mapping of a user it does not list as
// checked: a store replacing problems per checked user would then keep stale ones.
func checkChecked(t *testing.T, d Delta) {
	t.Helper()
	p, c := map[string]bool{}, map[string]bool{}
	for _, id := range d.CheckedPlatformUsers {
		p[id] = true
	}
	for _, id := range d.CheckedCRMUsers {
		c[id] = true
	}
	for _, pr := range d.Problems {
		if (pr.PlatformUserID == "" || !p[pr.PlatformUserID]) && (pr.CRMUserID == "" || !c[pr.CRMUserID]) {
			t.Errorf("problem of users not listed as checked %v %v: %+v", d.CheckedPlatformUsers, d.CheckedCRMUsers, pr)
		}
	}
	for _, m := range append(append([]Mapping(nil), d.Upserts...), d.Deletes...) {
		if !p[m.PlatformUserID] || !c[m.CRMUserID] {
			t.Errorf("mapping written for users not listed as checked: %+v", m)
		}
	}
}

// dedupeForStore keeps what a store with unique indexes on both sides could hold: the first mapping
// per platform user and per CRM user.
func dedupeForStore(ms []Mapping) []Mapping {
	p, c := map[string]bool{}, map[string]bool{}
	var out []Mapping
	for _, m := range ms {
		if p[m.PlatformUserID] || c[m.CRMUserID] {
			continue
		}
		p[m.PlatformUserID], c[m.CRMUserID] = true, true
		out = append(out, m)
	}
	return out
}

func shuffle[T any](r *rand.Rand, s []T) []T {
	out := append([]T(nil), s...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// hasRepeatedIDs reports inputs where "the first user with an id stands" makes order matter, or
// where two stored mappings are identical up to their order.
func hasRepeatedIDs(in Input) bool {
	seen := map[string]bool{}
	for _, u := range in.PlatformUsers {
		if seen["p"+u.ID] {
			return true
		}
		seen["p"+u.ID] = true
	}
	for _, u := range in.CRMUsers {
		if seen["c"+u.ID] {
			return true
		}
		seen["c"+u.ID] = true
	}
	for _, m := range in.Mappings {
		k := "m" + m.PlatformUserID + "|" + m.CRMUserID
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

// TestOneToOneAlwaysHolds runs the invariants over thousands of random tenants.
func TestOneToOneAlwaysHolds(t *testing.T) {
	for seed := range uint64(3000) {
		in := randomInput(seed)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkReconcile(t, in) })
		if t.Failed() {
			return
		}
	}
}

func FuzzReconcile(f *testing.F) {
	for _, s := range []uint64{0, 1, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { checkReconcile(t, randomInput(seed)) })
}
