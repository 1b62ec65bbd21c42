// Package crmuserkv is the contract of the ownersync_crm_users JetStream KV bucket (the CRM user
// directory view): every CRM user mapper knows per tenant and provider — mapped or not — with its
// kind and active flag. mapper writes the bucket (services/mapper internal/kvview) from Sync Users,
// CRM user events and user refreshes; the writer reads it (services/writer internal/mappingview),
// so that it knows the state of owners nobody maps to: the fallback owner (rule 8, never written when
// inactive) and CRM-side owners it must report as unassigned_queue or unassigned_inactive.
//
// # Keys
//
// Every key is built with streams.KVKey (see libs/mappingkv):
//
//	<tenant>.<provider>.<crmUserId>  → Entry
//	<tenant>.<provider>._meta        → Meta (when the directory of the provider was last rebuilt whole)
//
// Salesforce user and queue ids are the 18-character form; HubSpot ids are owner ids. A key is
// deleted (a KV delete marker) when the CRM no longer lists the user. The meta key's last token
// starts with "_", which streams.KVKey escapes in every id, so no user id can collide with it.
package crmuserkv

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
)

// CRM user kinds (the same words as libs/mappingkv's).
const (
	KindUser  = "user"
	KindQueue = "queue"
)

// Entry is what the directory says about one CRM user.
type Entry struct {
	Tenant    string            `json:"tenant"`
	Provider  provider.Provider `json:"provider"`
	CRMUserID string            `json:"crm_user_id"`
	// Kind is user or queue (a Salesforce queue, a HubSpot owner of type QUEUE).
	Kind string `json:"kind"`
	// Active is Salesforce IsActive, HubSpot "not archived".
	Active bool `json:"active"`
	// UserType is Salesforce's UserType (Standard, AutomatedProcess, …) when known: it tells an
	// integration or automated user from a person. Empty for HubSpot.
	UserType  string    `json:"user_type,omitempty"`
	Email     string    `json:"email,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Meta is the value of a provider's meta key.
type Meta struct {
	// RebuiltAt is when the directory of the provider was last written whole.
	RebuiltAt time.Time `json:"rebuilt_at"`
	Users     int       `json:"users"`
}

// Key is the key of a CRM user's entry.
func Key(tenant string, p provider.Provider, crmUserID string) string {
	return streams.KVKey(tenant, string(p), crmUserID)
}

// MetaKey is the key of a provider's meta value.
func MetaKey(tenant string, p provider.Provider) string {
	return streams.KVKey(tenant, string(p)) + "._meta"
}

// Prefix is the key prefix of every key of a tenant's provider, the final "." included.
func Prefix(tenant string, p provider.Provider) string {
	return streams.KVKey(tenant, string(p)) + "."
}

// Encode returns the JSON value of an entry.
func Encode(e Entry) ([]byte, error) { return json.Marshal(e) }

// Decode reads the JSON value of an entry.
func Decode(b []byte) (Entry, error) {
	var e Entry
	err := json.Unmarshal(b, &e)
	return e, err
}

// Getter is the part of jetstream.KeyValue Get needs.
type Getter = mappingkv.Getter

// Get reads the entry under key; a missing or deleted key is no entry (false, nil).
func Get(ctx context.Context, kv Getter, key string) (Entry, bool, error) {
	return mappingkv.GetJSON[Entry](ctx, kv, key, "crm user")
}
