package kvview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/crmuserkv"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// Directory writes the ownersync_crm_users bucket (docs/architecture.md#kv-buckets): every CRM
// user mapper stores, mapped or not, with its kind and active flag, so that the writer knows the
// fallback owner and unmapped CRM owners (contract: libs/crmuserkv).
//
// MongoDB stays the system of record. Sync Users writes the users a pull changed (and deletes the
// vanished ones) after storing them; CRM user events and refreshes write the user as stored. Each
// write repeats on a redelivery, so a crash between MongoDB and the bucket is repaired by the
// redelivery or by the next Sync Users; a provider whose meta key is missing (a new or lost
// bucket) is rebuilt whole at start (app.RebuildDirectoryIfMissing).
type Directory struct {
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	inflight int
	now      func() time.Time
}

// NewDirectory returns the directory writer over the declared bucket kv (streams.CRMUsersBucket).
func NewDirectory(js jetstream.JetStream, kv jetstream.KeyValue) *Directory {
	return &Directory{js: js, kv: kv, inflight: 2048, now: time.Now}
}

// DirectoryEntry is the directory's entry of a stored CRM user.
func DirectoryEntry(tenant string, prov provider.Provider, u domain.CRMUser) crmuserkv.Entry {
	return crmuserkv.Entry{Tenant: tenant, Provider: provider.Provider(prov), CRMUserID: u.ID, Kind: string(u.Kind),
		Active: u.Active, UserType: u.UserType, Email: u.Email, UpdatedAt: u.UpdatedAt.UTC()}
}

func (d *Directory) putOps(tenant string, prov provider.Provider, users []domain.CRMUser) []op {
	ops := make([]op, 0, len(users))
	now := d.now().UTC()
	for _, u := range users {
		if u.UpdatedAt.IsZero() {
			u.UpdatedAt = now // a user as pulled, before the store stamped it
		}
		b, _ := crmuserkv.Encode(DirectoryEntry(tenant, prov, u))
		ops = append(ops, op{key: crmuserkv.Key(tenant, provider.Provider(prov), u.ID), data: b})
	}
	return ops
}

// PutCRMUsers writes users (as stored) and deletes the users with the ids in gone.
func (d *Directory) PutCRMUsers(ctx context.Context, tenant string, prov provider.Provider, users []domain.CRMUser, gone []string) error {
	ops := d.putOps(tenant, prov, users)
	for _, id := range gone {
		ops = append(ops, op{key: crmuserkv.Key(tenant, provider.Provider(prov), id), del: true})
	}
	if err := write(ctx, d.js, d.kv.Bucket(), d.inflight, ops); err != nil {
		return fmt.Errorf("update crm user directory %s/%s: %w", tenant, prov, err)
	}
	return nil
}

// RebuildDirectory replaces the directory of a tenant's provider with users, deleting any other
// key of the provider, and stamps the meta key.
func (d *Directory) RebuildDirectory(ctx context.Context, tenant string, prov provider.Provider, users []domain.CRMUser) error {
	p := provider.Provider(prov)
	ops := d.putOps(tenant, prov, users)
	want := make(map[string]bool, len(ops))
	for _, o := range ops {
		want[o.key] = true
	}
	lister, err := d.kv.ListKeysFiltered(ctx, crmuserkv.Prefix(tenant, p)+">")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list crm user directory %s/%s: %w", tenant, prov, err)
	}
	if lister != nil {
		for k := range lister.Keys() {
			if !want[k] && k != crmuserkv.MetaKey(tenant, p) {
				ops = append(ops, op{key: k, del: true})
			}
		}
		_ = lister.Stop()
	}
	if err := write(ctx, d.js, d.kv.Bucket(), d.inflight, ops); err != nil {
		return fmt.Errorf("rebuild crm user directory %s/%s: %w", tenant, prov, err)
	}
	b, _ := json.Marshal(crmuserkv.Meta{RebuiltAt: d.now().UTC(), Users: len(users)})
	if _, err := d.kv.Put(ctx, crmuserkv.MetaKey(tenant, p), b); err != nil {
		return fmt.Errorf("put crm user directory meta %s/%s: %w", tenant, prov, err)
	}
	return nil
}

// DirectoryBuilt reports whether the directory of a tenant's provider was ever rebuilt whole (its
// meta key exists).
func (d *Directory) DirectoryBuilt(ctx context.Context, tenant string, prov provider.Provider) (bool, error) {
	_, err := d.kv.Get(ctx, crmuserkv.MetaKey(tenant, provider.Provider(prov)))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read crm user directory meta %s/%s: %w", tenant, prov, err)
	}
	return true, nil
}

// CRMUserEntry returns the directory's entry of one CRM user (tests and checks).
func (d *Directory) CRMUserEntry(ctx context.Context, tenant string, prov provider.Provider, id string) (crmuserkv.Entry, bool, error) {
	return crmuserkv.Get(ctx, d.kv, crmuserkv.Key(tenant, provider.Provider(prov), id))
}
