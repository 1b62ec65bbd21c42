package kvview_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/workbench/harness"
)

func newView(t *testing.T) *kvview.View {
	t.Helper()
	bus := harness.JetStream(t)
	return kvview.New(bus.JS, bus.KV(t)[streams.MappingsBucket])
}

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func entry(pid, crm string, active bool) mappingkv.Entry {
	return kvview.NewEntry("acme_co", mapping.Mapping{Provider: "salesforce", PlatformUserID: pid, CRMUserID: crm, Email: pid + "@x.test",
		Status: mapping.StatusSynced, MadeBy: mapping.MadeByEmail, UpdatedAt: t0}, mapping.CRMUser{ID: crm, Active: active, Kind: mapping.CRMKindUser})
}

func TestSyncPutsBothDirectionsAndDeletesRemovedKeys(t *testing.T) {
	ctx := context.Background()
	v := newView(t)
	a, b := entry("u.1", "005A", true), entry("u2", "005B", true)
	if err := v.Sync(ctx, "acme_co", "salesforce", nil, []mappingkv.Entry{a, b}, 1); err != nil {
		t.Fatal(err)
	}
	// u.1 moves to 005C, u2's CRM user is deactivated.
	a2, b2 := entry("u.1", "005C", true), entry("u2", "005B", false)
	if err := v.Sync(ctx, "acme_co", "salesforce", []mappingkv.Entry{a, b}, []mappingkv.Entry{a2, b2}, 2); err != nil {
		t.Fatal(err)
	}
	got, err := v.Entries(ctx, "acme_co", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]mappingkv.Entry{
		"acme_5fco.salesforce.crm.005C":       a2,
		"acme_5fco.salesforce.platform.u_2e1": a2,
		"acme_5fco.salesforce.crm.005B":       b2,
		"acme_5fco.salesforce.platform.u2":    b2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if g, err := v.Generation(ctx, "acme_co", "salesforce"); err != nil || g != 2 {
		t.Errorf("generation = %d, %v", g, err)
	}
	if g, _ := v.Generation(ctx, "acme_co", "hubspot"); g != 0 {
		t.Errorf("hubspot generation = %d, want 0 (none)", g)
	}
}

func TestRebuildReplacesEverything(t *testing.T) {
	ctx := context.Background()
	v := newView(t)
	stale := []mappingkv.Entry{entry("u1", "005A", true), entry("gone", "005Z", true)}
	if err := v.Sync(ctx, "acme_co", "salesforce", nil, stale, 1); err != nil {
		t.Fatal(err)
	}
	other := entry("h1", "77", true)
	other.Provider = "hubspot"
	if err := v.Sync(ctx, "acme_co", "hubspot", nil, []mappingkv.Entry{other}, 1); err != nil {
		t.Fatal(err)
	}
	fresh := entry("u1", "005B", true)
	if err := v.Rebuild(ctx, "acme_co", "salesforce", []mappingkv.Entry{fresh}, 7); err != nil {
		t.Fatal(err)
	}
	got, _ := v.Entries(ctx, "acme_co", "salesforce")
	want := map[string]mappingkv.Entry{"acme_5fco.salesforce.crm.005B": fresh, "acme_5fco.salesforce.platform.u1": fresh}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries after rebuild (-want +got):\n%s", diff)
	}
	if hs, _ := v.Entries(ctx, "acme_co", "hubspot"); len(hs) != 2 {
		t.Errorf("rebuild touched another provider: %v", hs)
	}
	if g, _ := v.Generation(ctx, "acme_co", "salesforce"); g != 7 {
		t.Errorf("generation = %d, want 7", g)
	}
}
