package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Event names the user that one user-changed event touched: a CRM user (crm.user.changed) or a
// platform user (platform.user.changed).
type Event struct {
	PlatformUserID string
	CRMUserID      string
	// PreviousEmail is the touched user's email before the change, when the caller knows it. Platform
	// users left unmapped under that email are matched again (another user may now be unambiguous).
	PreviousEmail string
}

// Delta is what one event or one admin action changes.
type Delta struct {
	// Upserts are the mappings to write (new or changed).
	Upserts []Mapping
	// Deletes are the stored mappings to delete, as they were.
	Deletes []Mapping
	Changes []Change
	// Problems are the current problems of the users listed in CheckedPlatformUsers and
	// CheckedCRMUsers, in full: a store replaces the stored problems of those users with them.
	Problems []Problem
	// CheckedPlatformUsers and CheckedCRMUsers are the ids of the users whose mappings and problems
	// were evaluated, sorted. Empty for a Reconcile, which evaluates everyone.
	CheckedPlatformUsers []string
	CheckedCRMUsers      []string
}

// scope limits an evaluation to the users one event or admin action touched.
type scope struct {
	platformIDs, crmIDs map[string]bool
	// emails are normalised emails whose unmapped platform users are matched again.
	emails []string
}

func newScope() *scope {
	return &scope{platformIDs: map[string]bool{}, crmIDs: map[string]bool{}}
}

func (s *scope) addPlatform(id string) {
	if id != "" {
		s.platformIDs[id] = true
	}
}

func (s *scope) addCRM(id string) {
	if id != "" {
		s.crmIDs[id] = true
	}
}

func (s *scope) addEmail(email string) {
	if email != "" && !slices.Contains(s.emails, email) {
		s.emails = append(s.emails, email)
	}
}

func (s *scope) covers(m Mapping) bool {
	return s.platformIDs[m.PlatformUserID] || s.crmIDs[m.CRMUserID] ||
		// A mapping the rules made is judged again when a user of its email changes: a second
		// active user makes a rule-4 remap a conflict, and a remap held for several candidates
		// goes ahead once only one is left (issue 14 item 4).
		m.MadeBy != MadeByManual && len(s.emails) > 0 && slices.Contains(s.emails, NormalizeEmail(m.Email))
}

func (s *scope) coversPlatform(id, email string) bool {
	return s.platformIDs[id] || (email != "" && slices.Contains(s.emails, email))
}

func (s *scope) coversCRM(id string) bool { return s.crmIDs[id] }

// Apply applies the rules between Sync Users runs to the users one event touched (rule 5). in holds
// the users in their state after the event. It needs only the neighbourhood of the event: the
// touched user; the users (of both sides) whose email equals its current or previous email; the
// mappings naming any of these users; the users those mappings name; and the users of both sides
// sharing the email of a platform user so named (the remap candidates). Passing every user is
// correct too, only slower: Apply indexes what it is given, so its cost is linear in the input.
//
// A mapping the event breaks is not removed: it is marked conflict (an email no longer matches, or
// several remap candidates) or error (a user deactivated, suspended, deleted or not a person) at
// once, and the next Sync Users resolves it. A CRM user deactivated is remapped at once when rule 4
// allows. A mapping the event repairs is resolved. Mappable users left unmapped under the touched
// emails are matched by email when the match is unambiguous.
func Apply(in Input, ev Event) Delta {
	sc := newScope()
	sc.addPlatform(ev.PlatformUserID)
	sc.addCRM(ev.CRMUserID)
	sc.addEmail(NormalizeEmail(ev.PreviousEmail))
	for _, u := range in.PlatformUsers {
		if ev.PlatformUserID != "" && u.ID == ev.PlatformUserID {
			sc.addEmail(NormalizeEmail(u.Email))
			break
		}
	}
	for _, u := range in.CRMUsers {
		if ev.CRMUserID != "" && u.ID == ev.CRMUserID {
			sc.addEmail(NormalizeEmail(u.Email))
			break
		}
	}
	e := newEngine(&in, sc)
	e.run()
	d := e.delta()
	d.CheckedPlatformUsers, d.CheckedCRMUsers = e.checked(d)
	return d
}

// checked lists the users a scoped evaluation covered: the touched users, the platform users under
// the touched emails, both users of every mapping in scope, and the users of every mapping written.
func (e *engine) checked(d Delta) (platform, crm []string) {
	sc := e.scope
	add := func(list []string, id string) []string {
		if id == "" {
			return list
		}
		return append(list, id)
	}
	for id := range sc.platformIDs {
		platform = add(platform, id)
	}
	for id := range sc.crmIDs {
		crm = add(crm, id)
	}
	for i := range e.in.PlatformUsers {
		if sc.coversPlatform(e.in.PlatformUsers[i].ID, e.pEmail[i]) {
			platform = add(platform, e.in.PlatformUsers[i].ID)
		}
	}
	for _, m := range e.in.Mappings {
		if sc.covers(m) {
			platform, crm = add(platform, m.PlatformUserID), add(crm, m.CRMUserID)
		}
	}
	for _, ms := range [][]Mapping{d.Upserts, d.Deletes} {
		for _, m := range ms {
			platform, crm = add(platform, m.PlatformUserID), add(crm, m.CRMUserID)
		}
	}
	slices.Sort(platform)
	slices.Sort(crm)
	return slices.Compact(platform), slices.Compact(crm)
}

func (e *engine) delta() Delta {
	slices.SortFunc(e.upserts, byPlatformUser)
	slices.SortFunc(e.deletes, byPlatformUser)
	e.sortChanges()
	return Delta{Upserts: e.upserts, Deletes: e.deletes, Changes: e.changes, Problems: e.problems}
}

// Errors of Pin.
var (
	ErrPlatformUserNotFound = errors.New("platform user not found")
	ErrPlatformUserInvalid  = errors.New("platform user is not an active person")
	ErrCRMUserNotFound      = errors.New("CRM user not found")
	ErrCRMUserInvalid       = errors.New("CRM user is not an active user")
	ErrCRMUserPinned        = errors.New("CRM user is manually mapped to another platform user")
)

// Pin makes the admin's manual mapping of a platform user to a CRM user (rule 3). in needs the
// neighbourhood Apply needs around both users. A mapping of the CRM user to another platform user
// made by the rules gives way; one pinned manually does not (unmap it first). The platform users
// and the CRM user that lose a mapping are evaluated again at once, like an event's users: the
// Delta lists their problems, or the email match they now get. Errors wrap the Err… values above.
func Pin(in Input, platformUserID, crmUserID string) (Delta, error) {
	e := newEngine(&in, newScope())
	pi, ci := e.platformIndex(platformUserID), e.crmIndex(crmUserID)
	switch {
	case pi == none:
		return Delta{}, fmt.Errorf("pin %s: %w", platformUserID, ErrPlatformUserNotFound)
	case !in.PlatformUsers[pi].Mappable():
		return Delta{}, fmt.Errorf("pin %s: %w", platformUserID, ErrPlatformUserInvalid)
	case ci == none:
		return Delta{}, fmt.Errorf("pin %s to %s: %w", platformUserID, crmUserID, ErrCRMUserNotFound)
	case !in.CRMUsers[ci].Mappable():
		return Delta{}, fmt.Errorf("pin %s to %s: %w", platformUserID, crmUserID, ErrCRMUserInvalid)
	}
	var mine *Mapping
	for i := range in.Mappings {
		m := &in.Mappings[i]
		switch {
		case m.PlatformUserID == platformUserID:
			if mine == nil || m.CRMUserID == crmUserID {
				mine = m
			}
		case m.CRMUserID == crmUserID && m.MadeBy == MadeByManual:
			return Delta{}, fmt.Errorf("pin %s to %s (held by %s): %w", platformUserID, crmUserID, m.PlatformUserID, ErrCRMUserPinned)
		}
	}
	p := &in.PlatformUsers[pi]
	m := Mapping{
		Provider:       in.Provider,
		PlatformUserID: platformUserID,
		CRMUserID:      crmUserID,
		Email:          strings.TrimSpace(p.Email),
		Status:         StatusSynced,
		MadeBy:         MadeByManual,
		CreatedAt:      in.Now,
		UpdatedAt:      in.Now,
	}
	// The users who lose a mapping are evaluated again in the state after the pin.
	after := in
	after.Mappings = make([]Mapping, 0, len(in.Mappings)+1)
	again := newScope()
	again.addPlatform(platformUserID)
	again.addCRM(crmUserID)
	for i := range in.Mappings {
		o := &in.Mappings[i]
		switch {
		case o == mine:
			again.addCRM(o.CRMUserID)
		case o.PlatformUserID == platformUserID:
			e.drop(*o, reasonDuplicatePlatform)
			again.addCRM(o.CRMUserID)
		case o.CRMUserID == crmUserID:
			e.drop(*o, "CRM user "+crmUserID+" was mapped manually to platform user "+platformUserID)
			again.addPlatform(o.PlatformUserID)
		default:
			after.Mappings = append(after.Mappings, *o)
		}
	}
	switch {
	case mine == nil:
		e.changes = append(e.changes, e.change(ChangeCreated, m, reasonPinned))
	case mine.CRMUserID != crmUserID:
		m.CreatedAt = mine.CreatedAt
		m.PreviousCRMUserID = mine.CRMUserID
		e.changes = append(e.changes, e.change(ChangeRemapped, m, reasonPinned))
	default:
		m.CreatedAt = mine.CreatedAt
		if *mine == m {
			m = *mine
			break
		}
		if mine.Status != StatusSynced {
			e.changes = append(e.changes, e.change(ChangeResolved, m, reasonPinned))
		}
	}
	if mine == nil || *mine != m {
		e.upserts = append(e.upserts, m)
	}
	after.Mappings = append(after.Mappings, m)

	n := newEngine(&after, again)
	n.run()
	e.upserts = append(e.upserts, n.upserts...)
	e.deletes = append(e.deletes, n.deletes...)
	e.changes = append(e.changes, n.changes...)
	e.problems = n.problems
	d := e.delta()
	d.CheckedPlatformUsers, d.CheckedCRMUsers = n.checked(d)
	return d, nil
}

// Unpin removes the mappings of a platform user (manual or not), as the admin's unmap does. The
// user is left unmapped, without problems, until the next Sync Users, which may match it by email
// again (rule 1): the admin's action stands until then.
func Unpin(in Input, platformUserID string) Delta {
	e := newEngine(&in, newScope())
	e.scope.addPlatform(platformUserID)
	for _, m := range in.Mappings {
		if m.PlatformUserID == platformUserID {
			e.drop(m, reasonUnpinned)
			e.scope.addCRM(m.CRMUserID)
		}
	}
	d := e.delta()
	d.CheckedPlatformUsers, d.CheckedCRMUsers = e.checked(d)
	return d
}
