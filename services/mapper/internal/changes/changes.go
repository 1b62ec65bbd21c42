// Package changes commits what the mapping rules decided: it writes the mappings to MongoDB,
// updates the ownersync_mappings KV view and publishes a mapping.changed event per change. The
// event consumers, Sync Users and the admin's manual mappings all go through it, so the three
// outputs never drift apart.
package changes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/provider/providerpb"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

// Publisher publishes one event with a deduplicating message id (natsbus.Publisher).
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (duplicate bool, err error)
}

// Writer commits rule outcomes.
type Writer struct {
	store *mongostore.Store
	view  *kvview.View
	pub   Publisher
	now   func() time.Time
	locks sync.Map // tenant/provider → chan struct{} (a mutex that can be waited on with a deadline)
}

// New returns a writer.
func New(store *mongostore.Store, view *kvview.View, pub Publisher, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{store: store, view: view, pub: pub, now: now}
}

// Store is the writer's store.
func (w *Writer) Store() *mongostore.Store { return w.store }

// View is the writer's KV view.
func (w *Writer) View() *kvview.View { return w.view }

// ErrBusy is returned by LockWithin when the lock stayed taken for the whole wait.
var ErrBusy = errors.New("mappings of the tenant and provider are being written by another run")

// Lock serialises rule runs of one tenant and provider in this process (events, Sync Users and
// manual mappings read, decide and write; two at once could both map the same user). It returns
// the unlock function.
func (w *Writer) Lock(tenant, provider string) func() {
	unlock, _ := w.LockWithin(context.Background(), tenant, provider, -1)
	return unlock
}

// LockWithin is Lock with a bounded wait (negative: no bound): event handlers give up before their
// message's AckWait runs out while a Sync Users run holds the lock, and ask for a later redelivery
// instead.
func (w *Writer) LockWithin(ctx context.Context, tenant, provider string, wait time.Duration) (func(), error) {
	v, _ := w.locks.LoadOrStore(tenant+"/"+provider, make(chan struct{}, 1))
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
		return nil, fmt.Errorf("lock %s/%s: %w", tenant, provider, ErrBusy)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Commit is one rule outcome for a tenant and provider.
type Commit struct {
	Tenant, Provider string
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
		if err := w.view.Sync(ctx, c.Tenant, c.Provider, before, after, gen); err != nil {
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
func Entries(tenant string, stored, upserts, deletes []mapping.Mapping, crmBefore, crmAfter func(string) (mapping.CRMUser, bool)) (before, after []mappingkv.Entry) {
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
	before = make([]mappingkv.Entry, 0, len(stored))
	for _, m := range stored {
		before = append(before, kvview.NewEntry(tenant, m, look(crmBefore, m.CRMUserID)))
		next[m.PlatformUserID] = m
	}
	for _, m := range deletes {
		delete(next, m.PlatformUserID)
	}
	for _, m := range upserts {
		next[m.PlatformUserID] = m
	}
	after = make([]mappingkv.Entry, 0, len(next))
	for _, m := range next {
		after = append(after, kvview.NewEntry(tenant, m, look(crmAfter, m.CRMUserID)))
	}
	return before, after
}

// publishConcurrency bounds the publishes in flight: each waits for JetStream's ack, so a Sync
// Users run with 100k changes would otherwise take a round trip per change.
const publishConcurrency = 64

// Publish publishes c's changes as mapping.changed events. The changes of one platform user keep
// their order; different users' changes are published concurrently.
func (w *Writer) Publish(ctx context.Context, c Commit) error {
	subject := streams.MappingChanged(c.Tenant, provider.Provider(c.Provider))
	now := timestamppb.New(w.now())
	publish := func(ctx context.Context, i int) error {
		ch := c.Changes[i]
		id := c.EventID + ":" + c.Provider + ":" + strconv.Itoa(i)
		ev := MappingChanged(ch)
		ev.Meta = &ownersyncv1.EventMeta{EventId: id, TenantId: c.Tenant, OccurredAt: now, ReceivedAt: now, Source: c.Source, SourceEventId: c.EventID}
		if _, err := w.pub.Publish(ctx, subject, id, ev); err != nil {
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

// MappingChanged converts a change to its event (without meta).
func MappingChanged(ch mapping.Change) *ownersyncv1.MappingChanged {
	return &ownersyncv1.MappingChanged{
		Provider: Provider(ch.Provider), PlatformUserId: ch.PlatformUserID, CrmUserId: ch.CRMUserID,
		PreviousCrmUserId: ch.PreviousCRMUserID, Email: ch.Email, Status: Status(ch.Status),
		Change: Kind(ch.Kind), Reason: ch.Reason, MadeBy: MadeBy(ch.MadeBy),
	}
}

// Provider converts a provider name.
func Provider(p string) ownersyncv1.Provider { return providerpb.ToProto(provider.Provider(p)) }

// ProviderName converts a provider enum ("" for an unknown one).
func ProviderName(p ownersyncv1.Provider) string {
	name, _ := providerpb.FromProto(p)
	return string(name)
}

// Status converts a mapping status.
func Status(s mapping.Status) ownersyncv1.MappingStatus {
	switch s {
	case mapping.StatusSynced:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_SYNCED
	case mapping.StatusConflict:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_CONFLICT
	case mapping.StatusError:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_ERROR
	case mapping.StatusPendingTeam:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_PENDING_TEAM
	}
	return ownersyncv1.MappingStatus_MAPPING_STATUS_UNSPECIFIED
}

// Kind converts a change kind.
func Kind(k mapping.ChangeKind) ownersyncv1.MappingChange {
	switch k {
	case mapping.ChangeCreated:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED
	case mapping.ChangeRemapped:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_REMAPPED
	case mapping.ChangeRemoved:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_REMOVED
	case mapping.ChangeConflict:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_CONFLICT
	case mapping.ChangeError:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_ERROR
	case mapping.ChangeResolved:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_RESOLVED
	}
	return ownersyncv1.MappingChange_MAPPING_CHANGE_UNSPECIFIED
}

// MadeBy converts how a mapping was made.
func MadeBy(m mapping.MadeBy) ownersyncv1.MadeBy {
	switch m {
	case mapping.MadeByEmail:
		return ownersyncv1.MadeBy_MADE_BY_EMAIL
	case mapping.MadeByManual:
		return ownersyncv1.MadeBy_MADE_BY_MANUAL
	case mapping.MadeByRemapInactive:
		return ownersyncv1.MadeBy_MADE_BY_REMAP_INACTIVE
	case mapping.MadeByAutoProvisioned:
		return ownersyncv1.MadeBy_MADE_BY_AUTO_PROVISIONED
	}
	return ownersyncv1.MadeBy_MADE_BY_UNSPECIFIED
}
