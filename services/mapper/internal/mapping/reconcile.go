package mapping

import (
	"cmp"
	"github.com/ownersync/ownersync/libs/provider"
	"slices"
	"strings"
	"time"
)

// Input is what the rules look at for one tenant and one provider. For Reconcile it holds every
// user; for Apply it may hold only the neighbourhood of the touched user (see Apply).
type Input struct {
	Provider      provider.Provider
	PlatformUsers []PlatformUser
	CRMUsers      []CRMUser
	// Mappings are the existing mappings of this provider, manual pins (MadeBy manual) included.
	Mappings []Mapping
	// Pending are the outstanding auto-provisioning requests of this provider (rule 7).
	Pending  []Provision
	Settings Settings
	Now      time.Time
}

// Result is the outcome of a Sync Users run for one provider.
type Result struct {
	// Mappings is the complete new mapping set, sorted by platform user id.
	Mappings []Mapping
	// Upserts are the mappings that are new or differ from the stored ones, sorted by platform user id.
	Upserts []Mapping
	// Deletes are the stored mappings that are removed, as they were, sorted by platform user id.
	Deletes []Mapping
	// Changes lists every change with its reason, sorted by platform user id.
	Changes []Change
	// Problems lists what the admin must see, platform-side problems first (by platform user id),
	// then CRM-side ones (by CRM user id).
	Problems []Problem
	// Pending are the provisioning requests still outstanding (their CRM user is active and unmapped).
	Pending []Provision
	// NotMappable lists the active CRM users who are not people and no mapping holds, by CRM user id.
	NotMappable []NotMappable
	Counts      Counts
}

// Reconcile runs the full rule set (docs/architecture.md#mapping-rules, rules 1–6 and 8) over every
// user of one tenant and provider, as Sync Users does. Existing mappings are checked and kept,
// remapped (rule 4) or removed with the reason (rule 5); manual pins are kept and turn to error
// when invalid (rule 3); then every mappable platform user left without a mapping is matched by
// email (rules 1 and 2). Reconcile never creates platform users and never maps a user twice. The
// output does not depend on the order of the input slices.
func Reconcile(in Input) Result {
	e := newEngine(&in, nil)
	e.run()
	e.sortOut()
	slices.SortFunc(e.upserts, byPlatformUser)
	slices.SortFunc(e.deletes, byPlatformUser)
	e.sortChanges()
	r := Result{
		Mappings: e.out,
		Upserts:  e.upserts,
		Deletes:  e.deletes,
		Changes:  e.changes,
		Problems: e.problems,
		Pending:  e.remainingPending(),
	}
	r.NotMappable = e.notMappable()
	r.Counts = e.counts()
	r.Counts.NotMappable = len(r.NotMappable)
	return r
}

func byPlatformUser(a, b Mapping) int {
	if c := strings.Compare(a.PlatformUserID, b.PlatformUserID); c != 0 {
		return c
	}
	return strings.Compare(a.CRMUserID, b.CRMUserID)
}

// slot gathers the users of one side that share one normalised email.
type slot struct {
	// n counts mappable users (active persons); first and second are the two with the smallest ids.
	n             int32
	first, second int32
	// other is the user of kind user with this email who is not active and has the smallest id, or none.
	other int32
}

var emptySlot = slot{first: none, second: none, other: none}

// emailSlots are both sides' slots of one email.
type emailSlots struct{ p, c slot }

const (
	none   = -1
	orphan = -2 // claimed by a mapping whose platform user is not in the input
)

// engine carries one evaluation. Users are int32 positions in the input slices, which keeps the
// per-user state in flat slices; maps are used only to find a user by id or email.
type engine struct {
	in    *Input
	scope *scope // nil for Sync Users

	pEmail, cEmail []string
	// pDup and cDup mark a user whose id an earlier user already has; the first one stands.
	pDup, cDup   []bool
	pByID, cByID map[string]int32
	emails       map[string]int32 // normalised email → position in slots
	slots        []emailSlots
	pending      map[string]int

	pMap   []int32 // platform user → position in out, or none
	cOwner []int32 // CRM user → platform user that holds it, orphan, or none

	out      []Mapping
	upserts  []Mapping
	deletes  []Mapping
	changes  []Change
	problems []Problem
	remaps   []remap
	// orphanOut counts kept mappings whose platform user is not in the input.
	orphanOut int
}

type remap struct {
	old Mapping
	pi  int32
	ci  int32
}

func newEngine(in *Input, sc *scope) *engine {
	np, nc := len(in.PlatformUsers), len(in.CRMUsers)
	e := &engine{
		in:     in,
		scope:  sc,
		pDup:   make([]bool, np),
		cDup:   make([]bool, nc),
		pByID:  make(map[string]int32, np),
		cByID:  make(map[string]int32, nc),
		emails: make(map[string]int32, max(np, nc)),
		slots:  make([]emailSlots, 0, max(np, nc)),
		pMap:   make([]int32, np),
		cOwner: make([]int32, nc),
	}
	e.pEmail = normalizeAll(np, func(i int) string { return in.PlatformUsers[i].Email })
	e.cEmail = normalizeAll(nc, func(i int) string { return in.CRMUsers[i].Email })
	pid := func(i int32) string { return in.PlatformUsers[i].ID }
	cid := func(i int32) string { return in.CRMUsers[i].ID }
	for i := range in.PlatformUsers {
		u := &in.PlatformUsers[i]
		e.pMap[i] = none
		em := e.pEmail[i]
		if _, dup := e.pByID[u.ID]; dup {
			e.pDup[i] = true
			continue
		}
		e.pByID[u.ID] = int32(i)
		if em == "" || u.Kind != KindUser {
			continue
		}
		addToSlot(&e.slotsOf(em).p, int32(i), u.Status == PlatformActive, pid)
	}
	for i := range in.CRMUsers {
		u := &in.CRMUsers[i]
		e.cOwner[i] = none
		em := e.cEmail[i]
		if _, dup := e.cByID[u.ID]; dup {
			e.cDup[i] = true
			continue
		}
		e.cByID[u.ID] = int32(i)
		if em == "" || u.Kind != CRMKindUser || u.NotPersonReason() != "" {
			continue // queues and users who are not people are never matched by email
		}
		addToSlot(&e.slotsOf(em).c, int32(i), u.Active, cid)
	}
	if len(in.Pending) > 0 {
		e.pending = make(map[string]int, len(in.Pending))
		for i, p := range in.Pending {
			e.pending[p.CRMUserID] = i
		}
	}
	return e
}

// normalizeAll returns NormalizeEmail of n emails. Emails already trimmed and lower-case cost
// nothing; those with ASCII capitals are lowered into one shared buffer, so a tenant whose emails
// are spelled with capitals costs one allocation, not one per user.
func normalizeAll(n int, email func(int) string) []string {
	out := make([]string, n)
	var upper []int32
	total := 0
	for i := range n {
		t := strings.TrimSpace(email(i))
		out[i] = t
		switch asciiCase(t) {
		case hasUpper:
			upper = append(upper, int32(i))
			total += len(t)
		case notASCII:
			out[i] = strings.ToLower(t)
		}
	}
	if len(upper) == 0 {
		return out
	}
	var b strings.Builder
	b.Grow(total)
	for _, i := range upper {
		for _, c := range []byte(out[i]) {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		}
	}
	arena, off := b.String(), 0
	for _, i := range upper {
		l := len(out[i])
		out[i] = arena[off : off+l]
		off += l
	}
	return out
}

const (
	lowerASCII = iota
	hasUpper
	notASCII
)

func asciiCase(s string) int {
	c := lowerASCII
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 0x80:
			return notASCII
		case 'A' <= b && b <= 'Z':
			c = hasUpper
		}
	}
	return c
}

// slotsOf returns the slots of a normalised email, adding them when new.
func (e *engine) slotsOf(email string) *emailSlots {
	k, ok := e.emails[email]
	if !ok {
		k = int32(len(e.slots))
		e.emails[email] = k
		e.slots = append(e.slots, emailSlots{p: emptySlot, c: emptySlot})
	}
	return &e.slots[k]
}

// addToSlot adds user i to s. first, second and other keep the smallest ids, so messages do not
// depend on input order.
func addToSlot(s *slot, i int32, mappable bool, id func(int32) string) {
	if !mappable {
		if s.other == none || id(i) < id(s.other) {
			s.other = i
		}
		return
	}
	switch {
	case s.first == none:
		s.first = i
	case id(i) < id(s.first):
		s.first, s.second = i, s.first
	case s.second == none || id(i) < id(s.second):
		s.second = i
	}
	s.n++
}

// lookup returns both sides' slots of a normalised email.
func (e *engine) lookup(email string) emailSlots {
	if k, ok := e.emails[email]; ok {
		return e.slots[k]
	}
	return emailSlots{p: emptySlot, c: emptySlot}
}

func (e *engine) platformIndex(id string) int32 {
	if i, ok := e.pByID[id]; ok {
		return i
	}
	return none
}

func (e *engine) crmIndex(id string) int32 {
	if i, ok := e.cByID[id]; ok {
		return i
	}
	return none
}

func (e *engine) run() {
	ms := e.in.Mappings
	e.out = make([]Mapping, 0, len(ms)+len(e.in.PlatformUsers)/8)
	mPI, mCI, kept := e.dedupe()
	for _, mi := range kept {
		m, pi, ci := ms[mi], mPI[mi], mCI[mi]
		if e.scope != nil && !e.scope.covers(m) {
			e.keepAsIs(m, pi, ci)
			continue
		}
		e.judge(m, pi, ci)
	}
	e.applyRemaps()
	e.match()
	e.crmProblems()
	e.fallbackProblem()
}

// dedupe finds each existing mapping's users and returns the positions of the mappings that survive
// rule 2, in input order: one per platform user and one per CRM user. A manual pin beats any other
// mapping; otherwise the smaller id wins, so the choice does not depend on input order. Losers are
// deleted.
func (e *engine) dedupe() (mPI, mCI, kept []int32) {
	ms := e.in.Mappings
	mPI, mCI = make([]int32, len(ms)), make([]int32, len(ms))
	bestP := make([]int32, len(e.in.PlatformUsers))
	bestC := make([]int32, len(e.in.CRMUsers))
	for i := range bestP {
		bestP[i] = none
	}
	for i := range bestC {
		bestC[i] = none
	}
	orphanP, orphanC := bestByID{}, bestByID{}
	for i := range ms {
		mPI[i], mCI[i] = e.platformIndex(ms[i].PlatformUserID), e.crmIndex(ms[i].CRMUserID)
		j := getBest(mPI[i], ms[i].PlatformUserID, bestP, orphanP)
		switch {
		case j == none:
			setBest(mPI[i], ms[i].PlatformUserID, bestP, orphanP, int32(i))
		case beats(&ms[i], &ms[j], ms[i].CRMUserID, ms[j].CRMUserID):
			e.drop(ms[j], reasonDuplicatePlatform)
			setBest(mPI[i], ms[i].PlatformUserID, bestP, orphanP, int32(i))
		default:
			e.drop(ms[i], reasonDuplicatePlatform)
		}
	}
	winsP := func(i int) bool { return getBest(mPI[i], ms[i].PlatformUserID, bestP, orphanP) == int32(i) }
	for i := range ms {
		if !winsP(i) {
			continue
		}
		j := getBest(mCI[i], ms[i].CRMUserID, bestC, orphanC)
		switch {
		case j == none:
			setBest(mCI[i], ms[i].CRMUserID, bestC, orphanC, int32(i))
		case beats(&ms[i], &ms[j], ms[i].PlatformUserID, ms[j].PlatformUserID):
			e.drop(ms[j], reasonDuplicateCRM)
			setBest(mCI[i], ms[i].CRMUserID, bestC, orphanC, int32(i))
		default:
			e.drop(ms[i], reasonDuplicateCRM)
		}
	}
	kept = make([]int32, 0, len(ms))
	for i := range ms {
		if winsP(i) && getBest(mCI[i], ms[i].CRMUserID, bestC, orphanC) == int32(i) {
			kept = append(kept, int32(i))
		}
	}
	return mPI, mCI, kept
}

// bestByID holds the best mapping so far for users absent from the input, by id.
type bestByID map[string]int32

// getBest returns the best mapping so far for a user: by position when the user is in the input,
// else by id.
func getBest(pos int32, id string, byPos []int32, byID bestByID) int32 {
	if pos != none {
		return byPos[pos]
	}
	if v, ok := byID[id]; ok {
		return v
	}
	return none
}

func setBest(pos int32, id string, byPos []int32, byID bestByID, v int32) {
	if pos != none {
		byPos[pos] = v
		return
	}
	byID[id] = v
}

func beats(a, b *Mapping, ka, kb string) bool {
	am, bm := a.MadeBy == MadeByManual, b.MadeBy == MadeByManual
	if am != bm {
		return am
	}
	return ka < kb
}

// drop deletes a stored mapping with the reason.
func (e *engine) drop(m Mapping, reason string) {
	e.deletes = append(e.deletes, m)
	e.changes = append(e.changes, e.change(ChangeRemoved, m, reason))
}

// claim records the kept mapping m for platform user pi and CRM user ci.
func (e *engine) claim(m Mapping, pi, ci int32) {
	if pi != none {
		e.pMap[pi] = int32(len(e.out))
	} else {
		e.orphanOut++
	}
	// A CRM user absent from the input needs no claim: only users in the input are ever matched.
	switch {
	case ci != none && pi != none:
		e.cOwner[ci] = pi
	case ci != none:
		e.cOwner[ci] = orphan
	}
	e.out = append(e.out, m)
}

func (e *engine) keepAsIs(m Mapping, pi, ci int32) {
	m.Provider = e.provider(m)
	e.claim(m, pi, ci)
}

func (e *engine) provider(m Mapping) provider.Provider {
	if e.in.Provider != "" {
		return e.in.Provider
	}
	return m.Provider
}

// keep stores m as the mapping's new state, recording an upsert and a change when it differs from
// the stored old one.
func (e *engine) keep(old, m Mapping, pi, ci int32) {
	m.Provider = e.provider(old)
	if m != old {
		m.UpdatedAt = e.in.Now
		e.upserts = append(e.upserts, m)
		if kind, ok := statusChange(old, m); ok {
			reason := m.Reason
			if kind == ChangeResolved {
				reason = reasonResolved
			}
			e.changes = append(e.changes, e.change(kind, m, reason))
		}
	}
	e.claim(m, pi, ci)
}

// statusChange says which change a kept mapping went through, if its status or reason moved.
func statusChange(old, m Mapping) (ChangeKind, bool) {
	if old.Status == m.Status && old.Reason == m.Reason {
		return "", false
	}
	switch m.Status {
	case StatusConflict:
		return ChangeConflict, true
	case StatusError:
		return ChangeError, true
	case StatusSynced:
		if old.Status != StatusSynced {
			return ChangeResolved, true
		}
	}
	return "", false
}

func (e *engine) change(kind ChangeKind, m Mapping, reason string) Change {
	c := Change{
		Kind:              kind,
		Provider:          e.provider(m),
		PlatformUserID:    m.PlatformUserID,
		CRMUserID:         m.CRMUserID,
		PreviousCRMUserID: m.PreviousCRMUserID,
		Email:             m.Email,
		Status:            m.Status,
		MadeBy:            m.MadeBy,
		Reason:            reason,
	}
	if pi := e.platformIndex(m.PlatformUserID); pi != none {
		c.Name = e.in.PlatformUsers[pi].Name()
	}
	return c
}

// problem records a problem, naming the user it is about: the platform user's name, else the CRM
// user's.
func (e *engine) problem(p Problem) {
	p.Provider = e.in.Provider
	if p.PlatformUserID != "" {
		if pi := e.platformIndex(p.PlatformUserID); pi != none {
			p.Name = e.in.PlatformUsers[pi].Name()
		}
	}
	if p.Name == "" && p.CRMUserID != "" {
		if ci := e.crmIndex(p.CRMUserID); ci != none {
			p.Name = e.in.CRMUsers[ci].Name()
		}
	}
	e.problems = append(e.problems, p)
}

// defect is what is wrong with an existing mapping.
type defect struct {
	code   string
	reason string
	// crmInactive marks the one defect rule 4 can repair.
	crmInactive bool
	// emailChanged marks a mismatch of emails, a conflict between runs.
	emailChanged bool
	// ambiguousRemap marks a remap_inactive mapping whose email several active CRM users have
	// now: a conflict kept, between runs and in Sync Users, until the admin chooses.
	ambiguousRemap bool
}

// inspect returns what, if anything, is wrong with mapping m (rule 5). Manual pins skip the email
// comparison: they exist because emails differ.
func (e *engine) inspect(m Mapping, pi, ci int32) (defect, bool) {
	if pi == none {
		return defect{code: CodePlatformUserNotFound, reason: reasonPlatformNotFound}, true
	}
	p := &e.in.PlatformUsers[pi]
	switch {
	case p.Status == PlatformDeleted:
		return defect{code: CodePlatformUserInactive, reason: reasonPlatformDeleted}, true
	case p.Status != PlatformActive:
		return defect{code: CodePlatformUserInactive, reason: reasonPlatformSuspended}, true
	case p.Kind == KindExtension:
		return defect{code: CodePlatformUserNotPerson, reason: reasonExtension}, true
	case p.Kind == KindCallDestination:
		return defect{code: CodePlatformUserNotPerson, reason: reasonCallDestination}, true
	case p.Kind != KindUser:
		return defect{code: CodePlatformUserNotPerson, reason: reasonNotPerson}, true
	}
	if ci == none {
		return defect{code: CodeCRMUserNotFound, reason: e.crmNotFoundReason()}, true
	}
	c := &e.in.CRMUsers[ci]
	if c.Kind != CRMKindUser {
		return defect{code: CodeCRMUserQueue, reason: reasonQueue}, true
	}
	if !c.Active {
		return defect{code: CodeCRMUserInactive, reason: e.crmInactiveReason(), crmInactive: true}, true
	}
	if m.MadeBy != MadeByManual && e.cEmail[ci] != e.pEmail[pi] {
		return defect{
			code:         CodeMappingConflict,
			reason:       emailChangedReason(c.Email, p.Email),
			emailChanged: true,
		}, true
	}
	// Rule 4 moved the mapping when one active user had the email; events can arrive out of order
	// (a second new user after the deactivation), so the choice is checked again: with several
	// active users of the email now, rule 2 forbids keeping an automatic choice among them.
	if m.MadeBy == MadeByRemapInactive {
		if n := e.lookup(e.pEmail[pi]).c.n; n >= 2 {
			return defect{code: CodeMappingConflict, reason: remapNowAmbiguousReason(int(n)), ambiguousRemap: true}, true
		}
	}
	return defect{}, false
}

// judge applies rules 3, 4 and 5 to one existing mapping.
func (e *engine) judge(old Mapping, pi, ci int32) {
	m := old
	if pi != none {
		m.Email = strings.TrimSpace(e.in.PlatformUsers[pi].Email)
	}
	d, bad := e.inspect(old, pi, ci)
	if !bad {
		m.Status, m.Reason = StatusSynced, ""
		if m.MadeBy == MadeByAutoProvisioned && e.in.PlatformUsers[pi].TeamID == "" {
			m.Status, m.Reason = StatusPendingTeam, reasonPendingTeam
		}
		e.keep(old, m, pi, ci)
		return
	}
	if m.MadeBy == MadeByManual {
		// Rule 3: a manual pin is never removed by the rules; it turns to error.
		m.Status, m.Reason = StatusError, d.reason
		e.keep(old, m, pi, ci)
		e.mappingProblem(m, d, true)
		return
	}
	if d.ambiguousRemap {
		m.Status, m.Reason = StatusConflict, d.reason
		e.keep(old, m, pi, ci)
		e.mappingProblem(m, d, false)
		return
	}
	if d.crmInactive {
		s := e.lookup(e.pEmail[pi]).c
		if e.in.Settings.RemapOnDeactivation && s.n == 1 {
			e.remaps = append(e.remaps, remap{old: old, pi: pi, ci: s.first})
			return
		}
		if e.scope != nil {
			// Between runs: hold the mapping, flagged, until Sync Users resolves it.
			m.Status, m.Reason = StatusError, d.reason
			if s.n >= 2 && e.in.Settings.RemapOnDeactivation {
				m.Status, m.Reason = StatusConflict, ambiguousRemapReason(int(s.n))
				d.code = CodeMappingConflict
			}
			e.keep(old, m, pi, ci)
			e.mappingProblem(m, d, false)
			return
		}
		e.drop(old, d.reason)
		return
	}
	if e.scope != nil {
		m.Status, m.Reason = StatusError, d.reason
		if d.emailChanged {
			m.Status = StatusConflict
		}
		e.keep(old, m, pi, ci)
		e.mappingProblem(m, d, false)
		return
	}
	e.drop(old, d.reason)
}

// applyRemaps moves mappings whose CRM user was deactivated to the one other active CRM user with
// the same email (rule 4), once every kept mapping has claimed its CRM user, so a remap never takes
// a user someone else holds.
func (e *engine) applyRemaps() {
	slices.SortFunc(e.remaps, func(a, b remap) int { return strings.Compare(a.old.PlatformUserID, b.old.PlatformUserID) })
	for _, r := range e.remaps {
		c := &e.in.CRMUsers[r.ci]
		if e.cOwner[r.ci] != none {
			reason := remapTakenReason(c.ID)
			if e.scope != nil {
				m := r.old
				m.Status, m.Reason = StatusError, reason
				e.keep(r.old, m, r.pi, e.crmIndex(r.old.CRMUserID))
				e.mappingProblem(m, defect{code: CodeCRMUserInactive, reason: reason}, false)
				continue
			}
			e.drop(r.old, reason)
			continue
		}
		m := r.old
		m.Provider = e.provider(r.old)
		m.PreviousCRMUserID = r.old.CRMUserID
		m.CRMUserID = c.ID
		m.MadeBy = MadeByRemapInactive
		m.Status, m.Reason = StatusSynced, ""
		m.Email = strings.TrimSpace(e.in.PlatformUsers[r.pi].Email)
		m.UpdatedAt = e.in.Now
		e.upserts = append(e.upserts, m)
		e.changes = append(e.changes, e.change(ChangeRemapped, m, remapReason(r.old.CRMUserID, c.ID)))
		e.claim(m, r.pi, r.ci)
	}
}

// match maps every mappable platform user left without a mapping to the one active CRM user with
// the same email, when neither side's email is shared (rules 1 and 2).
func (e *engine) match() {
	if e.scope == nil {
		// At most one problem per unmapped platform user: grow once instead of doubling.
		n := 0
		for i := range e.in.PlatformUsers {
			if e.pMap[i] == none && !e.pDup[i] && e.in.PlatformUsers[i].Mappable() {
				n++
			}
		}
		e.problems = slices.Grow(e.problems, n)
	}
	for i := range e.in.PlatformUsers {
		pi := int32(i)
		if e.pMap[pi] != none {
			continue
		}
		p := &e.in.PlatformUsers[pi]
		if !p.Mappable() {
			continue
		}
		if e.pDup[pi] {
			continue // a repeated platform user id; the first one stands
		}
		email := e.pEmail[pi]
		if e.scope != nil && !e.scope.coversPlatform(p.ID, email) {
			continue
		}
		if email == "" {
			e.problem(Problem{
				Code: CodeMissingEmail, PlatformUserID: p.ID,
				Message: "the platform user has no email, so it cannot be matched",
				Fix:     "add the user's email on the platform, or map the user manually",
			})
			continue
		}
		both := e.lookup(email)
		ps, cs := both.p, both.c
		if ps.n >= 2 {
			e.problem(Problem{
				Code: CodeEmailConflict, PlatformUserID: p.ID, Email: email,
				Message: platformDuplicateMessage(e, ps),
				Fix:     "give each platform user a distinct email, or map them manually",
			})
			continue
		}
		switch {
		case cs.n == 0 && cs.other != none:
			c := &e.in.CRMUsers[cs.other]
			e.problem(Problem{
				Code: CodeCRMUserInactive, PlatformUserID: p.ID, CRMUserID: c.ID, Email: email,
				Message: "the " + e.crmWord() + " with this email is " + e.inactiveWord(),
				Fix:     "reactivate the " + e.crmWord() + ", or map the platform user manually to an active one",
			})
			continue
		case cs.n == 0:
			e.problem(Problem{
				Code: CodeCRMUserNotFound, PlatformUserID: p.ID, Email: email,
				Message: "no active " + e.crmWord() + " has this email",
				Fix:     "create the " + e.crmWord() + " with this email, or map the platform user manually",
			})
			continue
		case cs.n >= 2:
			e.problem(Problem{
				Code: CodeAmbiguousEmail, PlatformUserID: p.ID, Email: email,
				Message: crmDuplicateMessage(e, cs),
				Fix:     "deactivate or change the email of all but one of them, or map the platform user manually",
			})
			continue
		}
		ci := cs.first
		c := &e.in.CRMUsers[ci]
		if owner := e.cOwner[ci]; owner != none {
			msg := "the " + e.crmWord() + " with this email is mapped to another platform user"
			if owner >= 0 {
				msg += " (" + e.in.PlatformUsers[owner].ID + ")"
			}
			e.problem(Problem{
				Code: CodeCRMUserMappedElsewhere, PlatformUserID: p.ID, CRMUserID: c.ID, Email: email,
				Message: msg,
				Fix:     "unmap the other platform user, or map this one manually",
			})
			continue
		}
		m := Mapping{
			Provider:       e.in.Provider,
			PlatformUserID: p.ID,
			CRMUserID:      c.ID,
			Email:          strings.TrimSpace(p.Email),
			Status:         StatusSynced,
			MadeBy:         MadeByEmail,
			CreatedAt:      e.in.Now,
			UpdatedAt:      e.in.Now,
		}
		reason := reasonEmailMatch
		if _, ok := e.pending[c.ID]; ok {
			m.MadeBy = MadeByAutoProvisioned
			reason = reasonProvisioned
			if p.TeamID == "" {
				m.Status, m.Reason = StatusPendingTeam, reasonPendingTeam
			}
		}
		e.upserts = append(e.upserts, m)
		e.changes = append(e.changes, e.change(ChangeCreated, m, reason))
		e.claim(m, pi, ci)
	}
}

// crmProblems lists the active CRM users left unmapped (rule 6): those whom no platform user
// matches, and those whose email another active CRM user shares (rule 2). Any other CRM user whose
// email a mappable platform user shares is covered by that platform user's problem.
func (e *engine) crmProblems() {
	if e.scope == nil {
		// At most one problem per unmapped CRM user: grow once instead of doubling.
		n := 0
		for i := range e.in.CRMUsers {
			if e.cOwner[i] == none && !e.cDup[i] && e.in.CRMUsers[i].Mappable() {
				n++
			}
		}
		e.problems = slices.Grow(e.problems, n)
	}
	for i := range e.in.CRMUsers {
		ci := int32(i)
		c := &e.in.CRMUsers[ci]
		if e.cOwner[ci] != none || !c.Mappable() || e.cDup[ci] {
			continue
		}
		if e.scope != nil && !e.scope.coversCRM(c.ID) {
			continue
		}
		if _, ok := e.pending[c.ID]; ok {
			continue // listed as pending_team
		}
		email := e.cEmail[ci]
		if email == "" {
			e.problem(Problem{
				Code: CodeMissingEmail, CRMUserID: c.ID,
				Message: "the " + e.crmWord() + " has no email, so it cannot be matched",
				Fix:     "add the email in the CRM, or map a platform user to it manually",
			})
			continue
		}
		both := e.lookup(email)
		ps, cs := both.p, both.c
		switch {
		case ps.n > 0 && cs.n >= 2:
			// Rule 2 lists both sides of an ambiguous email: the platform user (in match) and
			// every active CRM user sharing it.
			e.problem(Problem{
				Code: CodeAmbiguousEmail, CRMUserID: c.ID, Email: email,
				Message: crmDuplicateMessage(e, cs) + "; platform user " + e.in.PlatformUsers[ps.first].ID + " has it too",
				Fix:     "deactivate or change the email of all but one of them, or map the platform user manually",
			})
			continue
		case ps.n == 1 && e.pMap[ps.first] != none:
			p := &e.in.PlatformUsers[ps.first]
			e.problem(Problem{
				Code: CodePlatformUserMappedElsewhere, PlatformUserID: "", CRMUserID: c.ID, Email: email,
				Message: "the platform user with this email (" + p.ID + ") is mapped to another " + e.crmWord(),
				Fix:     "if this " + e.crmWord() + " should be that user's, map the user manually to it; otherwise deactivate it",
			})
			continue
		case ps.n >= 2:
			// Rule 2 lists both sides of a shared email: the platform users (in match) and the
			// CRM user they would both match, as a conflict with the reason.
			e.problem(Problem{
				Code: CodeEmailConflict, CRMUserID: c.ID, Email: email,
				Message: platformDuplicateMessage(e, ps) + ", so this " + e.crmWord() + " is matched to none of them",
				Fix:     "give each platform user a distinct email, or map one of them manually to this " + e.crmWord(),
			})
			continue
		case ps.n > 0:
			continue // the platform user's own problem covers it
		case ps.other != none:
			p := &e.in.PlatformUsers[ps.other]
			e.problem(Problem{
				Code: CodePlatformUserInactive, PlatformUserID: "", CRMUserID: c.ID, Email: email,
				Message: "the platform user with this email (" + p.ID + ") is " + string(p.Status),
				Fix:     "reactivate the platform user, or deactivate the " + e.crmWord(),
			})
		default:
			e.problem(Problem{
				Code: CodePlatformUserNotFound, CRMUserID: c.ID, Email: email,
				Message: "no platform user has this email",
				Fix:     "invite the user to the platform (or turn on auto-provisioning), or map a platform user manually",
			})
		}
	}
}

// mappingProblem lists a flagged mapping as a problem.
func (e *engine) mappingProblem(m Mapping, d defect, manual bool) {
	fix := "run Sync Users to resolve it, or map the platform user manually"
	switch {
	case manual:
		fix = "map the platform user manually to a valid " + e.crmWord() + ", or unmap it"
	case d.crmInactive:
		fix = "reactivate the " + e.crmWord() + ", or map the platform user manually"
	}
	code := d.code
	if m.Status == StatusConflict {
		code = CodeMappingConflict
	}
	e.problem(Problem{
		Code: code, PlatformUserID: m.PlatformUserID, CRMUserID: m.CRMUserID, Email: m.Email,
		Message: m.Reason, Fix: fix,
	})
}

// fallbackProblem reports an unusable fallback owner (rule 8) when Sync Users runs.
func (e *engine) fallbackProblem() {
	id := e.in.Settings.FallbackOwnerID
	if e.scope != nil || id == "" {
		return
	}
	_, err := ValidateFallbackOwner(id, func(id string) (CRMUser, bool) {
		ci := e.crmIndex(id)
		if ci == none {
			return CRMUser{}, false
		}
		return e.in.CRMUsers[ci], true
	})
	if err == nil {
		return
	}
	e.problem(Problem{
		Code: CodeFallbackOwnerInvalid, CRMUserID: id,
		Message: err.Error(),
		Fix:     "choose an active " + e.crmWord() + " (not a queue) as the fallback owner in the tenant configuration",
	})
}

// notMappable lists the active CRM users of kind user who are not people and whom no mapping holds.
func (e *engine) notMappable() []NotMappable {
	var out []NotMappable
	for i := range e.in.CRMUsers {
		c := &e.in.CRMUsers[i]
		if e.cDup[i] || e.cOwner[i] != none || !c.Active || c.Kind != CRMKindUser {
			continue
		}
		if reason := c.NotPersonReason(); reason != "" {
			out = append(out, NotMappable{Provider: e.in.Provider, CRMUserID: c.ID, Name: c.Name(), Email: strings.TrimSpace(c.Email),
				UserType: c.UserType, License: c.License, Reason: reason})
		}
	}
	slices.SortFunc(out, func(a, b NotMappable) int { return strings.Compare(a.CRMUserID, b.CRMUserID) })
	return out
}

func (e *engine) remainingPending() []Provision {
	var left []Provision
	for _, p := range e.in.Pending {
		ci := e.crmIndex(p.CRMUserID)
		if ci == none || e.cOwner[ci] != none || !e.in.CRMUsers[ci].Mappable() {
			continue
		}
		left = append(left, p)
	}
	slices.SortFunc(left, func(a, b Provision) int { return strings.Compare(a.CRMUserID, b.CRMUserID) })
	return left
}

func (e *engine) counts() Counts {
	var c Counts
	for i := range e.out {
		if e.out[i].Status == StatusSynced {
			c.Mapped++
		}
	}
	for i := range e.changes {
		switch e.changes[i].Kind {
		case ChangeCreated:
			c.Created++
		case ChangeRemapped:
			c.Remapped++
		case ChangeRemoved:
			c.Removed++
		}
	}
	pc := CountProblems(e.problems)
	c.Errors, c.Conflicts = pc.Errors, pc.Conflicts
	for i := range e.in.PlatformUsers {
		if e.pMap[i] == none && e.in.PlatformUsers[i].Mappable() && !e.pDup[i] {
			c.UnmappedPlatform++
		}
	}
	for i := range e.in.CRMUsers {
		if e.cOwner[i] == none && e.in.CRMUsers[i].Mappable() && !e.cDup[i] {
			c.UnmappedCRM++
		}
	}
	return c
}

// changeRank orders one user's changes: what went away before what came.
func changeRank(k ChangeKind) int {
	switch k {
	case ChangeRemoved:
		return 0
	case ChangeRemapped:
		return 1
	case ChangeCreated:
		return 2
	case ChangeConflict:
		return 3
	case ChangeError:
		return 4
	}
	return 5
}

func (e *engine) sortChanges() {
	slices.SortFunc(e.changes, func(a, b Change) int {
		return cmp.Or(
			strings.Compare(a.PlatformUserID, b.PlatformUserID),
			cmp.Compare(changeRank(a.Kind), changeRank(b.Kind)),
			strings.Compare(a.CRMUserID, b.CRMUserID),
		)
	})
	slices.SortFunc(e.problems, func(a, b Problem) int {
		return cmp.Or(
			boolRank(a.PlatformUserID == "", b.PlatformUserID == ""),
			strings.Compare(a.PlatformUserID, b.PlatformUserID),
			strings.Compare(a.CRMUserID, b.CRMUserID),
			strings.Compare(a.Code, b.Code),
		)
	})
}

func boolRank(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// sortOut puts the kept mappings in platform user id order. It walks the platform users in id order
// (usually the input order already, which one pass confirms) and moves each mapping once, in place,
// instead of sorting the mappings themselves.
func (e *engine) sortOut() {
	if e.orphanOut > 0 {
		slices.SortStableFunc(e.out, byPlatformUser)
		return
	}
	ps := e.in.PlatformUsers
	var order []int32
	if !slices.IsSortedFunc(ps, func(a, b PlatformUser) int { return strings.Compare(a.ID, b.ID) }) {
		order = make([]int32, len(ps))
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int { return strings.Compare(ps[a].ID, ps[b].ID) })
	}
	src := make([]int32, 0, len(e.out))
	for i := range ps {
		pi := int32(i)
		if order != nil {
			pi = order[i]
		}
		if k := e.pMap[pi]; k != none {
			src = append(src, k)
		}
	}
	permute(e.out, src)
}

// permute sets ms[d] to the old ms[src[d]] for every d, moving each element once. src must be a
// permutation of the positions of ms; it is consumed.
func permute(ms []Mapping, src []int32) {
	for d := range src {
		if src[d] < 0 {
			continue
		}
		tmp, cur := ms[d], d
		for {
			s := int(src[cur])
			src[cur] = -1
			if s == d {
				ms[cur] = tmp
				break
			}
			ms[cur] = ms[s]
			cur = s
		}
	}
}
