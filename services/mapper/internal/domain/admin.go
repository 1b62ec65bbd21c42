package domain

import "time"

// Overview is a tenant's counts per provider and its last finished run.
type Overview struct {
	Tenant    string
	Providers []ProviderOverview
	// LastSync is the newest finished run, nil before the first one.
	LastSync *SyncRun
}

// ProviderOverview are one provider's counts.
type ProviderOverview struct {
	Provider         string
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
	Provider string // "", salesforce, hubspot
	Status   string // "", synced, conflict, error, pending_team
	Q        string // trimmed search text
	Page     int    // 1-based
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
	Provider          string
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
	Provider string
	ID       string
	Name     string
	Email    string
	// Status is the platform user's status, "active" for a CRM user, or pending_team while a
	// provisioning request for the CRM user is outstanding.
	Status string
	// Reason says why no mapping exists, when known.
	Reason string
}
