package connect_test

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestMigrateSharedKeys is issue 13 item 3's migration to the one shared-key model, on the
// embedded FerretDB: keys kept as secret references before it (stored: by Connect Salesforce,
// env: by an operator; a previous key in its overlap) become their digests — the key the org
// already sends keeps matching — and the stored value is deleted; two replicas migrating at once
// both succeed without a double migration; a second run changes nothing; an enabled connection
// without a key is reported keyless; an unreadable key is reported and left as it was.
func TestMigrateSharedKeys(t *testing.T) {
	conn := harness.MongoDB(t, "connect_keys")
	ctx := context.Background()
	if err := mongodb.EnsureIndexes(ctx, conn.DB, append(append([]mongodb.Index{}, tenantstore.Indexes...), secretbox.Indexes...)); err != nil {
		t.Fatal(err)
	}
	kr, _ := secretbox.ParseKeyring(secretbox.NewKey("k1"))
	store := secretbox.NewStore(conn.DB, kr)
	ts := tenantstore.New(conn.DB, nil)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	const (
		acmeKey   = "acme-connect-flow-key-0123456789"
		globexKey = "globex-operator-key-0123456789"
		oldKey    = "globex-rotated-out-key-0123456789"
	)
	hooliDigest, hooliCreated := tenant.SharedKeyDigest("hooli-generated-key"), now.Add(-24*time.Hour)
	sf := func(org string) *tenant.SFConfig {
		return &tenant.SFConfig{Settings: tenant.Settings{Enabled: true}, OrgID: org,
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "c", ClientSecretRef: "env:OWNERSYNC_SECRET_SF"}}
	}
	for _, tn := range []*tenant.Tenant{
		{ID: "acme", Salesforce: sf("00D5g000004XyZ1")},
		{ID: "globex", Salesforce: sf("00D5g000004XyZ2")},
		{ID: "initech", Salesforce: sf("00D5g000004XyZ3")},
		{ID: "hooli", Salesforce: sf("00D5g000004XyZ4")},
		{ID: "broken", Salesforce: sf("00D5g000004XyZ5")},
		{ID: "nosf"},
	} {
		if tn.ID == "hooli" {
			tn.Salesforce.SharedKeyRef, tn.Salesforce.SharedKeyCreatedAt = hooliDigest, hooliCreated
		}
		if err := ts.Put(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	// The data as the code before the one model left it (Put refuses secret references now).
	legacy := func(id string, set bson.D) {
		t.Helper()
		if _, err := conn.DB.Collection(tenantstore.Collection).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Put(ctx, "acme", connect.SalesforceSharedKey, secretbox.NewSecret(acmeKey)); err != nil {
		t.Fatal(err)
	}
	legacy("acme", bson.D{{Key: "salesforce.shared_key_ref", Value: secretbox.Ref("acme", connect.SalesforceSharedKey)}})
	if err := store.Put(ctx, "globex", connect.SalesforceSharedKey, secretbox.NewSecret(oldKey)); err != nil {
		t.Fatal(err)
	}
	overlapEnd := now.Add(48 * time.Hour)
	legacy("globex", bson.D{{Key: "salesforce.shared_key_ref", Value: "env:OWNERSYNC_SECRET_GLOBEX_KEY"},
		{Key: "salesforce.previous_shared_key_ref", Value: secretbox.Ref("globex", connect.SalesforceSharedKey)},
		{Key: "salesforce.previous_shared_key_until", Value: overlapEnd}})
	legacy("broken", bson.D{{Key: "salesforce.shared_key_ref", Value: secretbox.Ref("broken", connect.SalesforceSharedKey)}})
	resolver := secretbox.Resolver(store, &secretref.Resolver{Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_"}, Getenv: func(n string) string {
		if n == "OWNERSYNC_SECRET_GLOBEX_KEY" {
			return globexKey
		}
		return ""
	}})

	// Two replicas start at once.
	var (
		mu       sync.Mutex
		migrated []string
		wg       sync.WaitGroup
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replica := tenantstore.New(conn.DB, nil)
			m, err := connect.MigrateSharedKeys(ctx, replica, resolver, store, now)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			migrated = append(migrated, m.Migrated...)
			if _, ok := m.Failed["broken"]; !ok || len(m.Failed) != 1 {
				t.Errorf("failed %v, want broken only", m.Failed)
			}
			if !slices.Equal(m.Keyless, []string{"initech"}) {
				t.Errorf("keyless %v, want [initech]", m.Keyless)
			}
		}()
	}
	wg.Wait()
	// FerretDB v1's UpdateOne is not an atomic compare-and-set (MongoDB's is), so both replicas
	// may write: the same digest of the same key, which is why the migration is deterministic.
	sort.Strings(migrated)
	if migrated = slices.Compact(migrated); !slices.Equal(migrated, []string{"acme", "globex"}) {
		t.Fatalf("migrated by the two replicas: %v, want acme and globex", migrated)
	}
	get := func(id string) *tenant.SFConfig {
		t.Helper()
		tn, err := ts.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tn.Salesforce
	}
	if a := get("acme"); a.SharedKeyRef != tenant.SharedKeyDigest(acmeKey) || !a.SharedKeyCreatedAt.Equal(now) || a.PreviousSharedKeyRef != "" {
		t.Errorf("acme after migration: %+v", a)
	}
	if g := get("globex"); g.SharedKeyRef != tenant.SharedKeyDigest(globexKey) || g.PreviousSharedKeyRef != tenant.SharedKeyDigest(oldKey) ||
		!g.PreviousSharedKeyUntil.Equal(overlapEnd) {
		t.Errorf("globex after migration: %+v", g)
	}
	if h := get("hooli"); h.SharedKeyRef != hooliDigest || !h.SharedKeyCreatedAt.Equal(hooliCreated) {
		t.Errorf("hooli's generated key changed: %+v", h)
	}
	if b := get("broken"); b.SharedKeyRef != secretbox.Ref("broken", connect.SalesforceSharedKey) {
		t.Errorf("broken's unreadable key changed: %+v", b)
	}
	if !get("initech").KeyMissing() {
		t.Error("initech is not keyless")
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := store.Get(ctx, id, connect.SalesforceSharedKey); err == nil {
			t.Errorf("%s's shared key is still in the secret store", id)
		}
	}
	// The migrated tenants validate: the next save of their settings works.
	for _, id := range []string{"acme", "globex"} {
		tn, _ := ts.Get(ctx, id)
		tn.Name = "saved after migration"
		if err := ts.Put(ctx, tn); err != nil {
			t.Errorf("save %s after migration: %v", id, err)
		}
	}

	// The swap is a compare-and-set: a replica that read the legacy reference writes nothing now.
	if ok, err := ts.SwapSharedKey(ctx, "acme", secretbox.Ref("acme", connect.SalesforceSharedKey), "", tenant.SFConfig{SharedKeyRef: tenant.SharedKeyDigest("stale")}); ok || err != nil {
		t.Fatalf("a stale swap: %v %v", ok, err)
	}
	// Idempotent: nothing left to migrate.
	m, err := connect.MigrateSharedKeys(ctx, ts, resolver, store, now.Add(time.Hour))
	if err != nil || len(m.Migrated) != 0 || len(m.Failed) != 1 {
		t.Fatalf("second run: %+v %v", m, err)
	}
	if g := get("globex"); g.SharedKeyRef != tenant.SharedKeyDigest(globexKey) || !g.SharedKeyCreatedAt.Equal(now) {
		t.Errorf("second run changed globex: %+v", g)
	}
}
