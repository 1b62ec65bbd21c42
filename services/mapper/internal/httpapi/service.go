// Package httpapi is mapper's admin API (docs/architecture.md#admin-api): overview, mappings,
// unmapped users, errors, manual mapping, tenant configuration, Sync Users runs, record history and
// the DLQ, behind operator and per-tenant bearer tokens, described by the OpenAPI document in
// services/mapper/api.
//
// Wiring (mapper.Run):
//
//	tokens, _ := auth.New(auth.Options{OperatorToken: cfg.OperatorToken, TenantTokens: cfg.TenantTokens, DB: db})
//	api := httpapi.New(cfg.Admin, svc, tenantstore.New(db, nil), tokens, dlq.New(js), log)
//	api.Register(base.HTTP.E)
package httpapi

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// TenantStore keeps tenant configurations (libs/tenantstore.Store implements it).
type TenantStore interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
	List(ctx context.Context) ([]tenant.Tenant, error)
	Put(ctx context.Context, t *tenant.Tenant) error
}

// TokenStore authenticates bearer tokens and mints, lists and revokes tenant tokens (auth.Store
// implements it).
type TokenStore interface {
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
	MintTenantToken(ctx context.Context, tenant, createdBy string, o auth.MintOptions) (string, error)
	List(ctx context.Context, tenant string) ([]auth.TokenInfo, error)
	// Revoke answers auth.ErrTokenNotFound, ErrTokenConfigured or ErrTokenAmbiguous when it cannot.
	Revoke(ctx context.Context, tenant, id string) error
}

// DeadLetters lists and replays the DLQ stream (httpapi/dlq.New implements it over JetStream);
// the API converts its domain types to DeadLetter and ReplayResult.
type DeadLetters = domain.DeadLetters

// Sentinel errors the core wraps to choose the HTTP status (the domain's, one per code; see
// domain.HTTPStatus).
var (
	ErrNotFound = domain.ErrNotFound // 404
	ErrConflict = domain.ErrConflict // 409
	ErrInvalid  = domain.ErrInvalid  // 400
)

// Invalid returns an error with code invalid whose message is shown to the admin.
func Invalid(format string, a ...any) error { return domain.Errorf(domain.CodeInvalid, format, a...) }

// NotFound returns an error with code not_found whose message is shown to the admin.
func NotFound(format string, a ...any) error {
	return domain.Errorf(domain.CodeNotFound, format, a...)
}

// Conflict returns an error with code conflict whose message is shown to the admin.
func Conflict(format string, a ...any) error {
	return domain.Errorf(domain.CodeConflict, format, a...)
}

// Overview is GET /v1/tenants/{t}/users/overview.
type Overview struct {
	Tenant    string             `json:"tenant"`
	Providers []ProviderOverview `json:"providers"`
	// LastSync is the newest finished run, nil before the first one.
	LastSync *Run `json:"last_sync,omitempty"`
}

// ProviderOverview are one provider's counts.
type ProviderOverview struct {
	Provider         provider.Provider `json:"provider"`
	Connected        bool              `json:"connected"`
	PlatformUsers    int               `json:"platform_users"`
	CRMUsers         int               `json:"crm_users"`
	Mapped           int               `json:"mapped"`
	Manual           int               `json:"manual"`
	Conflicts        int               `json:"conflicts"`
	Errors           int               `json:"errors"`
	PendingTeam      int               `json:"pending_team"`
	UnmappedPlatform int               `json:"unmapped_platform"`
	UnmappedCRM      int               `json:"unmapped_crm"`
	// NotMappable counts the CRM users who are not people (integration, automated, Chatter-only).
	NotMappable int `json:"not_mappable"`
	// FallbackOwnerID is the connection's fallback owner (rule 8); FallbackOwnerProblem says why
	// it cannot own records ("inactive", "a queue", "unknown"), empty when it can.
	FallbackOwnerID      string `json:"fallback_owner_id,omitempty"`
	FallbackOwnerProblem string `json:"fallback_owner_problem,omitempty"`
	// LastSyncAt is when the last finished run pulled this provider.
	LastSyncAt *time.Time `json:"last_sync_at,omitempty"`
}

// MaxPerPage caps per_page; DefaultPerPage is used when it is absent.
const (
	MaxPerPage     = domain.MaxPerPage
	DefaultPerPage = domain.DefaultPerPage
)

// MappingQuery filters and pages the mapped list. Empty fields do not filter.
type MappingQuery struct {
	Provider provider.Provider // "", salesforce, hubspot
	Status   string            // "", synced, conflict, error, pending_team
	Q        string            // trimmed search text
	Page     int               // 1-based
	PerPage  int               // 1..MaxPerPage
}

// MappingPage is one page and the total matching the filter.
type MappingPage struct {
	Items   []Mapping `json:"items"`
	Total   int       `json:"total"`
	Page    int       `json:"page"`
	PerPage int       `json:"per_page"`
}

// Mapping is one mapping with both users' names for display.
type Mapping struct {
	Provider          provider.Provider `json:"provider"`
	PlatformUserID    string            `json:"platform_user_id"`
	PlatformUserName  string            `json:"platform_user_name"`
	PlatformUserEmail string            `json:"platform_user_email"`
	CRMUserID         string            `json:"crm_user_id"`
	CRMUserName       string            `json:"crm_user_name"`
	CRMUserEmail      string            `json:"crm_user_email"`
	CRMUserActive     bool              `json:"crm_user_active"`
	PreviousCRMUserID string            `json:"previous_crm_user_id,omitempty"`
	Status            string            `json:"status"`  // synced, conflict, error, pending_team
	MadeBy            string            `json:"made_by"` // email, manual, remap_inactive, auto_provisioned
	Reason            string            `json:"reason,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// UnmappedUser is a platform or CRM user without a mapping for Provider.
type UnmappedUser struct {
	Provider provider.Provider `json:"provider"`
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Email    string            `json:"email"`
	// Status is the platform user's status or "active"/"inactive" for a CRM user.
	Status string `json:"status,omitempty"`
	// Reason says why no mapping exists, when known (e.g. "no CRM user has this email").
	Reason string `json:"reason,omitempty"`
}

// Problem is one error the admin sees, with a suggested fix.
type Problem struct {
	Provider provider.Provider `json:"provider"`
	Code     string            `json:"code"` // mapping.Code* (email_conflict, ambiguous_email, …)
	// Kind is "error" or "conflict" (mapping.Problem.Kind): the overview's and the run's counts
	// count the problems of each kind.
	Kind string `json:"kind"`
	// Name is the display name of the user concerned (the platform user's, else the CRM user's).
	Name           string `json:"name,omitempty"`
	PlatformUserID string `json:"platform_user_id,omitempty"`
	CRMUserID      string `json:"crm_user_id,omitempty"`
	Email          string `json:"email,omitempty"`
	// CRMUserIDs lists every CRM user involved (e.g. the active users sharing an email).
	CRMUserIDs []string `json:"crm_user_ids,omitempty"`
	// PlatformUserIDs lists every platform user involved (e.g. those sharing an email).
	PlatformUserIDs []string   `json:"platform_user_ids,omitempty"`
	Message         string     `json:"message"`
	Fix             string     `json:"fix"`
	Since           *time.Time `json:"since,omitempty"`
}

// SyncRequest starts a Sync Users run.
type SyncRequest struct {
	DryRun bool
	// EmailReport asks for a dry run's report to be emailed (email_report=true).
	EmailReport bool
	Trigger     string // "api" from the admin API; "schedule" and "manual" elsewhere
	Actor       string // the principal that asked (for the run record)
}

// Run is a Sync Users run (sync_runs), readable while it runs.
type Run struct {
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Trigger string `json:"trigger"`
	DryRun  bool   `json:"dry_run"`
	// EmailReport: a dry run whose report is emailed.
	EmailReport bool       `json:"email_report,omitempty"`
	State       string     `json:"state"` // running, succeeded, failed
	Phase       string     `json:"phase,omitempty"`
	Pulled      int        `json:"pulled"`
	Processed   int        `json:"processed"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Providers holds the per-provider result once finished (counts as in SyncReport).
	Providers []RunProvider `json:"providers,omitempty"`
}

// RunProvider is one provider's result of a run.
type RunProvider struct {
	Provider         provider.Provider `json:"provider"`
	Error            string            `json:"error,omitempty"`
	Mapped           int               `json:"mapped"`
	Created          int               `json:"created"`
	Remapped         int               `json:"remapped"`
	Removed          int               `json:"removed"`
	Conflicts        int               `json:"conflicts"`
	Errors           int               `json:"errors"`
	UnmappedPlatform int               `json:"unmapped_platform"`
	UnmappedCRM      int               `json:"unmapped_crm"`
	Changes          []Change          `json:"changes,omitempty"` // capped; the plan of a dry run
	ChangesTotal     int               `json:"changes_total"`
	// NotMappable lists the CRM users who are not people (integration, automated, Chatter-only
	// Salesforce users), capped; they are not errors. NotMappableTotal is the full number.
	NotMappable      []NotMappableUser `json:"not_mappable,omitempty"`
	NotMappableTotal int               `json:"not_mappable_total"`
}

// NotMappableUser is an active CRM user who is not a person, with the reason.
type NotMappableUser struct {
	CRMUserID string `json:"crm_user_id"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	UserType  string `json:"user_type,omitempty"`
	License   string `json:"license,omitempty"`
	Reason    string `json:"reason"`
}

// Change is one mapping change of a run.
type Change struct {
	Kind              string `json:"kind"` // created, remapped, removed, conflict, error, resolved
	PlatformUserID    string `json:"platform_user_id"`
	CRMUserID         string `json:"crm_user_id,omitempty"`
	PreviousCRMUserID string `json:"previous_crm_user_id,omitempty"`
	Email             string `json:"email,omitempty"`
	Name              string `json:"name,omitempty"`
	Status            string `json:"status,omitempty"`
	MadeBy            string `json:"made_by,omitempty"`
	Reason            string `json:"reason,omitempty"`
}

// HistoryEntry is the API's form of one ownership_history document (libs/ownerhistory.Doc, written
// by writer). Outcome is one of ownerhistory.Outcomes; clients show unknown ones as text.
type HistoryEntry struct {
	ID               string            `json:"id"`
	Tenant           string            `json:"tenant"`
	Provider         provider.Provider `json:"provider"`
	RecordType       string            `json:"record_type"`
	RecordID         string            `json:"record_id"`
	At               time.Time         `json:"at"`
	Direction        string            `json:"direction"`
	Outcome          string            `json:"outcome"`
	OwnerBefore      string            `json:"owner_before,omitempty"`
	OwnerAfter       string            `json:"owner_after,omitempty"`
	PlatformUserID   string            `json:"platform_user_id,omitempty"`
	EventID          string            `json:"event_id,omitempty"`
	Reason           string            `json:"reason,omitempty"`
	PlatformRecordID string            `json:"platform_record_id,omitempty"`
	OccurredAt       time.Time         `json:"occurred_at,omitzero"`
	ErrorCode        string            `json:"error_code,omitempty"`
}

// DLQFilter selects dead letters of one tenant (domain.DLQFilter).
type DLQFilter = domain.DLQFilter

// DeadLetter is one message in the DLQ stream (the API's form of domain.DeadLetter).
type DeadLetter struct {
	ID             uint64    `json:"id"` // DLQ stream sequence
	Service        string    `json:"service"`
	Subject        string    `json:"subject"` // the original subject
	Stream         string    `json:"stream"`
	StreamSequence uint64    `json:"stream_sequence"`
	MsgID          string    `json:"msg_id,omitempty"`
	Error          string    `json:"error"`
	At             time.Time `json:"at"`
	EventType      string    `json:"event_type,omitempty"`
	Size           int       `json:"size"`
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	Replayed []ReplayedLetter `json:"replayed"`
	Failed   []ReplayFailure  `json:"failed,omitempty"`
}

// ReplayedLetter is one republished dead letter.
type ReplayedLetter struct {
	ID      uint64 `json:"id"`
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id"` // "replay:<dlq seq>"
}

// ReplayFailure is one dead letter that could not be republished (it stays in the DLQ).
type ReplayFailure struct {
	ID    uint64 `json:"id"`
	Error string `json:"error"`
}
