// Package mappingview reads the ownersync_mappings KV bucket that mapper maintains as the writer's
// ownership.View, and the ownersync_crm_users directory bucket for CRM users nobody maps to. The keys and values are the contract in libs/mappingkv; lookups put Salesforce
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

	"github.com/ownersync/ownersync/libs/crmuserkv"
	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// View implements ownership.View over the bucket, and over the CRM user directory bucket
// (ownersync_crm_users, libs/crmuserkv) when it has one.
type View struct {
	maps *copyOf[mappingkv.Entry]
	dir  *copyOf[crmuserkv.Entry] // nil: no directory
}

// New returns a View over the ownersync_mappings bucket that reads the bucket on every lookup.
func New(kv mappingkv.Getter) *View {
	return &View{maps: &copyOf[mappingkv.Entry]{get: func(ctx context.Context, key string) (mappingkv.Entry, bool, error) {
		return mappingkv.Get(ctx, kv, key)
	}}}
}

// WithDirectory returns v reading the CRM user directory bucket too (on every lookup).
func (v *View) WithDirectory(kv crmuserkv.Getter) *View {
	return &View{maps: v.maps, dir: &copyOf[crmuserkv.Entry]{get: func(ctx context.Context, key string) (crmuserkv.Entry, bool, error) {
		return crmuserkv.Get(ctx, kv, key)
	}}}
}

// Watcher is the part of jetstream.KeyValue a watched view needs.
type Watcher interface {
	mappingkv.Getter
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// NewWatched returns a View that answers from an in-memory copy of the mappings bucket (and of the
// directory bucket, when dir is not nil), kept current by a watch until ctx ends. It returns once
// the copies hold every current value (or with ctx's error if ctx ends first). Done is closed when
// the mappings watch has ended.
func NewWatched(ctx context.Context, kv Watcher, dir ...Watcher) (*View, error) {
	maps, err := watch(ctx, kv, "mappings", func(ctx context.Context, key string) (mappingkv.Entry, bool, error) {
		return mappingkv.Get(ctx, kv, key)
	}, mappingkv.Decode)
	if err != nil {
		return nil, err
	}
	v := &View{maps: maps}
	if len(dir) > 0 && dir[0] != nil {
		d := dir[0]
		if v.dir, err = watch(ctx, d, "crm user directory", func(ctx context.Context, key string) (crmuserkv.Entry, bool, error) {
			return crmuserkv.Get(ctx, d, key)
		}, crmuserkv.Decode); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Done is closed when the watch of a NewWatched view has ended (never for New's).
func (v *View) Done() <-chan struct{} { return v.maps.stopped }

// copyOf is a bucket read through get, or answered from an in-memory copy kept by a watch.
type copyOf[T any] struct {
	get     func(ctx context.Context, key string) (T, bool, error)
	mu      sync.RWMutex
	copy    map[string]T  // nil: not watching, read the bucket
	stopped chan struct{} // closed when the watch has ended (watched copies)
}

func watch[T any](ctx context.Context, kv Watcher, what string, get func(context.Context, string) (T, bool, error), decode func([]byte) (T, error)) (*copyOf[T], error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", what, err)
	}
	c := &copyOf[T]{get: get, copy: map[string]T{}, stopped: make(chan struct{})}
	loaded := make(chan struct{})
	go c.follow(w, loaded, decode)
	select {
	case <-loaded:
		return c, nil
	case <-c.stopped:
		return nil, fmt.Errorf("watch %s: the watch ended before the initial values: %w", what, context.Cause(ctx))
	case <-ctx.Done():
		_ = w.Stop()
		return nil, fmt.Errorf("watch %s: %w", what, context.Cause(ctx))
	}
}

// follow applies the watch's updates to the copy; a nil update marks the end of the initial
// values. When the updates end, the copy is dropped and lookups read the bucket.
func (c *copyOf[T]) follow(w jetstream.KeyWatcher, loaded chan struct{}, decode func([]byte) (T, error)) {
	defer close(c.stopped)
	defer func() {
		c.mu.Lock()
		c.copy = nil
		c.mu.Unlock()
	}()
	for u := range w.Updates() {
		if u == nil {
			if loaded != nil {
				close(loaded)
				loaded = nil
			}
			continue
		}
		e, err := decode(u.Value())
		keep := u.Operation() == jetstream.KeyValuePut && err == nil
		c.mu.Lock()
		if keep {
			c.copy[u.Key()] = e
		} else {
			// Deleted, purged, or not decodable: the lookup reads the bucket and says so.
			delete(c.copy, u.Key())
		}
		c.mu.Unlock()
	}
}

func (c *copyOf[T]) lookup(ctx context.Context, key string) (T, bool, error) {
	c.mu.RLock()
	e, ok := c.copy[key]
	c.mu.RUnlock()
	if ok {
		return e, true, nil
	}
	return c.get(ctx, key)
}

var _ ownership.View = (*View)(nil)

// ByCRMUser looks up the platform user of a CRM user. A mapping that cannot carry owners now
// (conflict, error) is returned with an empty PlatformUserID, so that the CRM user's active flag
// still counts; so is a CRM user nobody maps to that the directory knows (its kind and active
// flag decide unassigned_queue or unassigned_inactive, and whether a fallback owner may be written). A pending_team mapping (an auto-provisioned platform user without a team, rule 7)
// keeps its platform user: the assignment is sent, and the platform holds it until the user has a
// team.
func (v *View) ByCRMUser(ctx context.Context, tenant string, p provider.Provider, crmUserID string) (ownership.Mapping, bool, error) {
	id := normID(p, crmUserID)
	e, found, err := v.maps.lookup(ctx, mappingkv.CRMKey(tenant, p, id))
	if err != nil {
		return ownership.Mapping{}, false, err
	}
	if !found {
		return v.directory(ctx, tenant, p, id)
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
	e, found, err := v.maps.lookup(ctx, mappingkv.PlatformKey(tenant, p, platformUserID))
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

// directory looks a CRM user nobody maps to up in the directory: found with an empty
// PlatformUserID when the directory knows it.
func (v *View) directory(ctx context.Context, tenant string, p provider.Provider, id string) (ownership.Mapping, bool, error) {
	if v.dir == nil {
		return ownership.Mapping{}, false, nil
	}
	e, found, err := v.dir.lookup(ctx, crmuserkv.Key(tenant, p, id))
	if err != nil || !found {
		return ownership.Mapping{}, false, err
	}
	m := ownership.Mapping{CRMUserID: e.CRMUserID, CRMUserActive: e.Active}
	if e.Kind == crmuserkv.KindQueue {
		m.CRMUserKind = ownership.KindQueue
	}
	return m, true, nil
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
