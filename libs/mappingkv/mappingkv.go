// Package mappingkv is the contract of the ownersync_mappings JetStream KV bucket (the mapping
// view): its keys and its values. mapper writes the bucket (services/mapper internal/kvview) and
// the writer reads it (services/writer internal/mappingview); both use the types here, so the two
// sides cannot drift.
//
// # Keys
//
// Every key is built with streams.KVKey, which keeps [A-Za-z0-9-=] and escapes any other byte as
// _xx (so "_" in a tenant id becomes "_5f", "." in an id becomes "_2e"):
//
//	<tenant>.<provider>.crm.<crmUserId>            → Entry (CRM user → platform user)
//	<tenant>.<provider>.platform.<platformUserId>  → Entry (platform user → CRM user)
//	<tenant>.<provider>.meta                        → Meta  (the view's write generation)
//
// Salesforce user ids are the 18-character form. A key is deleted (a KV delete marker) when its
// mapping is removed. Both keys of one mapping hold the same Entry. Watch "<tenant>.<provider>.>"
// and skip the meta key to follow one connection.
//
// # Values
//
// Entry and Meta are JSON objects. A reader must check Usable (status synced) before moving owners
// through a mapping, and Active/Kind before writing a CRM owner: an entry may name a deactivated
// CRM user while its mapping waits for the next Sync Users (status error).
package mappingkv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
)

// Mapping statuses (mapper's mapping.Status values).
const (
	StatusSynced      = "synced"
	StatusConflict    = "conflict"
	StatusError       = "error"
	StatusPendingTeam = "pending_team"
)

// CRM user kinds.
const (
	KindUser  = "user"
	KindQueue = "queue"
)

// Entry is the value of both keys of one mapping.
type Entry struct {
	Tenant         string            `json:"tenant"`
	Provider       provider.Provider `json:"provider"`
	PlatformUserID string            `json:"platform_user_id"`
	CRMUserID      string            `json:"crm_user_id"`
	// Status is synced, conflict, error or pending_team.
	Status string `json:"status"`
	// Usable is true when owners may flow through the mapping now (Status synced).
	Usable bool `json:"usable"`
	// Active is the CRM user's active flag (Salesforce IsActive, HubSpot not archived).
	Active bool `json:"active"`
	// Kind is the CRM user's kind: user or queue.
	Kind string `json:"kind"`
	// MadeBy is email, manual, remap_inactive or auto_provisioned.
	MadeBy string `json:"made_by"`
	// Email is the platform user's email.
	Email     string    `json:"email,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Meta is the value of a tenant's provider meta key.
type Meta struct {
	// Generation is the MongoDB write generation the view reflects.
	Generation int64     `json:"generation"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// CRMKey is the key of a CRM user's entry.
func CRMKey(tenant string, p provider.Provider, crmUserID string) string {
	return streams.KVKey(tenant, string(p), "crm", crmUserID)
}

// PlatformKey is the key of a platform user's entry.
func PlatformKey(tenant string, p provider.Provider, platformUserID string) string {
	return streams.KVKey(tenant, string(p), "platform", platformUserID)
}

// MetaKey is the key of a tenant's provider meta value.
func MetaKey(tenant string, p provider.Provider) string {
	return streams.KVKey(tenant, string(p), "meta")
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
type Getter interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

var _ Getter = (jetstream.KeyValue)(nil)

// Get reads the entry under key; a missing or deleted key is no entry (false, nil).
func Get(ctx context.Context, kv Getter, key string) (Entry, bool, error) {
	return GetJSON[Entry](ctx, kv, key, "mapping")
}

// GetJSON reads the JSON value under key of a view bucket (this one or libs/crmuserkv's); a missing
// or deleted key is no value (false, nil). what names the value in errors.
func GetJSON[T any](ctx context.Context, kv Getter, key, what string) (T, bool, error) {
	var v T
	kve, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read %s %s: %w", what, key, err)
	}
	if err := json.Unmarshal(kve.Value(), &v); err != nil {
		return v, false, fmt.Errorf("decode %s %s: %w", what, key, err)
	}
	return v, true, nil
}
