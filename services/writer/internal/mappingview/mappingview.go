// Package mappingview reads the ownersync_mappings KV bucket that mapper maintains (DESIGN §4.4) as
// the writer's ownership.View. Keys and values are mapper's contract (services/mapper kvview):
//
//	<tenant>.<provider>.crm.<crmUserId>            → entry (CRM user → platform user)
//	<tenant>.<provider>.platform.<platformUserId>  → entry (platform user → CRM user)
//
// built with streams.KVKey, Salesforce ids in their 18-character form, a JSON entry per key and a
// delete marker for a removed mapping. Each lookup is one KV Get, always current.
package mappingview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// Getter is the part of jetstream.KeyValue the view reads.
type Getter interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
}

var _ Getter = (jetstream.KeyValue)(nil)

// entry is the JSON value of one key: the fields of mapper's kvview.Entry the writer uses.
type entry struct {
	PlatformUserID string `json:"platform_user_id"`
	CRMUserID      string `json:"crm_user_id"`
	Status         string `json:"status"`
	// Usable: owners may flow through the mapping now (status synced).
	Usable bool `json:"usable"`
	// Active is the CRM user's active flag; Kind is user or queue.
	Active bool   `json:"active"`
	Kind   string `json:"kind"`
}

// View implements ownership.View over the bucket.
type View struct {
	kv Getter
}

// New returns a View over the ownersync_mappings bucket.
func New(kv Getter) *View { return &View{kv: kv} }

var _ ownership.View = (*View)(nil)

// ByCRMUser looks up the platform user of a CRM user. A mapping that cannot carry owners now
// (conflict, error, pending team) is returned with an empty PlatformUserID, so that the CRM user's
// active flag still counts.
func (v *View) ByCRMUser(ctx context.Context, tenant string, p ownership.Provider, crmUserID string) (ownership.Mapping, bool, error) {
	e, found, err := v.get(ctx, streams.KVKey(tenant, string(p), "crm", normID(p, crmUserID)))
	if err != nil || !found {
		return ownership.Mapping{}, false, err
	}
	m := e.mapping()
	if !e.Usable {
		m.PlatformUserID = ""
	}
	return m, true, nil
}

// ByPlatformUser looks up the CRM user of a platform user. A mapping that cannot carry owners now is
// no mapping, unless its CRM user is inactive: then it is returned as inactive, so the decision says
// why the fallback owner was used.
func (v *View) ByPlatformUser(ctx context.Context, tenant string, p ownership.Provider, platformUserID string) (ownership.Mapping, bool, error) {
	e, found, err := v.get(ctx, streams.KVKey(tenant, string(p), "platform", platformUserID))
	if err != nil || !found {
		return ownership.Mapping{}, false, err
	}
	if !e.Usable && e.Active {
		return ownership.Mapping{}, false, nil
	}
	return e.mapping(), true, nil
}

func (e entry) mapping() ownership.Mapping {
	m := ownership.Mapping{PlatformUserID: e.PlatformUserID, CRMUserID: e.CRMUserID, CRMUserActive: e.Active}
	if e.Kind == string(ownership.KindQueue) {
		m.CRMUserKind = ownership.KindQueue
	}
	return m
}

func (v *View) get(ctx context.Context, key string) (entry, bool, error) {
	kve, err := v.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("read mapping %s: %w", key, err)
	}
	var e entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return entry{}, false, fmt.Errorf("decode mapping %s: %w", key, err)
	}
	return e, true, nil
}

// normID puts a Salesforce id in the 18-character form the keys use.
func normID(p ownership.Provider, id string) string {
	if p == ownership.Salesforce {
		if id18, err := sfid.To18(id); err == nil {
			return id18
		}
	}
	return id
}
