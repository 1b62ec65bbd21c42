// Package mapping holds the user mapping rules of docs/architecture.md#mapping-rules: which
// platform user is linked to which CRM user, for one tenant and one provider, and why.
//
// The package is pure: it takes users, existing mappings and settings as values and returns the new
// mappings, every change with its reason, and the problems the admin must see. Storage, events and
// HTTP live in the mapper's adapters, which convert to and from these types.
//
// There are two entry points. Reconcile is the full Sync Users run over every user of a tenant and
// provider: it matches, remaps and cleans up. Apply handles one user-changed event between runs: it
// looks only at the users touched and marks a mapping the event broke as conflict or error at once,
// leaving its removal to the next Sync Users (rule 5).
//
// Decisions where docs/architecture.md#mapping-rules is silent:
//   - Conflicts are problems, not mappings. Two mappable platform users or two active CRM users
//     with one email leave the users unmapped, each listed with code email_conflict or
//     ambiguous_email. Only a mapping an event broke carries the status conflict, until the next
//     Sync Users.
//   - An existing rule-made mapping stays while it is valid, even if a second user with the same
//     email appears later: rule 2 forbids automatic mapping, not keeping one.
//   - Sync Users removes an invalid rule-made mapping and then treats its platform user like any
//     unmapped one, in the same run: an email change is followed by a match on the old email when
//     another CRM user has it, and with remapping off a deactivation is followed by an ordinary
//     email match (made_by email, no previous id) when exactly one other active CRM user has the
//     email. So the remap setting decides whether ownership moves at once, between runs, and how the
//     move is recorded; with it off the mapping is held as error until Sync Users.
//   - A remap never takes a CRM user that another kept mapping holds; the mapping is removed
//     instead (or marked error between runs).
//   - Manual mappings are never removed by the rules, whatever breaks (rule 3): they turn to error,
//     and back to synced when valid again. Their emails are never compared. Rule 4 does not move
//     them: the admin chose that CRM user.
//   - Stored duplicates (two mappings of one user) are cut back deterministically: a manual
//     mapping beats any other, otherwise the smaller id wins.
//   - Salesforce users who are not people (CRMUser.NotPersonReason: the Automated Process user,
//     Chatter-only users, site guests, integration users by licence) are never matched by email,
//     pinned or listed as problems; Sync Users lists them as NotMappable with the reason. A mapping
//     that already holds one is kept as it is: removing it would move owners without the admin.
//   - Auto-provisioned users are mapped by email like everyone else once the platform creates them;
//     the outstanding Provision request turns that mapping into made_by auto_provisioned, status
//     pending_team while the user has no team.
package mapping

import (
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
)

// Provider names as mapper's records carry them (strings); the names are provider.Provider's.
const (
	Salesforce = provider.Salesforce
	HubSpot    = provider.HubSpot
)

// Providers lists every provider name in provider.All's order.
var Providers = provider.All

// PlatformStatus is the lifecycle state of a platform user.
type PlatformStatus string

// Platform user states.
const (
	PlatformActive    PlatformStatus = "active"
	PlatformSuspended PlatformStatus = "suspended"
	PlatformDeleted   PlatformStatus = "deleted"
)

// PlatformKind says whether a platform user is a person or a technical endpoint.
type PlatformKind string

// Platform user kinds. Only KindUser is ever mapped.
const (
	KindUser            PlatformKind = "user"
	KindExtension       PlatformKind = "extension"
	KindCallDestination PlatformKind = "call_destination"
)

// CRMKind says whether a CRM user is a person or a queue.
type CRMKind string

// CRM user kinds. Only CRMKindUser is ever mapped.
const (
	CRMKindUser  CRMKind = "user"
	CRMKindQueue CRMKind = "queue"
)

// Status is the state of a mapping.
type Status string

// Mapping states. Only StatusSynced mappings may carry ownership; a pending_team mapping holds owner
// assignments until the platform reports the user with a team (rule 7).
const (
	StatusSynced      Status = "synced"
	StatusConflict    Status = "conflict"
	StatusError       Status = "error"
	StatusPendingTeam Status = "pending_team"
)

// MadeBy says how a mapping was made.
type MadeBy string

// How mappings are made.
const (
	MadeByEmail           MadeBy = "email"
	MadeByManual          MadeBy = "manual"
	MadeByRemapInactive   MadeBy = "remap_inactive"
	MadeByAutoProvisioned MadeBy = "auto_provisioned"
)

// ChangeKind says what happened to a mapping.
type ChangeKind string

// Change kinds, as in the MappingChanged event.
const (
	ChangeCreated  ChangeKind = "created"
	ChangeRemapped ChangeKind = "remapped"
	ChangeRemoved  ChangeKind = "removed"
	ChangeConflict ChangeKind = "conflict"
	ChangeError    ChangeKind = "error"
	ChangeResolved ChangeKind = "resolved"
)

// PlatformUser is a user of the platform's own directory.
type PlatformUser struct {
	ID        string
	Email     string
	FirstName string
	LastName  string
	Status    PlatformStatus
	Kind      PlatformKind
	// TeamID is empty while the user has no team yet (auto-provisioned users start that way).
	TeamID string
}

// Name is the user's display name.
func (u PlatformUser) Name() string { return joinName(u.FirstName, u.LastName) }

// Mappable reports whether the user may have a mapping: active and a person.
func (u PlatformUser) Mappable() bool { return u.Status == PlatformActive && u.Kind == KindUser }

// CRMUser is a Salesforce User or queue, or a HubSpot owner.
type CRMUser struct {
	ID        string
	Email     string
	FirstName string
	LastName  string
	// Active is Salesforce IsActive, or HubSpot "not archived".
	Active bool
	Kind   CRMKind
	// Username, UserType and License (the name of the profile's user licence) are Salesforce's;
	// empty for HubSpot.
	Username string
	UserType string
	License  string
}

// Name is the user's display name.
func (u CRMUser) Name() string { return joinName(u.FirstName, u.LastName) }

// Mappable reports whether the user may be the CRM side of a mapping: active and a person.
func (u CRMUser) Mappable() bool {
	return u.Active && u.Kind == CRMKindUser && u.NotPersonReason() == ""
}

// NotPersonReason says why a Salesforce user of kind user is not a person: the Automated Process
// user, a Chatter-only user, a site's guest user, or an integration user (by its licence); empty
// for a person (and for every HubSpot owner). Such users are never matched or listed as errors:
// Sync Users lists them as not mappable. Portal and partner users are people (they may own
// records) and stay mappable.
func (u CRMUser) NotPersonReason() string {
	switch u.UserType {
	case "AutomatedProcess":
		return "Salesforce's Automated Process user, which runs flows and platform events"
	case "Guest":
		return "the guest user of a site, not a person"
	case "CsnOnly":
		return "a Chatter-only user" + licenceNote(u.License) + ", who cannot own contacts or leads"
	}
	switch strings.ToLower(u.License) {
	case "salesforce integration", "analytics cloud integration user", "cloud integration user":
		return "an integration user" + licenceNote(u.License) + ", used by other systems, not by a person"
	case "chatter only", "chatter free", "chatter external":
		return "a Chatter-only user" + licenceNote(u.License) + ", who cannot own contacts or leads"
	}
	return ""
}

func licenceNote(license string) string {
	if license == "" {
		return ""
	}
	return " (" + license + " licence)"
}

// NotMappable is an active CRM user who is not a person (CRMUser.NotPersonReason): listed apart
// from the problems, never counted as an error.
type NotMappable struct {
	Provider  provider.Provider
	CRMUserID string
	Name      string
	Email     string
	UserType  string
	License   string
	Reason    string
}

// Mapping links one platform user to one CRM user of one provider. There is at most one mapping per
// platform user and at most one per CRM user (rule 2).
type Mapping struct {
	Provider       provider.Provider
	PlatformUserID string
	CRMUserID      string
	// PreviousCRMUserID is the CRM user the mapping pointed to before a remap (rule 4).
	PreviousCRMUserID string
	// Email is the platform user's email, trimmed.
	Email  string
	Status Status
	// Reason explains the status; empty for a plain synced mapping.
	Reason    string
	MadeBy    MadeBy
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Usable reports whether owners may flow through the mapping now.
func (m Mapping) Usable() bool { return m.Status == StatusSynced }

// Settings are the tenant's mapping switches for one provider.
type Settings struct {
	// RemapOnDeactivation moves a mapping whose CRM user was deactivated to the one other active CRM
	// user with the same email (rule 4). On by default.
	RemapOnDeactivation bool
	// AutoProvisioning asks the platform to create users for active CRM owners it does not know
	// (rule 7). Off by default.
	AutoProvisioning bool
	// FallbackOwnerID is the CRM user that owns records whose platform owner has no valid mapping
	// (rule 8); Reconcile reports it when it is unusable.
	FallbackOwnerID string
}

// DefaultSettings are the settings of a tenant that changed nothing: remap on, auto-provisioning off.
func DefaultSettings() Settings { return Settings{RemapOnDeactivation: true} }

// Change is one thing that happened to a mapping, with its reason. For a removal the fields describe
// the mapping as it was; otherwise as it is now.
type Change struct {
	Kind              ChangeKind
	Provider          provider.Provider
	PlatformUserID    string
	CRMUserID         string
	PreviousCRMUserID string
	Email             string
	// Name is the platform user's display name, for reports.
	Name   string
	Status Status
	MadeBy MadeBy
	Reason string
}

// Problem codes: stable, machine-readable, listed in reports and the admin API.
const (
	// CodeEmailConflict: two or more mappable platform users share an email (rule 2).
	CodeEmailConflict = "email_conflict"
	// CodeAmbiguousEmail: two or more active CRM users share a platform user's email (rule 2).
	CodeAmbiguousEmail = "ambiguous_email"
	// CodeMappingConflict: an event broke a mapping in a way Sync Users will resolve (rule 5).
	CodeMappingConflict = "mapping_conflict"
	// CodeCRMUserNotFound: no CRM user has the platform user's email, or the mapped one is gone.
	CodeCRMUserNotFound = "crm_user_not_found"
	// CodeCRMUserInactive: the matching or mapped CRM user is deactivated/archived.
	CodeCRMUserInactive = "crm_user_inactive"
	// CodeCRMUserQueue: the mapped CRM user is a queue.
	CodeCRMUserQueue = "crm_user_queue"
	// CodeCRMUserMappedElsewhere: the CRM user with the platform user's email is mapped to someone else.
	CodeCRMUserMappedElsewhere = "crm_user_mapped_elsewhere"
	// CodePlatformUserNotFound: no platform user has an active CRM user's email, or the mapped one is gone.
	CodePlatformUserNotFound = "platform_user_not_found"
	// CodePlatformUserMappedElsewhere: the platform user with the CRM user's email is mapped to
	// another CRM user.
	CodePlatformUserMappedElsewhere = "platform_user_mapped_elsewhere"
	// CodePlatformUserInactive: the matching or mapped platform user is suspended or deleted.
	CodePlatformUserInactive = "platform_user_inactive"
	// CodePlatformUserNotPerson: the mapped platform user is an extension or call destination.
	CodePlatformUserNotPerson = "platform_user_not_person"
	// CodeMissingEmail: a mappable user has no email, so only a manual mapping can link it.
	CodeMissingEmail = "missing_email"
	// CodeFallbackOwnerInvalid: the provider's fallback owner is missing, inactive or a queue (rule 8).
	CodeFallbackOwnerInvalid = "fallback_owner_invalid"
)

// Problem is one error the admin sees (rule 6), with a suggested fix.
type Problem struct {
	Code           string
	Provider       provider.Provider
	PlatformUserID string
	CRMUserID      string
	Email          string
	// Name is the display name of the user the problem is about: the platform user's, else the
	// CRM user's (empty when neither is known or named).
	Name    string
	Message string
	Fix     string
}

// Conflict reports whether the problem counts as a conflict rather than an error.
func (p Problem) Conflict() bool {
	switch p.Code {
	case CodeEmailConflict, CodeAmbiguousEmail, CodeMappingConflict:
		return true
	}
	return false
}

// Problem kinds, as Kind returns them and the admin API, the console and the report show them.
const (
	ProblemKindError    = "error"
	ProblemKindConflict = "conflict"
)

// Kind is ProblemKindConflict for a conflict, ProblemKindError otherwise.
func (p Problem) Kind() string {
	if p.Conflict() {
		return ProblemKindConflict
	}
	return ProblemKindError
}

// ProblemCounts are the errors and conflicts among a list of problems.
type ProblemCounts struct {
	Errors    int
	Conflicts int
}

// Add counts one problem.
func (c *ProblemCounts) Add(p Problem) {
	if p.Conflict() {
		c.Conflicts++
	} else {
		c.Errors++
	}
}

// CountProblems is the one definition of the error and conflict counts that the run's report (and
// so its email), the overview, the Errors page and the admin API show: each listed problem is one
// error or one conflict (Conflict decides), nothing else is counted. A run counts the problems the
// rules found; the overview and the Errors page count the stored problems, which after a run are
// the same list (plus the CRM API error of a failed pull, which is an error).
func CountProblems(ps []Problem) ProblemCounts {
	var c ProblemCounts
	for i := range ps {
		c.Add(ps[i])
	}
	return c
}

// Counts are the totals of one provider in one run.
type Counts struct {
	// Mapped is the number of synced mappings after the run.
	Mapped    int
	Created   int
	Remapped  int
	Removed   int
	Conflicts int
	Errors    int
	// UnmappedPlatform is the number of mappable platform users without a mapping.
	UnmappedPlatform int
	// UnmappedCRM is the number of active CRM people (kind user, not NotMappable) without a mapping.
	UnmappedCRM int
	// NotMappable is the number of active CRM users of kind user who are not people.
	NotMappable int
}

// NormalizeEmail returns the email as the rules compare it: trimmed and lower-cased. It does not
// allocate when the email is already in that form.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// SameEmail reports whether two emails are equal as the rules compare them.
func SameEmail(a, b string) bool {
	return NormalizeEmail(a) == NormalizeEmail(b)
}

func joinName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	}
	return first + " " + last
}
