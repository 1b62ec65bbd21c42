// Package kvview maintains the ownersync_mappings JetStream KV bucket
// (docs/architecture.md#kv-buckets): the current mapping per tenant and provider in both
// directions, so that writer and platform services resolve owners without querying MongoDB.
//
// The keys and values are the contract in libs/mappingkv (the writer reads them through it).
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

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// NewEntry builds the entry of a mapping; crm is the mapped CRM user (the zero value when unknown).
func NewEntry(tenant string, m mapping.Mapping, crm mapping.CRMUser) mappingkv.Entry {
	return mappingkv.Entry{
		Tenant: tenant, Provider: provider.Provider(m.Provider), PlatformUserID: m.PlatformUserID, CRMUserID: m.CRMUserID,
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
func (v *View) Sync(ctx context.Context, tenant string, prov provider.Provider, before, after []mappingkv.Entry, generation int64) error {
	want := make(map[string]mappingkv.Entry, 2*len(after))
	for _, e := range after {
		want[mappingkv.CRMKey(tenant, provider.Provider(prov), e.CRMUserID)] = e
		want[mappingkv.PlatformKey(tenant, provider.Provider(prov), e.PlatformUserID)] = e
	}
	had := make(map[string]mappingkv.Entry, 2*len(before))
	for _, e := range before {
		had[mappingkv.CRMKey(tenant, provider.Provider(prov), e.CRMUserID)] = e
		had[mappingkv.PlatformKey(tenant, provider.Provider(prov), e.PlatformUserID)] = e
	}
	var ops []op
	for k := range had {
		if _, ok := want[k]; !ok {
			ops = append(ops, op{key: k, del: true})
		}
	}
	for k, e := range want {
		if old, ok := had[k]; !ok || old != e {
			ops = append(ops, putOp(k, e))
		}
	}
	if err := write(ctx, v.js, v.kv.Bucket(), v.inflight, ops); err != nil {
		return fmt.Errorf("update mappings view %s/%s: %w", tenant, prov, err)
	}
	return v.putMeta(ctx, tenant, prov, generation)
}

// Rebuild replaces the view of a tenant's provider with entries (every mapping), deleting any
// other key of the provider, and sets the meta generation.
func (v *View) Rebuild(ctx context.Context, tenant string, prov provider.Provider, entries []mappingkv.Entry, generation int64) error {
	prefix := mappingkv.Prefix(tenant, provider.Provider(prov))
	lister, err := v.kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list mappings view %s/%s: %w", tenant, prov, err)
	}
	want := make(map[string]mappingkv.Entry, 2*len(entries))
	for _, e := range entries {
		want[mappingkv.CRMKey(tenant, provider.Provider(prov), e.CRMUserID)] = e
		want[mappingkv.PlatformKey(tenant, provider.Provider(prov), e.PlatformUserID)] = e
	}
	var ops []op
	if lister != nil {
		for k := range lister.Keys() {
			if _, ok := want[k]; !ok && k != mappingkv.MetaKey(tenant, provider.Provider(prov)) {
				ops = append(ops, op{key: k, del: true})
			}
		}
		_ = lister.Stop()
	}
	for k, e := range want {
		ops = append(ops, putOp(k, e))
	}
	if err := write(ctx, v.js, v.kv.Bucket(), v.inflight, ops); err != nil {
		return fmt.Errorf("rebuild mappings view %s/%s: %w", tenant, prov, err)
	}
	return v.putMeta(ctx, tenant, prov, generation)
}

// Generation returns the generation the view of a tenant's provider reflects, 0 when it has none.
func (v *View) Generation(ctx context.Context, tenant string, prov provider.Provider) (int64, error) {
	e, err := v.kv.Get(ctx, mappingkv.MetaKey(tenant, provider.Provider(prov)))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read mappings view meta %s/%s: %w", tenant, prov, err)
	}
	var m mappingkv.Meta
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return 0, nil // an unreadable meta is as good as none: rebuild
	}
	return m.Generation, nil
}

// Get returns the entry under a key.
func (v *View) Get(ctx context.Context, key string) (mappingkv.Entry, bool, error) {
	return mappingkv.Get(ctx, v.kv, key)
}

// Entries returns every entry of a tenant's provider by key (tests and checks).
func (v *View) Entries(ctx context.Context, tenant string, prov provider.Provider) (map[string]mappingkv.Entry, error) {
	prefix := mappingkv.Prefix(tenant, provider.Provider(prov))
	lister, err := v.kv.ListKeysFiltered(ctx, prefix+">")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]mappingkv.Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer lister.Stop()
	out := map[string]mappingkv.Entry{}
	for k := range lister.Keys() {
		if k == mappingkv.MetaKey(tenant, provider.Provider(prov)) {
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

func (v *View) putMeta(ctx context.Context, tenant string, prov provider.Provider, generation int64) error {
	b, _ := json.Marshal(mappingkv.Meta{Generation: generation, UpdatedAt: v.now().UTC()})
	if _, err := v.kv.Put(ctx, mappingkv.MetaKey(tenant, provider.Provider(prov)), b); err != nil {
		return fmt.Errorf("put mappings view meta %s/%s: %w", tenant, prov, err)
	}
	return nil
}

type op struct {
	key  string
	del  bool
	data []byte
}

func putOp(key string, e mappingkv.Entry) op {
	b, _ := mappingkv.Encode(e) // a struct of strings, bools and a time: never fails
	return op{key: key, data: b}
}

// write publishes ops to the bucket's stream ($KV.<bucket>.<key>; deletes carry KV-Operation: DEL,
// as KeyValue.Delete sends) and waits for every acknowledgement, at most inflight at once.
func write(ctx context.Context, js jetstream.JetStream, bucket string, inflight int, ops []op) error {
	subjectPrefix := "$KV." + bucket + "."
	futures := make([]jetstream.PubAckFuture, 0, min(len(ops), inflight))
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
			msg.Data = o.data
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			return err
		}
		futures = append(futures, f)
		if len(futures) >= inflight {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}
