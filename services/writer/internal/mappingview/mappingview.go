// Package mappingview reads the ownersync_mappings KV bucket that mapper maintains as the writer's
// ownership.View. The keys and values are the contract in libs/mappingkv; lookups put Salesforce
// ids in the 18-character form the keys use.
//
// New reads the bucket on every lookup (one KV Get). NewWatched keeps a copy of the bucket in
// memory, current through a watch, and answers from it: a change costs no round trip for its
// mapping. A key the copy lacks is still read from the bucket, so a mapping written a moment ago
// is never missed, only a change to an existing one can be seen a few milliseconds late (the
// watch's delay); if the watch stops, every lookup reads the bucket again.
package mappingview

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// View implements ownership.View over the bucket.
type View struct {
	kv mappingkv.Getter

	mu      sync.RWMutex
	copy    map[string]mappingkv.Entry // nil: not watching, read the bucket
	stopped chan struct{}              // closed when the watch has ended (NewWatched)
}

// New returns a View over the ownersync_mappings bucket that reads the bucket on every lookup.
func New(kv mappingkv.Getter) *View { return &View{kv: kv} }

// Watcher is the part of jetstream.KeyValue a watched view needs.
type Watcher interface {
	mappingkv.Getter
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// NewWatched returns a View that answers from an in-memory copy of the bucket, kept current by a
// watch until ctx ends. It returns once the copy holds every current value (or with ctx's error
// if ctx ends first). Done is closed when the watch has ended.
func NewWatched(ctx context.Context, kv Watcher) (*View, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch mappings: %w", err)
	}
	v := &View{kv: kv, copy: map[string]mappingkv.Entry{}, stopped: make(chan struct{})}
	loaded := make(chan struct{})
	go v.follow(w, loaded)
	select {
	case <-loaded:
		return v, nil
	case <-v.stopped:
		return nil, fmt.Errorf("watch mappings: the watch ended before the initial values: %w", context.Cause(ctx))
	case <-ctx.Done():
		_ = w.Stop()
		return nil, fmt.Errorf("watch mappings: %w", context.Cause(ctx))
	}
}

// Done is closed when the watch of a NewWatched view has ended (never for New's).
func (v *View) Done() <-chan struct{} { return v.stopped }

// follow applies the watch's updates to the copy; a nil update marks the end of the initial
// values. When the updates end, the copy is dropped and lookups read the bucket.
func (v *View) follow(w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(v.stopped)
	defer func() {
		v.mu.Lock()
		v.copy = nil
		v.mu.Unlock()
	}()
	for u := range w.Updates() {
		if u == nil {
			if loaded != nil {
				close(loaded)
				loaded = nil
			}
			continue
		}
		e, err := mappingkv.Decode(u.Value())
		keep := u.Operation() == jetstream.KeyValuePut && err == nil
		v.mu.Lock()
		if keep {
			v.copy[u.Key()] = e
		} else {
			// Deleted, purged, or not decodable: the lookup reads the bucket and says so.
			delete(v.copy, u.Key())
		}
		v.mu.Unlock()
	}
}

var _ ownership.View = (*View)(nil)

// ByCRMUser looks up the platform user of a CRM user. A mapping that cannot carry owners now
// (conflict, error) is returned with an empty PlatformUserID, so that the CRM user's active flag
// still counts. A pending_team mapping (an auto-provisioned platform user without a team, rule 7)
// keeps its platform user: the assignment is sent, and the platform holds it until the user has a
// team.
func (v *View) ByCRMUser(ctx context.Context, tenant string, p provider.Provider, crmUserID string) (ownership.Mapping, bool, error) {
	e, found, err := v.get(ctx, mappingkv.CRMKey(tenant, p, normID(p, crmUserID)))
	if err != nil || !found {
		return ownership.Mapping{}, false, err
	}
	m := mapping(e)
	if !e.Usable && e.Status != mappingkv.StatusPendingTeam {
		m.PlatformUserID = ""
	}
	return m, true, nil
}

// ByPlatformUser looks up the CRM user of a platform user. A mapping that cannot carry owners now is
// no mapping, unless its CRM user is inactive: then it is returned as inactive, so the decision says
// why the fallback owner was used.
func (v *View) ByPlatformUser(ctx context.Context, tenant string, p provider.Provider, platformUserID string) (ownership.Mapping, bool, error) {
	e, found, err := v.get(ctx, mappingkv.PlatformKey(tenant, p, platformUserID))
	if err != nil || !found {
		return ownership.Mapping{}, false, err
	}
	if !e.Usable && e.Active {
		return ownership.Mapping{}, false, nil
	}
	return mapping(e), true, nil
}

func mapping(e mappingkv.Entry) ownership.Mapping {
	m := ownership.Mapping{PlatformUserID: e.PlatformUserID, CRMUserID: e.CRMUserID, CRMUserActive: e.Active}
	if e.Kind == mappingkv.KindQueue {
		m.CRMUserKind = ownership.KindQueue
	}
	return m
}

func (v *View) get(ctx context.Context, key string) (mappingkv.Entry, bool, error) {
	v.mu.RLock()
	e, ok := v.copy[key]
	v.mu.RUnlock()
	if ok {
		return e, true, nil
	}
	return mappingkv.Get(ctx, v.kv, key)
}

// normID puts a Salesforce id in the 18-character form the keys use.
func normID(p provider.Provider, id string) string {
	if p == provider.Salesforce {
		if id18, err := sfid.To18(id); err == nil {
			return id18
		}
	}
	return id
}
