// Package ownership is the writer's domain: it decides what an owner change on one side means for
// the other side (docs/architecture.md#owner-writeback). It translates a CRM owner to a platform
// user and a platform user to each connected CRM's user, applies the tenant's direction, object
// modules and fallback owner, tells our own echoes and stale deliveries from real changes, and
// classifies CRM errors.
//
// The package is pure: no NATS, Mongo, HTTP framework or generated proto types. Adapters convert
// events and tenant configuration into the types here and act on the decisions.
package ownership

import (
	"context"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
)

// RecordType is the kind of record whose owner changed.
type RecordType string

// Record types.
const (
	Contact RecordType = "contact"
	Lead    RecordType = "lead"
)

// OwnerKind says whether a CRM owner is a person or a queue (Salesforce 00G…, HubSpot type QUEUE).
type OwnerKind string

// Owner kinds.
const (
	KindUser  OwnerKind = "user"
	KindQueue OwnerKind = "queue"
)

// Direction says which way owners flow between the platform and one CRM.
type Direction string

// Directions; the values are the tenant configuration's.
const (
	Bidirectional Direction = "bidirectional"
	CRMToPlatform Direction = "crm_to_platform"
	PlatformToCRM Direction = "platform_to_crm"
)

// AllowsCRMToPlatform reports whether CRM owner changes reach the platform. An empty direction is
// the default, bidirectional.
func (d Direction) AllowsCRMToPlatform() bool {
	return d == Bidirectional || d == CRMToPlatform || d == ""
}

// AllowsPlatformToCRM reports whether platform owner changes reach the CRM. An empty direction is
// the default, bidirectional.
func (d Direction) AllowsPlatformToCRM() bool {
	return d == Bidirectional || d == PlatformToCRM || d == ""
}

// CRMOwnerChange is a record's owner changing in a CRM (from CrmOwnerChanged).
type CRMOwnerChange struct {
	EventID    string
	Tenant     string
	Provider   provider.Provider
	RecordType RecordType
	// RecordID is the CRM record id (Salesforce 18-character form, HubSpot object id).
	RecordID string
	Email    string
	// OwnerID is the new owner: a Salesforce User/Queue id or a HubSpot owner id; empty when cleared.
	OwnerID    string
	OwnerKind  OwnerKind
	OccurredAt time.Time
	// ChangeSource and ActorID say who made the change (HubSpot changeSource/sourceId, Salesforce
	// LastModifiedById) when the CRM tells.
	ChangeSource string
	ActorID      string
}

// PlatformOwnerChange is a record's owner changing on the platform (from PlatformOwnerChanged).
type PlatformOwnerChange struct {
	EventID          string
	Tenant           string
	RecordType       RecordType
	PlatformRecordID string
	Email            string
	// OwnerUserID is the new owner's platform user id; empty when the record was unassigned.
	OwnerUserID string
	// CRMRecordIDs holds the CRM record id per provider when the platform knows it.
	CRMRecordIDs map[provider.Provider]string
	OccurredAt   time.Time
}

// Mapping is what the mappings view knows about a CRM user and the platform user it maps to.
// A view may know a CRM user that maps to nobody (PlatformUserID empty), which still tells whether
// that user is active.
type Mapping struct {
	PlatformUserID string
	CRMUserID      string
	CRMUserActive  bool
	// CRMUserKind is KindQueue for queues; empty means a user.
	CRMUserKind OwnerKind
}

// View looks mappings up for one tenant and provider; the writer's implementation reads the
// ownersync_mappings KV bucket that mapper maintains. found is false when there is no mapping;
// err is for lookups that failed and may succeed later.
type View interface {
	ByCRMUser(ctx context.Context, tenant string, provider provider.Provider, crmUserID string) (m Mapping, found bool, err error)
	ByPlatformUser(ctx context.Context, tenant string, provider provider.Provider, platformUserID string) (m Mapping, found bool, err error)
}

// ProviderPolicy is the part of a tenant's configuration for one CRM that owner writeback obeys.
type ProviderPolicy struct {
	// Enabled is false for a configured but switched-off connection.
	Enabled   bool
	Direction Direction
	// RecordTypes are the object modules synced; empty means contacts only.
	RecordTypes []RecordType
	// FallbackOwnerID is the CRM user that owns records whose platform owner has no valid mapping.
	FallbackOwnerID string
	// AutoProvisioning is on when mapper provisions platform users for unmatched CRM owners
	// (docs/architecture.md#rule-7-auto-provisioning); the writer then waits a little for the
	// mapping before it reports a change as unassigned.
	AutoProvisioning bool
}

// Syncs reports whether the policy syncs owners of record type t.
func (p ProviderPolicy) Syncs(t RecordType) bool {
	if len(p.RecordTypes) == 0 {
		return t == Contact
	}
	for _, r := range p.RecordTypes {
		if r == t {
			return true
		}
	}
	return false
}

// Policy is a tenant's writeback configuration: one ProviderPolicy per connected CRM.
type Policy struct {
	Tenant    string
	Providers map[provider.Provider]ProviderPolicy
}

// connected lists the enabled providers in a stable order.
func (p Policy) connected() []provider.Provider {
	var out []provider.Provider
	for _, pr := range provider.All {
		if pp, ok := p.Providers[pr]; ok && pp.Enabled {
			out = append(out, pr)
		}
	}
	return out
}
