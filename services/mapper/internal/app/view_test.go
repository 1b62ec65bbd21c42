package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

func TestRebuildViewIfBehind(t *testing.T) {
	ctx := context.Background()
	cs := newCoreStack(t, "test")
	store, view, w, kv := cs.store, cs.view, cs.w, cs.kvs[streams.MappingsBucket]
	svc := app.New(app.Options{Writer: w, Store: store, View: view})

	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ms := []mapping.Mapping{
		{Provider: "salesforce", PlatformUserID: "p1", CRMUserID: "005A", Email: "a@x.test", Status: mapping.StatusSynced, MadeBy: mapping.MadeByEmail, CreatedAt: now, UpdatedAt: now},
		{Provider: "salesforce", PlatformUserID: "p2", CRMUserID: "005B", Email: "b@x.test", Status: mapping.StatusSynced, MadeBy: mapping.MadeByManual, CreatedAt: now, UpdatedAt: now},
	}
	crm := map[string]mapping.CRMUser{"005A": {ID: "005A", Active: true, Kind: mapping.CRMKindUser}, "005B": {ID: "005B", Active: true, Kind: mapping.CRMKindUser}}
	look := func(id string) (mapping.CRMUser, bool) { u, ok := crm[id]; return u, ok }
	if err := w.Commit(ctx, changes.Commit{Tenant: "acme", Provider: "salesforce", Upserts: ms, CRMAfter: look, EventID: "test"}); err != nil {
		t.Fatal(err)
	}
	want, err := view.Entries(ctx, "acme", "salesforce")
	if err != nil || len(want) != 4 {
		t.Fatalf("entries after commit: %v %v", want, err)
	}
	tenants := []tenant.Tenant{{ID: "acme"}}
	if rebuilt, err := svc.RebuildViewIfBehind(ctx, tenants); err != nil || len(rebuilt) != 0 {
		t.Fatalf("up-to-date view rebuilt: %v %v", rebuilt, err)
	}

	// A crash after the MongoDB write: the generation moved on, the view lost a key and gained a
	// stray one.
	if _, err := store.BumpGeneration(ctx, "acme", "salesforce"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, mappingkv.CRMKey("acme", "salesforce", "005A")); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, mappingkv.CRMKey("acme", "salesforce", "005Z"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := svc.RebuildViewIfBehind(ctx, tenants)
	if err != nil || len(rebuilt) != 1 || rebuilt[0] != "acme/salesforce" {
		t.Fatalf("rebuilt = %v, %v", rebuilt, err)
	}
	got, err := view.Entries(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	// The rebuild reads the CRM users from MongoDB, where none are stored in this test: the active
	// flag and kind come out unknown.
	for k, e := range want {
		e.Active, e.Kind = false, ""
		want[k] = e
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rebuilt view (-want +got):\n%s", diff)
	}
}
