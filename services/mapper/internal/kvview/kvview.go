// Package kvview maintains the ownersync_mappings JetStream KV bucket (DESIGN §4.4): the current
// mapping per tenant and provider in both directions, so that writer and platform services resolve
// owners without querying MongoDB.
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
// provider is "salesforce" or "hubspot"; Salesforce user ids are the 18-character form. A key is
// deleted (a KV delete marker) when its mapping is removed. Both keys of one mapping hold the same
// Entry. Watch "<tenant>.<provider>.>" and skip the meta key to follow one connection.
//
// # Values
//
// Entry and Meta are JSON objects; see their doc comments for the fields. A reader must check
// Usable (status synced) before moving owners through a mapping, and Active/Kind before writing a
// CRM owner: an entry may name a deactivated CRM user while its mapping waits for the next Sync
// Users (status error).
//
// # Consistency
//
// mapper writes MongoDB first and the view after, bumping a generation in MongoDB (kv_state)
// before each write and storing it under the meta key once the view is updated. At start a view
// whose meta generation is missing or behind MongoDB's is rebuilt from MongoDB (RebuildIfBehind).
package kvview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Entry is the value of both keys of one mapping.
type Entry struct {
	Tenant         string `json:"tenant"`
	Provider       string `json:"provider"`
	PlatformUserID string `json:"platform_user_id"`
	CRMUserID      string `json:"crm_user_id"`
	// Status is synced, conflict, error or pending_team (mapping.Status).
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
func CRMKey(tenant, provider, crmUserID string) string {
	return streams.KVKey(tenant, provider, "crm", crmUserID)
}

// PlatformKey is the key of a platform user's entry.
func PlatformKey(tenant, provider, platformUserID string) string {
	return streams.KVKey(tenant, provider, "platform", platformUserID)
}

// MetaKey is the key of a tenant's provider meta value.
func MetaKey(tenant, provider string) string { return streams.KVKey(tenant, provider, "meta") }

// NewEntry builds the entry of a mapping; crm is the mapped CRM user (the zero value when unknown).
func NewEntry(tenant string, m mapping.Mapping, crm mapping.CRMUser) Entry {
	return Entry{
		Tenant: tenant, Provider: m.Provider, PlatformUserID: m.PlatformUserID, CRMUserID: m.CRMUserID,
		Status: string(m.Status), Usable: m.Usable(), Active: crm.Active, Kind: string(crm.Kind),
		MadeBy: string(m.MadeBy), Email: m.Email, UpdatedAt: m.UpdatedAt.UTC(),
	}
}

// View writes the bucket.
type View struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
	// inflight bounds the asynchronous publishes awaited together.
	inflight int
	now      func() time.Time
}

// New returns a view over the declared bucket kv (streams.MappingsBucket).
func New(js jetstream.JetStream, kv jetstream.KeyValue) *View {
	return &View{js: js, kv: kv, inflight: 2048, now: time.Now}
}

// Sync makes the view of a tenant's provider go from before to after: keys of before that after
// lacks are deleted, entries of after that differ from before are put, and the meta key is set to
// generation. The entries may be all of the provider's (Sync Users) or one event's
// neighbourhood. Writes are asynchronous publishes to the bucket's stream, awaited in windows, so
// a 100k-mapping run takes seconds, not a round trip per key.
func (v *View) Sync(ctx context.Context, tenant, provider string, before, after []Entry, generation int64) error {
	want := make(map[string]Entry, 2*len(after))
	for _, e := range after {
		want[CRMKey(tenant, provider, e.CRMUserID)] = e
		want[PlatformKey(tenant, provider, e.PlatformUserID)] = e
	}
	had := make(map[string]Entry, 2*len(before))
	for _, e := range before {
		had[CRMKey(tenant, provider, e.CRMUserID)] = e
		had[PlatformKey(tenant, provider, e.PlatformUserID)] = e
	}
	var ops []op
	for k := range had {
		if _, ok := want[k]; !ok {
			ops = append(ops, op{key: k, del: true})
		}
	}
	for k, e := range want {
		if old, ok := had[k]; !ok || old != e {
			ops = append(ops, op{key: k, entry: e})
		}
	}
	if err := v.write(ctx, ops); err != nil {
		return fmt.Errorf("update mappings view %s/%s: %w", tenant, provider, err)
	}
	return v.putMeta(ctx, tenant, provider, generation)
}

// Rebuild replaces the view of a tenant's provider with entries (every mapping), deleting any
// other key of the provider, and sets the meta generation.
func (v *View) Rebuild(ctx context.Context, tenant, provider string, entries []Entry, generation int64) error {
	prefix := streams.KVKey(tenant, provider) + "."
	lister, err := v.kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list mappings view %s/%s: %w", tenant, provider, err)
	}
	want := make(map[string]Entry, 2*len(entries))
	for _, e := range entries {
		want[CRMKey(tenant, provider, e.CRMUserID)] = e
		want[PlatformKey(tenant, provider, e.PlatformUserID)] = e
	}
	var ops []op
	if lister != nil {
		for k := range lister.Keys() {
			if _, ok := want[k]; !ok && k != MetaKey(tenant, provider) {
				ops = append(ops, op{key: k, del: true})
			}
		}
		_ = lister.Stop()
	}
	for k, e := range want {
		ops = append(ops, op{key: k, entry: e})
	}
	if err := v.write(ctx, ops); err != nil {
		return fmt.Errorf("rebuild mappings view %s/%s: %w", tenant, provider, err)
	}
	return v.putMeta(ctx, tenant, provider, generation)
}

// Generation returns the generation the view of a tenant's provider reflects, 0 when it has none.
func (v *View) Generation(ctx context.Context, tenant, provider string) (int64, error) {
	e, err := v.kv.Get(ctx, MetaKey(tenant, provider))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read mappings view meta %s/%s: %w", tenant, provider, err)
	}
	var m Meta
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return 0, nil // an unreadable meta is as good as none: rebuild
	}
	return m.Generation, nil
}

// Get returns the entry under a key.
func (v *View) Get(ctx context.Context, key string) (Entry, bool, error) {
	e, err := v.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	var out Entry
	if err := json.Unmarshal(e.Value(), &out); err != nil {
		return Entry{}, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return out, true, nil
}

// Entries returns every entry of a tenant's provider by key (tests and checks).
func (v *View) Entries(ctx context.Context, tenant, provider string) (map[string]Entry, error) {
	prefix := streams.KVKey(tenant, provider) + "."
	lister, err := v.kv.ListKeysFiltered(ctx, prefix+">")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer lister.Stop()
	out := map[string]Entry{}
	for k := range lister.Keys() {
		if k == MetaKey(tenant, provider) {
			continue
		}
		e, ok, err := v.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = e
		}
	}
	return out, nil
}

func (v *View) putMeta(ctx context.Context, tenant, provider string, generation int64) error {
	b, _ := json.Marshal(Meta{Generation: generation, UpdatedAt: v.now().UTC()})
	if _, err := v.kv.Put(ctx, MetaKey(tenant, provider), b); err != nil {
		return fmt.Errorf("put mappings view meta %s/%s: %w", tenant, provider, err)
	}
	return nil
}

type op struct {
	key   string
	del   bool
	entry Entry
}

// write publishes ops to the bucket's stream ($KV.<bucket>.<key>; deletes carry KV-Operation: DEL,
// as KeyValue.Delete sends) and waits for every acknowledgement.
func (v *View) write(ctx context.Context, ops []op) error {
	subjectPrefix := "$KV." + v.kv.Bucket() + "."
	futures := make([]jetstream.PubAckFuture, 0, min(len(ops), v.inflight))
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for _, o := range ops {
		msg := nats.NewMsg(subjectPrefix + o.key)
		if o.del {
			msg.Header.Set("KV-Operation", "DEL")
		} else {
			b, err := json.Marshal(o.entry)
			if err != nil {
				return err
			}
			msg.Data = b
		}
		f, err := v.js.PublishMsgAsync(msg)
		if err != nil {
			return err
		}
		futures = append(futures, f)
		if len(futures) >= v.inflight {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}
