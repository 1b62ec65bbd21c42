// Package changes commits what the mapping rules decided: it writes the mappings to MongoDB,
// updates the ownersync_mappings KV view and publishes a mapping.changed event per change. The
// event consumers, Sync Users and the admin's manual mappings all go through it, so the three
// outputs never drift apart.
package changes

import (
	"context"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Store keeps the mappings (mongostore.Store).
type Store interface {
	BumpGeneration(ctx context.Context, tenant string, provider provider.Provider) (int64, error)
	WriteMappings(ctx context.Context, tenant string, stored, upserts, deletes []mapping.Mapping) error
}

// View is the mappings view the other services read (kvview.View).
type View interface {
	SyncMappings(ctx context.Context, tenant string, provider provider.Provider, before, after []domain.ViewEntry, generation int64) error
}

// Events announces mapping changes (events.Publisher).
type Events interface {
	MappingChanged(ctx context.Context, ev domain.MappingEvent) error
}

// Leases serialise rule runs of a tenant and provider across mapper replicas (coordkv.KV, a lease
// with an expiry in the ownersync_coord bucket, so a killed holder blocks the others only until
// it expires).
type Leases interface {
	// Acquire takes the lease name, waiting up to wait (negative: until ctx ends) before it
	// returns domain.ErrBusy; release gives it up.
	Acquire(ctx context.Context, name string, wait time.Duration) (release func(), err error)
}

// Writer commits rule outcomes.
type Writer struct {
	store  Store
	view   View
	pub    Events
	now    func() time.Time
	locks  sync.Map // tenant/provider → chan struct{} (a mutex that can be waited on with a deadline)
	leases Leases
}

// New returns a writer.
func New(store Store, view View, events Events, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{store: store, view: view, pub: events, now: now}
}

// UseLeases makes Lock and LockWithin hold the tenant and provider's lease in l as well, so that
// rule runs are serialised across mapper replicas, not only in this process.
func (w *Writer) UseLeases(l Leases) { w.leases = l }

// Lock serialises rule runs of one tenant and provider (events, Sync Users and manual mappings
// read, decide and write; two at once could both map the same user): in this process, and with
// UseLeases across replicas. It returns the unlock function.
func (w *Writer) Lock(tenant string, provider provider.Provider) func() {
	unlock, _ := w.LockWithin(context.Background(), tenant, provider, -1)
	return unlock
}

// LockWithin is Lock with a bounded wait (domain.ErrBusy when it runs out) (negative: no bound): event handlers give up before their
// message's AckWait runs out while a Sync Users run holds the lock, and ask for a later redelivery
// instead.
func (w *Writer) LockWithin(ctx context.Context, tenant string, provider provider.Provider, wait time.Duration) (func(), error) {
	start := time.Now()
	unlock, err := w.lockLocal(ctx, tenant, provider, wait)
	if err != nil || w.leases == nil {
		return unlock, err
	}
	left := wait
	if wait >= 0 {
		left = max(wait-time.Since(start), 0)
	}
	release, err := w.leases.Acquire(ctx, tenant+"/"+string(provider), left)
	if err != nil {
		unlock()
		return nil, err
	}
	return func() { release(); unlock() }, nil
}

// lockLocal is LockWithin in this process only.
func (w *Writer) lockLocal(ctx context.Context, tenant string, provider provider.Provider, wait time.Duration) (func(), error) {
	v, _ := w.locks.LoadOrStore(tenant+"/"+string(provider), make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	default:
	}
	var timeout <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-timeout:
		return nil, fmt.Errorf("lock %s/%s: %w", tenant, provider, domain.ErrBusy)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Commit is one rule outcome for a tenant and provider.
type Commit struct {
	Tenant   string
	Provider provider.Provider
	// Stored are the mappings the rules saw (all of the provider's, or a neighbourhood that
	// includes every mapping the upserts and deletes touch).
	Stored  []mapping.Mapping
	Upserts []mapping.Mapping
	Deletes []mapping.Mapping
	Changes []mapping.Change
	// CRMBefore and CRMAfter look up the CRM users as they were and are (for the view's active
	// flag); a user missing from a lookup counts as unknown (inactive).
	CRMBefore, CRMAfter func(id string) (mapping.CRMUser, bool)
	// EventID prefixes the mapping.changed ids: <EventID>:<provider>:<index of the change>. It must
	// be deterministic for the cause (the source event id, or the run id), so that redoing the same
	// commit publishes nothing twice.
	EventID string
	// Source is the EventMeta source of the mapping.changed events.
	Source string
	// PublishFirst publishes the events before writing (event consumers: a redelivery after a
	// crash between the steps recomputes the same changes with the same ids, so nothing is lost
	// and nothing duplicated). Otherwise the events follow the writes (Sync Users).
	PublishFirst bool
}

// Commit writes c: generation bump, MongoDB, KV view, events (PublishFirst moves the events to the
// front).
func (w *Writer) Commit(ctx context.Context, c Commit) error {
	if c.PublishFirst {
		if err := w.Publish(ctx, c); err != nil {
			return err
		}
	}
	if len(c.Upserts) > 0 || len(c.Deletes) > 0 || c.CRMBefore != nil {
		gen, err := w.store.BumpGeneration(ctx, c.Tenant, c.Provider)
		if err != nil {
			return err
		}
		if err := w.store.WriteMappings(ctx, c.Tenant, c.Stored, c.Upserts, c.Deletes); err != nil {
			return err
		}
		before, after := Entries(c.Tenant, c.Stored, c.Upserts, c.Deletes, c.CRMBefore, c.CRMAfter)
		if err := w.view.SyncMappings(ctx, c.Tenant, c.Provider, before, after, gen); err != nil {
			return err
		}
	}
	if !c.PublishFirst {
		return w.Publish(ctx, c)
	}
	return nil
}

// Entries returns the view entries of the stored mappings before and after the upserts and
// deletes.
func Entries(tenant string, stored, upserts, deletes []mapping.Mapping, crmBefore, crmAfter func(string) (mapping.CRMUser, bool)) (before, after []domain.ViewEntry) {
	look := func(f func(string) (mapping.CRMUser, bool), id string) mapping.CRMUser {
		if f == nil {
			return mapping.CRMUser{}
		}
		u, _ := f(id)
		return u
	}
	if crmBefore == nil {
		crmBefore = crmAfter
	}
	next := make(map[string]mapping.Mapping, len(stored))
	before = make([]domain.ViewEntry, 0, len(stored))
	for _, m := range stored {
		before = append(before, domain.ViewEntry{Tenant: tenant, Mapping: m, CRMUser: look(crmBefore, m.CRMUserID)})
		next[m.PlatformUserID] = m
	}
	for _, m := range deletes {
		delete(next, m.PlatformUserID)
	}
	for _, m := range upserts {
		next[m.PlatformUserID] = m
	}
	after = make([]domain.ViewEntry, 0, len(next))
	for _, m := range next {
		after = append(after, domain.ViewEntry{Tenant: tenant, Mapping: m, CRMUser: look(crmAfter, m.CRMUserID)})
	}
	return before, after
}

// publishConcurrency bounds the publishes in flight: each waits for JetStream's ack, so a Sync
// Users run with 100k changes would otherwise take a round trip per change.
const publishConcurrency = 64

// Publish publishes c's changes as mapping.changed events. The changes of one platform user keep
// their order; different users' changes are published concurrently.
func (w *Writer) Publish(ctx context.Context, c Commit) error {
	now := w.now()
	publish := func(ctx context.Context, i int) error {
		id := c.EventID + ":" + string(c.Provider) + ":" + strconv.Itoa(i)
		ev := domain.MappingEvent{ID: id, Tenant: c.Tenant, Provider: c.Provider, Change: c.Changes[i], Source: c.Source, SourceEventID: c.EventID, At: now}
		if err := w.pub.MappingChanged(ctx, ev); err != nil {
			return fmt.Errorf("publish mapping.changed %s: %w", id, err)
		}
		return nil
	}
	if len(c.Changes) <= 1 {
		for i := range c.Changes {
			if err := publish(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	var order []string
	byUser := map[string][]int{}
	for i, ch := range c.Changes {
		if _, ok := byUser[ch.PlatformUserID]; !ok {
			order = append(order, ch.PlatformUserID)
		}
		byUser[ch.PlatformUserID] = append(byUser[ch.PlatformUserID], i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(publishConcurrency)
	for _, u := range order {
		idx := byUser[u]
		g.Go(func() error {
			for _, i := range idx {
				if err := publish(gctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}
