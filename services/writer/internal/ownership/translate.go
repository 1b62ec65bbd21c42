package ownership

import (
	"context"
	"fmt"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
)

// AssignOutcome is what the platform must do with a CRM owner change (OwnerAssign.outcome).
type AssignOutcome string

// Assign outcomes.
const (
	Assigned            AssignOutcome = "assigned"
	UnassignedNoMapping AssignOutcome = "unassigned_no_mapping"
	UnassignedQueue     AssignOutcome = "unassigned_queue"
	UnassignedInactive  AssignOutcome = "unassigned_inactive"
)

// Assignment is the decision for one CRM owner change.
type Assignment struct {
	// Skipped is true when the tenant's configuration does not let this change reach the platform
	// (direction, provider not connected, record type not synced): nothing is published, the change is
	// acknowledged and recorded with Reason.
	Skipped bool
	Outcome AssignOutcome
	// OwnerUserID is the platform user to assign; set only when Outcome is Assigned.
	OwnerUserID string
	// CRMOwnerID is the CRM owner the decision is about.
	CRMOwnerID string
	// Reason says in words why, for the platform, the history and the admin.
	Reason string
	// PlatformRecordID is the linked platform record, when the writer knows it (set by the caller).
	PlatformRecordID string
}

// WriteOutcome is what to do with one CRM for a platform owner change.
type WriteOutcome string

// Write outcomes.
const (
	// Write puts OwnerID (the platform owner's mapped CRM user) on the record; an empty OwnerID
	// clears the owner (HubSpot only).
	Write WriteOutcome = "write"
	// Fallback puts the tenant's fallback owner on the record; the history records why.
	Fallback WriteOutcome = "fallback"
	// Skipped writes nothing: the direction or the object modules say no, or there is nothing to do.
	Skipped WriteOutcome = "skipped"
	// Failed writes nothing and is an error the admin sees: no valid owner exists for the record.
	Failed WriteOutcome = "error"
)

// Target is the decision for one CRM for a platform owner change.
type Target struct {
	Provider provider.Provider
	Outcome  WriteOutcome
	// CRMRecordID is the record id the event carried for this provider; empty means the caller finds
	// the record by a stored link or by email.
	CRMRecordID string
	// OwnerID is the CRM owner to write when Outcome is Write or Fallback.
	OwnerID string
	Reason  string
	// FallbackInactive is set on a Failed target whose fallback owner is known to be inactive or
	// archived (rule 8): the writer raises one alert per tenant and provider for it, not one per
	// record.
	FallbackInactive bool
}

// ReasonFallbackInactive starts the reason of a change not written because the fallback owner is
// inactive or archived.
const ReasonFallbackInactive = "fallback owner inactive"

// Writes reports whether the target calls for a CRM write.
func (t Target) Writes() bool { return t.Outcome == Write || t.Outcome == Fallback }

// Translator turns owner changes into decisions using a mappings view.
type Translator struct {
	view View
}

// NewTranslator returns a Translator that looks mappings up in view.
func NewTranslator(view View) *Translator { return &Translator{view: view} }

// ToPlatform decides what a CRM owner change means for the platform. The error is a failed lookup,
// worth retrying; every other outcome is in the Assignment.
func (t *Translator) ToPlatform(ctx context.Context, pol Policy, ch CRMOwnerChange) (Assignment, error) {
	if a, skip := SkipCRMChange(pol, ch); skip {
		return a, nil
	}
	if ch.OwnerID == "" || isQueue(ch.Provider, ch.OwnerID, ch.OwnerKind) {
		return Assign(ch, Mapping{}, false), nil
	}
	m, found, err := t.view.ByCRMUser(ctx, ch.Tenant, ch.Provider, ch.OwnerID)
	if err != nil {
		return Assignment{}, fmt.Errorf("look up %s user %s: %w", ch.Provider, ch.OwnerID, err)
	}
	return Assign(ch, m, found), nil
}

// SkipCRMChange returns a skipped Assignment and true when the tenant's configuration keeps the
// change from the platform (provider not connected, direction, object modules).
func SkipCRMChange(pol Policy, ch CRMOwnerChange) (Assignment, bool) {
	skip := func(format string, a ...any) (Assignment, bool) {
		return Assignment{Skipped: true, CRMOwnerID: ch.OwnerID, Reason: fmt.Sprintf(format, a...)}, true
	}
	pp, ok := pol.Providers[ch.Provider]
	switch {
	case !ok || !pp.Enabled:
		return skip("%s is not connected for tenant %s", ch.Provider, pol.Tenant)
	case !pp.Direction.AllowsCRMToPlatform():
		return skip("direction for %s is %s: CRM owner changes do not reach the platform", ch.Provider, pp.Direction)
	case !pp.Syncs(ch.RecordType):
		return skip("%s object modules do not include %s", ch.Provider, ch.RecordType)
	}
	return Assignment{}, false
}

// Assign decides the OwnerAssign outcome of a CRM owner change from the mapping of its owner (found
// is false when the view has none). Queues and cleared owners need no mapping.
func Assign(ch CRMOwnerChange, m Mapping, found bool) Assignment {
	a := Assignment{CRMOwnerID: ch.OwnerID}
	switch {
	case ch.OwnerID == "":
		a.Outcome = UnassignedNoMapping
		a.Reason = fmt.Sprintf("the %s owner of the %s was cleared", ch.Provider, ch.RecordType)
	case isQueue(ch.Provider, ch.OwnerID, ch.OwnerKind) || found && m.CRMUserKind == KindQueue:
		a.Outcome = UnassignedQueue
		a.Reason = fmt.Sprintf("%s owner %s is a queue, not a user", ch.Provider, ch.OwnerID)
	case !found || m.PlatformUserID == "":
		a.Outcome = UnassignedNoMapping
		a.Reason = fmt.Sprintf("%s user %s is not mapped to a platform user", ch.Provider, ch.OwnerID)
		if found && !m.CRMUserActive {
			a.Outcome = UnassignedInactive
			a.Reason = fmt.Sprintf("%s user %s is inactive and not mapped to a platform user", ch.Provider, ch.OwnerID)
		}
	case !m.CRMUserActive:
		a.Outcome = UnassignedInactive
		a.Reason = fmt.Sprintf("%s user %s is inactive", ch.Provider, ch.OwnerID)
	default:
		a.Outcome = Assigned
		a.OwnerUserID = m.PlatformUserID
		a.Reason = fmt.Sprintf("%s user %s maps to platform user %s", ch.Provider, ch.OwnerID, m.PlatformUserID)
	}
	return a
}

// ToCRM decides, for every connected CRM in a stable order (Salesforce, then HubSpot), what a platform
// owner change means for it. The error is a failed lookup, worth retrying.
func (t *Translator) ToCRM(ctx context.Context, pol Policy, ch PlatformOwnerChange) ([]Target, error) {
	var out []Target
	for _, p := range pol.connected() {
		pp := pol.Providers[p]
		tg := Target{Provider: p, CRMRecordID: ch.CRMRecordIDs[p]}
		switch {
		case !pp.Direction.AllowsPlatformToCRM():
			tg.Outcome = Skipped
			tg.Reason = fmt.Sprintf("direction for %s is %s: platform owner changes do not reach it", p, pp.Direction)
			out = append(out, tg)
			continue
		case !pp.Syncs(ch.RecordType):
			tg.Outcome = Skipped
			tg.Reason = fmt.Sprintf("%s object modules do not include %s", p, ch.RecordType)
			out = append(out, tg)
			continue
		}
		var (
			m       Mapping
			found   bool
			fb      Mapping
			fbFound bool
			err     error
		)
		if ch.OwnerUserID != "" {
			m, found, err = t.view.ByPlatformUser(ctx, ch.Tenant, p, ch.OwnerUserID)
			if err != nil {
				return nil, fmt.Errorf("look up %s mapping of platform user %s: %w", p, ch.OwnerUserID, err)
			}
		}
		if needsFallback(p, ch, m, found) && pp.FallbackOwnerID != "" {
			fb, fbFound, err = t.view.ByCRMUser(ctx, ch.Tenant, p, pp.FallbackOwnerID)
			if err != nil {
				return nil, fmt.Errorf("look up %s fallback owner %s: %w", p, pp.FallbackOwnerID, err)
			}
		}
		d := Decide(p, pp, ch, m, found, fb, fbFound)
		d.CRMRecordID = tg.CRMRecordID
		out = append(out, d)
	}
	return out, nil
}

// needsFallback reports whether Decide will look at the fallback owner.
func needsFallback(p provider.Provider, ch PlatformOwnerChange, m Mapping, found bool) bool {
	if ch.OwnerUserID == "" {
		return p != provider.HubSpot
	}
	if !found || m.CRMUserID == "" {
		return true
	}
	_, ok := usableOwner(p, ch.RecordType, m.CRMUserID, m.CRMUserKind, m.CRMUserActive)
	return !ok
}

// Decide is the pure core of ToCRM for one provider whose direction and modules allow the change:
// m is the platform owner's mapping (found false when none) and fb what the view knows about the
// fallback owner (fbFound false when nothing; an unknown fallback owner is trusted, and the CRM's
// INACTIVE_OWNER_OR_USER answer corrects it).
//
// An owner cleared on the platform clears hubspot_owner_id; Salesforce cannot leave a record without
// an owner (INVALID_EMPTY_KEY_OWNER), so it gets the fallback owner, or keeps its owner when none is
// configured.
func Decide(p provider.Provider, pp ProviderPolicy, ch PlatformOwnerChange, m Mapping, found bool, fb Mapping, fbFound bool) Target {
	tg := Target{Provider: p, CRMRecordID: ch.CRMRecordIDs[p]}
	var why string
	switch {
	case ch.OwnerUserID == "" && p == provider.HubSpot:
		tg.Outcome = Write
		tg.Reason = "the owner was cleared on the platform"
		return tg
	case ch.OwnerUserID == "":
		why = "the owner was cleared on the platform"
		if pp.FallbackOwnerID == "" {
			tg.Outcome = Skipped
			tg.Reason = why + " and a Salesforce record cannot be without an owner; no fallback owner is configured, so the record keeps its owner"
			return tg
		}
	case !found || m.CRMUserID == "":
		why = fmt.Sprintf("platform user %s has no %s mapping", ch.OwnerUserID, p)
	default:
		prob, ok := usableOwner(p, ch.RecordType, m.CRMUserID, m.CRMUserKind, m.CRMUserActive)
		if ok {
			tg.Outcome = Write
			tg.OwnerID = m.CRMUserID
			tg.Reason = fmt.Sprintf("platform user %s maps to %s user %s", ch.OwnerUserID, p, m.CRMUserID)
			return tg
		}
		why = fmt.Sprintf("platform user %s maps to %s user %s, who %s", ch.OwnerUserID, p, m.CRMUserID, prob)
	}
	if pp.FallbackOwnerID == "" {
		tg.Outcome = Failed
		tg.Reason = why + " and no fallback owner is configured for " + string(p)
		return tg
	}
	kind, active := KindUser, true
	if fbFound {
		kind, active = fb.CRMUserKind, fb.CRMUserActive
	}
	if prob, ok := usableOwner(p, ch.RecordType, pp.FallbackOwnerID, kind, active); !ok {
		tg.Outcome = Failed
		tg.Reason = fmt.Sprintf("%s, and the fallback owner %s %s", why, pp.FallbackOwnerID, prob)
		if !active {
			tg.FallbackInactive = true
			tg.Reason = fmt.Sprintf("%s: %s %s is inactive or archived; %s", ReasonFallbackInactive, p, pp.FallbackOwnerID, why)
		}
		return tg
	}
	tg.Outcome = Fallback
	tg.OwnerID = pp.FallbackOwnerID
	tg.Reason = fmt.Sprintf("%s; fallback owner %s used", why, pp.FallbackOwnerID)
	return tg
}

// usableOwner reports whether a CRM user may own a record of type rt, and if not, why (a phrase
// that follows "who"). Inactive and archived users never own; a queue owns only a Salesforce Lead.
func usableOwner(p provider.Provider, rt RecordType, id string, kind OwnerKind, active bool) (string, bool) {
	queue := isQueue(p, id, kind)
	switch {
	case p == provider.Salesforce && !queue && sfid.Prefix(id) != sfid.PrefixUser:
		return "is not a Salesforce user or queue id", false
	case !active:
		return "is inactive or archived", false
	case queue && !(p == provider.Salesforce && rt == Lead):
		return fmt.Sprintf("is a queue, and a %s %s must be owned by a user", p, rt), false
	}
	return "", true
}

// isQueue reports whether a CRM owner is a queue: by its kind, or by the Salesforce 00G prefix.
func isQueue(p provider.Provider, id string, kind OwnerKind) bool {
	return kind == KindQueue || p == provider.Salesforce && sfid.Prefix(id) == sfid.PrefixQueue
}
