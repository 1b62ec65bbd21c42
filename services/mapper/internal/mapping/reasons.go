package mapping

import (
	"fmt"
	"strconv"
)

// Reasons given with changes and statuses. They are sentences for the admin, not codes.
const (
	reasonEmailMatch         = "the platform user and the CRM user have the same email"
	reasonProvisioned        = "the platform user was provisioned for this CRM user"
	reasonPendingTeam        = "the provisioned platform user has no team yet; owner assignments are held"
	reasonResolved           = "the mapping is valid again"
	reasonPlatformNotFound   = "the platform user no longer exists"
	reasonPlatformDeleted    = "the platform user was deleted"
	reasonPlatformSuspended  = "the platform user is suspended"
	reasonExtension          = "the platform user is an extension, which is never mapped"
	reasonCallDestination    = "the platform user is a call destination, which is never mapped"
	reasonNotPerson          = "the platform user is not a person, which is never mapped"
	reasonQueue              = "the CRM user is a queue, which is never mapped"
	reasonDuplicatePlatform  = "another mapping of the same platform user takes precedence"
	reasonDuplicateCRM       = "another mapping of the same CRM user takes precedence"
	reasonSalesforceNotFound = "the Salesforce user no longer exists"
	reasonHubSpotNotFound    = "the HubSpot owner no longer exists"
	reasonCRMNotFound        = "the CRM user no longer exists"
	reasonSalesforceInactive = "the Salesforce user was deactivated"
	reasonHubSpotArchived    = "the HubSpot owner was archived"
	reasonCRMInactive        = "the CRM user was deactivated"
	reasonPinned             = "mapped manually by the admin"
	reasonUnpinned           = "unmapped by the admin"
)

func (e *engine) crmNotFoundReason() string {
	switch e.in.Provider {
	case Salesforce:
		return reasonSalesforceNotFound
	case HubSpot:
		return reasonHubSpotNotFound
	}
	return reasonCRMNotFound
}

func (e *engine) crmInactiveReason() string {
	switch e.in.Provider {
	case Salesforce:
		return reasonSalesforceInactive
	case HubSpot:
		return reasonHubSpotArchived
	}
	return reasonCRMInactive
}

// crmWord names a CRM user the way the provider's admins do.
func (e *engine) crmWord() string {
	switch e.in.Provider {
	case Salesforce:
		return "Salesforce user"
	case HubSpot:
		return "HubSpot owner"
	}
	return "CRM user"
}

func (e *engine) inactiveWord() string {
	if e.in.Provider == HubSpot {
		return "archived"
	}
	return "deactivated"
}

func emailChangedReason(crmEmail, platformEmail string) string {
	return fmt.Sprintf("the CRM user's email (%s) no longer matches the platform user's email (%s)", crmEmail, platformEmail)
}

func remapReason(from, to string) string {
	return fmt.Sprintf("CRM user %s was deactivated; %s is the one other active CRM user with the same email", from, to)
}

func remapTakenReason(candidate string) string {
	return fmt.Sprintf("the CRM user was deactivated and the other active CRM user with the same email (%s) is mapped to another platform user", candidate)
}

// remapNowAmbiguousReason is why a remap_inactive mapping is a conflict: rule 4 moved it to the one
// active user with the email, and another active user has the email now (rule 2 forbids choosing).
func remapNowAmbiguousReason(n int) string {
	return "the mapping was moved to this CRM user when the previous one was deactivated, but " + strconv.Itoa(n) +
		" active CRM users have the email now; map the platform user manually to the right one"
}

func ambiguousRemapReason(n int) string {
	return "the CRM user was deactivated and " + strconv.Itoa(n) + " other active CRM users have the same email"
}

func platformDuplicateMessage(e *engine, s slot) string {
	return fmt.Sprintf("%d platform users share this email (%s, %s%s)", s.n,
		e.in.PlatformUsers[s.first].ID, e.in.PlatformUsers[s.second].ID, more(s.n))
}

func crmDuplicateMessage(e *engine, s slot) string {
	return fmt.Sprintf("%d active %ss share this email (%s, %s%s)", s.n, e.crmWord(),
		e.in.CRMUsers[s.first].ID, e.in.CRMUsers[s.second].ID, more(s.n))
}

func more(n int32) string {
	if n > 2 {
		return ", …"
	}
	return ""
}
