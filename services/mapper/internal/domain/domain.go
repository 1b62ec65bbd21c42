// Package domain is the mapper's vocabulary: the users it stores, the runs of Sync Users, what the
// admin reads (overview, mapping lists, unmapped users, problems, record history) and a coded
// error. It is pure Go: the core (internal/app, internal/syncusers, internal/changes) works in
// these types, and every edge converts at its boundary — mongostore to BSON documents, crm from
// the CRMs' users, events to and from proto, httpapi and console to JSON and HTML.
//
// The package is named for its role rather than for the service because the service's own name
// is taken by the package that runs it (services/mapper/mapper).
package domain

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// PlatformUser is a platform user as the mapper stores it.
type PlatformUser struct {
	Tenant    string
	ID        string
	Email     string
	FirstName string
	LastName  string
	// Status is active, suspended or deleted (mapping.PlatformStatus).
	Status string
	// Kind is user, extension or call_destination (mapping.PlatformKind).
	Kind   string
	TeamID string
	// SourceTime is the time of the change stored last; older changes are ignored.
	SourceTime time.Time
	UpdatedAt  time.Time
}

// Rules returns the user as the mapping rules see it.
func (u PlatformUser) Rules() mapping.PlatformUser {
	return mapping.PlatformUser{ID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		Status: mapping.PlatformStatus(u.Status), Kind: mapping.PlatformKind(u.Kind), TeamID: u.TeamID}
}

// CRMUser is a CRM user as the mapper stores it: the rules' view plus what only storage needs.
type CRMUser struct {
	mapping.CRMUser
	// HubSpotUserID is the HubSpot user behind an owner (0 for Salesforce).
	HubSpotUserID int64
	// SourceTime is the time of the change stored last (zero for a read from the CRM, which wins).
	SourceTime time.Time
	UpdatedAt  time.Time
}

// SameCRMUser reports whether two CRM users hold the same data (timestamps aside).
func SameCRMUser(a, b CRMUser) bool {
	return a.CRMUser == b.CRMUser && a.HubSpotUserID == b.HubSpotUserID
}

// StoredCRMUsers are a provider's stored CRM users as one read found them. Read is the store's
// own note of that read (which layout, which version of it), handed back with the write that
// follows, so the write can tell whether anything changed the users in between.
type StoredCRMUsers struct {
	Users map[string]CRMUser
	Read  any
}

// StoredMappings are a provider's mappings as one read found them, with the store's note of that
// read (as StoredCRMUsers).
type StoredMappings struct {
	Mappings []mapping.Mapping
	Read     any
}

// CRMUsersDiff is what a full pull changes in the stored CRM users.
type CRMUsersDiff struct {
	Inserts, Updates []CRMUser
	// Deletes are the ids of stored users the CRM no longer lists.
	Deletes []string
}

// DiffCRMUsers compares a full pull with the stored users.
func DiffCRMUsers(stored map[string]CRMUser, pulled []CRMUser) CRMUsersDiff {
	var d CRMUsersDiff
	seen := make(map[string]struct{}, len(pulled))
	for _, u := range pulled {
		seen[u.ID] = struct{}{}
		old, ok := stored[u.ID]
		switch {
		case !ok:
			d.Inserts = append(d.Inserts, u)
		case !SameCRMUser(old, u):
			d.Updates = append(d.Updates, u)
		}
	}
	for id := range stored {
		if _, ok := seen[id]; !ok {
			d.Deletes = append(d.Deletes, id)
		}
	}
	return d
}

// CodeCRMAPIError is the problem code of a Sync Users pull that the CRM refused or failed.
const CodeCRMAPIError = "crm_api_error"

// Problem is a stored problem the admin sees (rule 6): what the rules reported for the users, or a
// CRM API error of the last Sync Users; Since is when it was first found.
type Problem struct {
	mapping.Problem
	Since time.Time
}

// ViewEntry is what the mappings view holds for one mapping: the mapping and the state of its CRM
// user (the zero value when unknown).
type ViewEntry struct {
	Tenant  string
	Mapping mapping.Mapping
	CRMUser mapping.CRMUser
}

// Provision is an outstanding auto-provisioning request (rule 7).
type Provision = mapping.Provision

// Failure is a dead-lettered message or another failure the admin sees.
type Failure struct {
	ID      string
	Tenant  string
	Service string
	Subject string
	MsgID   string
	Error   string
	Time    time.Time
}

// HistoryEntry is one ownership change of a CRM record as the writer recorded it
// (libs/ownerhistory.Doc).
type HistoryEntry struct {
	ID             string
	Tenant         string
	Provider       provider.Provider
	RecordType     string
	RecordID       string
	At             time.Time
	Direction      string
	Outcome        string
	OwnerBefore    string
	OwnerAfter     string
	PlatformUserID string
	EventID        string
	Reason         string
	// PlatformRecordID is the platform's record id of a platform change.
	PlatformRecordID string
	// OccurredAt is when the change happened at its source.
	OccurredAt time.Time
	// ErrorCode is the CRM's error code of a refused write (outcome failed), when known.
	ErrorCode string
}

// FailedWrites are a tenant's failed record writes (ownership history entries with outcome
// failed), newest first and capped; Total counts them all.
type FailedWrites struct {
	Entries []HistoryEntry
	Total   int
}

// MappingEvent is one mapping change announced to the other services (mapping.changed).
type MappingEvent struct {
	// ID is the event id: deterministic for its cause, so that redoing a commit publishes nothing
	// twice.
	ID       string
	Tenant   string
	Provider provider.Provider
	Change   mapping.Change
	// Source is the part of mapper that made the change; SourceEventID is its cause (the event
	// or run id).
	Source        string
	SourceEventID string
	At            time.Time
}

// ProvisionRequest asks the platform to create a user for a CRM user (rule 7).
type ProvisionRequest struct {
	// ID is the event id, the same for every repeat of the request (see app.ProvisionEventID).
	ID            string
	Tenant        string
	Provider      provider.Provider
	Owner         CRMUser
	Email         string
	RequestedAt   time.Time
	SourceEventID string
}

// Directory is one tenant's user directory in one CRM (crm.Factory builds them).
type Directory interface {
	// Pull calls fn with every CRM user, page by page, inactive and archived ones included.
	Pull(ctx context.Context, fn func(page []CRMUser) error) error
	// Get reads one user; errors.Is(err, ErrNotFound) when the CRM has none.
	Get(ctx context.Context, id string) (CRMUser, error)
}
