package domain

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"
	"time"
)

// Overview is a tenant's counts per provider and its last finished run.
type Overview struct {
	Tenant    string
	Providers []ProviderOverview
	// LastSync is the newest finished run, nil before the first one.
	LastSync *SyncRun
}

// ProviderOverview are one provider's counts.
type ProviderOverview struct {
	Provider         provider.Provider
	Connected        bool
	PlatformUsers    int
	CRMUsers         int
	Mapped           int
	Manual           int
	Conflicts        int
	Errors           int
	PendingTeam      int
	UnmappedPlatform int
	UnmappedCRM      int
	// NotMappable counts the active CRM users who are not people (mapping.CRMUser.NotPersonReason)
	// and whom no mapping holds: never errors, never unmapped.
	NotMappable int
	// FallbackOwnerID is the connection's fallback owner (rule 8); FallbackOwnerProblem says why
	// it cannot own records ("inactive", "a queue", "unknown"), empty when it can: the writer then
	// writes no change that needs it (docs/architecture.md#rule-8-fallback-owner).
	FallbackOwnerID      string
	FallbackOwnerProblem string
	// LastSyncAt is when the last finished run pulled this provider.
	LastSyncAt *time.Time
}

// DefaultPerPage is the page size of a mapping list that asks for none.
const DefaultPerPage = 50

// MappingQuery filters and pages the mapping list. Empty fields do not filter.
type MappingQuery struct {
	Provider provider.Provider // "", salesforce, hubspot
	Status   string            // "", synced, conflict, error, pending_team
	Q        string            // trimmed search text
	Page     int               // 1-based
	PerPage  int
}

// MappingPage is one page of mappings and the total matching the filter.
type MappingPage struct {
	Items   []MappedUsers
	Total   int
	Page    int
	PerPage int
}

// MappedUsers is one mapping with both users' names, for display.
type MappedUsers struct {
	Provider          provider.Provider
	PlatformUserID    string
	PlatformUserName  string
	PlatformUserEmail string
	CRMUserID         string
	CRMUserName       string
	CRMUserEmail      string
	CRMUserActive     bool
	PreviousCRMUserID string
	Status            string
	MadeBy            string
	Reason            string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// UnmappedUser is a platform or CRM user without a mapping for Provider.
type UnmappedUser struct {
	Provider provider.Provider
	ID       string
	Name     string
	Email    string
	// Status is the platform user's status, "active" for a CRM user, or pending_team while a
	// provisioning request for the CRM user is outstanding.
	Status string
	// Reason says why no mapping exists, when known.
	Reason string
}

// Admin is what the admin API and the console ask of the mapper core, in domain types
// (app.Service implements it). Every method is scoped to one tenant whose id the caller has
// already validated and authorised; provider is "salesforce" or "hubspot" unless the method says
// it may be empty (meaning every connected provider). Errors carry a Code (see Error); any other
// error is an internal failure.
type Admin interface {
	// Overview returns counts per provider and the last finished run.
	Overview(ctx context.Context, tenant string) (Overview, error)
	// ListMappings returns one page of mappings. The order is stable across pages: provider, then
	// platform user email (case-folded), then platform user id. Q matches case-insensitively as a
	// substring of either user's name or email, or exactly either id. Page is 1-based.
	ListMappings(ctx context.Context, tenant string, q MappingQuery) (MappingPage, error)
	// UnmappedPlatformUsers lists mappable platform users with no mapping for provider ("" = any
	// connected provider, with Provider set on each entry).
	UnmappedPlatformUsers(ctx context.Context, tenant string, provider provider.Provider) ([]UnmappedUser, error)
	// UnmappedCRMUsers lists active CRM users (kind user) mapped to nobody.
	UnmappedCRMUsers(ctx context.Context, tenant string, provider provider.Provider) ([]UnmappedUser, error)
	// Errors lists the problems the admin must see
	// (docs/architecture.md#rule-6-errors-the-admin-sees).
	Errors(ctx context.Context, tenant string, provider provider.Provider) ([]Problem, error)
	// MapManually pins platformUserID to crmUserID (rule 3). ErrNotFound when either user is
	// unknown; ErrConflict when the CRM user is manually pinned to another platform user;
	// ErrInvalid when the CRM user is inactive or a queue, or the platform user not mappable.
	MapManually(ctx context.Context, tenant string, provider provider.Provider, platformUserID, crmUserID, actor string) (MappedUsers, error)
	// Unmap removes the mapping (and any manual pin) of platformUserID. ErrNotFound when none.
	Unmap(ctx context.Context, tenant string, provider provider.Provider, platformUserID, actor string) error
	// StartSync starts a Sync Users run, or returns the tenant's running one with created=false.
	StartSync(ctx context.Context, tenant string, r SyncRequest) (run *SyncRun, created bool, err error)
	// Runs lists the newest runs first, at most limit.
	Runs(ctx context.Context, tenant string, limit int) ([]SyncRun, error)
	// Run returns one run (live progress while it runs). ErrNotFound when unknown.
	Run(ctx context.Context, tenant, id string) (*SyncRun, error)
	// RecordHistory returns the ownership_history entries of one record, oldest first.
	RecordHistory(ctx context.Context, tenant string, provider provider.Provider, recordType, recordID string) ([]HistoryEntry, error)
	// FailedWrites returns the tenant's failed record writes (the writer's ownership history,
	// outcome failed), newest first, at most limit, and how many there are.
	FailedWrites(ctx context.Context, tenant string, limit int) (FailedWrites, error)
}

// MaxPerPage caps the page size of a mapping list (the admin API and the console both cap at it).
const MaxPerPage = 200
