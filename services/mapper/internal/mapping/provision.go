package mapping

import (
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"time"
)

// Provision is an outstanding request to the platform to create a user for an active CRM user who
// owns records but has no platform user (rule 7). While it is outstanding the CRM user is listed as
// pending_team; the platform user it yields is mapped with MadeBy auto_provisioned and stays
// pending_team until the platform reports it with a team.
type Provision struct {
	Provider    provider.Provider
	CRMUserID   string
	Email       string
	FirstName   string
	LastName    string
	RequestedAt time.Time
}

// ProvisionQuery is what DecideProvision needs to know about one owner change.
type ProvisionQuery struct {
	Settings Settings
	Provider provider.Provider
	// Owner is the CRM user the owner change names.
	Owner CRMUser
	// OwnerMapped is true when a mapping (of any status) names the owner.
	OwnerMapped bool
	// SameEmail are the platform users, of any status and kind, whose email equals the owner's.
	SameEmail []PlatformUser
	// Pending is true when a request for this owner is already outstanding.
	Pending bool
	Now     time.Time
}

// ProvisionDecision says whether to publish a provisioning request, and why not when not.
type ProvisionDecision struct {
	Request   bool
	Provision Provision
	// Reason explains a refusal; empty when Request is true.
	Reason string
}

// DecideProvision applies rule 7 to an owner change: it requests a platform user only when the tenant
// enabled auto-provisioning, the owner is an active CRM user of kind user with an email, no mapping
// names it, no platform user has its email (a suspended or conflicting one must be fixed by the admin
// instead of duplicated), and no request is outstanding.
func DecideProvision(q ProvisionQuery) ProvisionDecision {
	refuse := func(reason string) ProvisionDecision { return ProvisionDecision{Reason: reason} }
	switch {
	case !q.Settings.AutoProvisioning:
		return refuse("auto-provisioning is off for this tenant")
	case q.Owner.Kind != CRMKindUser:
		return refuse("the owner is a queue")
	case !q.Owner.Active:
		return refuse("the owner is not active")
	case NormalizeEmail(q.Owner.Email) == "":
		return refuse("the owner has no email")
	case q.OwnerMapped:
		return refuse("the owner is already mapped")
	case q.Pending:
		return refuse("a provisioning request for the owner is outstanding")
	}
	email := NormalizeEmail(q.Owner.Email)
	for _, p := range q.SameEmail {
		if NormalizeEmail(p.Email) == email {
			return refuse("platform user " + p.ID + " already has the owner's email")
		}
	}
	return ProvisionDecision{Request: true, Provision: Provision{
		Provider:    q.Provider,
		CRMUserID:   q.Owner.ID,
		Email:       email,
		FirstName:   q.Owner.FirstName,
		LastName:    q.Owner.LastName,
		RequestedAt: q.Now,
	}}
}

// HoldsAssignments reports whether owner assignments to the mapping's platform user must be held:
// the user was provisioned and has no team yet (rule 7).
func HoldsAssignments(m Mapping) bool { return m.Status == StatusPendingTeam }

// Errors of ValidateFallbackOwner.
var (
	ErrNoFallbackOwner       = errors.New("no fallback owner configured")
	ErrFallbackOwnerNotFound = errors.New("fallback owner not found")
	ErrFallbackOwnerInactive = errors.New("fallback owner is inactive")
	ErrFallbackOwnerQueue    = errors.New("fallback owner is a queue")
)

// ValidateFallbackOwner checks the provider's fallback owner (rule 8): the CRM user used as owner when
// a platform owner has no valid mapping. It must exist, be active and be a user, never a queue.
// lookup finds a CRM user by id. Errors wrap the ErrFallbackOwner… values above.
func ValidateFallbackOwner(id string, lookup func(id string) (CRMUser, bool)) (CRMUser, error) {
	if id == "" {
		return CRMUser{}, ErrNoFallbackOwner
	}
	u, ok := lookup(id)
	switch {
	case !ok:
		return CRMUser{}, fmt.Errorf("fallback owner %s: %w", id, ErrFallbackOwnerNotFound)
	case u.Kind != CRMKindUser:
		return CRMUser{}, fmt.Errorf("fallback owner %s: %w", id, ErrFallbackOwnerQueue)
	case !u.Active:
		return CRMUser{}, fmt.Errorf("fallback owner %s: %w", id, ErrFallbackOwnerInactive)
	}
	return u, nil
}
