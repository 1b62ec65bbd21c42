package mappingview

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/workbench/harness"
)

func TestView(t *testing.T) {
	t.Run("reading", func(t *testing.T) {
		testView(t, func(kv jetstream.KeyValue) *View { return New(kv) })
	})
	t.Run("watched", func(t *testing.T) {
		testView(t, func(kv jetstream.KeyValue) *View {
			v, err := NewWatched(t.Context(), kv)
			if err != nil {
				t.Fatal(err)
			}
			return v
		})
	})
}

func testView(t *testing.T, newView func(jetstream.KeyValue) *View) {
	kv := harness.KV(t, streams.MappingsBucket)
	ctx := context.Background()
	// Values as mapper writes them (kvview.Entry), both keys per mapping.
	put := func(provider, platformID, crmID, value string) {
		t.Helper()
		for _, k := range []string{streams.KVKey("acme", provider, "crm", crmID), streams.KVKey("acme", provider, "platform", platformID)} {
			if _, err := kv.PutString(ctx, k, value); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("salesforce", "pu_ada", "0055g00000AsDfGAAV", `{"tenant":"acme","provider":"salesforce","platform_user_id":"pu_ada","crm_user_id":"0055g00000AsDfGAAV","status":"synced","usable":true,"active":true,"kind":"user","made_by":"email","email":"ada@example.com","updated_at":"2026-01-01T00:00:00Z"}`)
	put("salesforce", "pu_old", "0055g00000HjKlMAAV", `{"platform_user_id":"pu_old","crm_user_id":"0055g00000HjKlMAAV","status":"error","usable":false,"active":false,"kind":"user"}`)
	put("hubspot", "pu_dup", "71234567", `{"platform_user_id":"pu_dup","crm_user_id":"71234567","status":"conflict","usable":false,"active":true,"kind":"user"}`)
	put("salesforce", "pu_q", "00G5g000003LkJhEAK", `{"platform_user_id":"pu_q","crm_user_id":"00G5g000003LkJhEAK","status":"synced","usable":true,"active":true,"kind":"queue"}`)
	put("hubspot", "pu_prov", "71239999", `{"platform_user_id":"pu_prov","crm_user_id":"71239999","status":"pending_team","usable":false,"active":true,"kind":"user"}`)
	put("hubspot", "pu_gone", "71230000", `{"platform_user_id":"pu_gone","crm_user_id":"71230000","status":"synced","usable":true,"active":true,"kind":"user"}`)
	if err := kv.Delete(ctx, streams.KVKey("acme", "hubspot", "platform", "pu_gone")); err != nil {
		t.Fatal(err)
	}
	v := newView(kv)
	type result struct {
		M     ownership.Mapping
		Found bool
	}
	crm := []struct {
		name string
		p    provider.Provider
		id   string
		want result
	}{
		{"synced", provider.Salesforce, "0055g00000AsDfGAAV", result{ownership.Mapping{PlatformUserID: "pu_ada", CRMUserID: "0055g00000AsDfGAAV", CRMUserActive: true}, true}},
		{"15-character id", provider.Salesforce, "0055g00000AsDfG", result{ownership.Mapping{PlatformUserID: "pu_ada", CRMUserID: "0055g00000AsDfGAAV", CRMUserActive: true}, true}},
		{"inactive, mapping in error", provider.Salesforce, "0055g00000HjKlMAAV", result{ownership.Mapping{CRMUserID: "0055g00000HjKlMAAV"}, true}},
		{"conflict carries no owner", provider.HubSpot, "71234567", result{ownership.Mapping{CRMUserID: "71234567", CRMUserActive: true}, true}},
		{"pending team keeps its platform user (the platform holds the assignment)", provider.HubSpot, "71239999", result{ownership.Mapping{PlatformUserID: "pu_prov", CRMUserID: "71239999", CRMUserActive: true}, true}},
		{"queue", provider.Salesforce, "00G5g000003LkJhEAK", result{ownership.Mapping{PlatformUserID: "pu_q", CRMUserID: "00G5g000003LkJhEAK", CRMUserActive: true, CRMUserKind: ownership.KindQueue}, true}},
		{"unknown", provider.HubSpot, "1", result{}},
		{"other tenant's provider", provider.HubSpot, "0055g00000AsDfGAAV", result{}},
	}
	for _, tt := range crm {
		t.Run("crm "+tt.name, func(t *testing.T) {
			m, found, err := v.ByCRMUser(ctx, "acme", tt.p, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, result{m, found}); diff != "" {
				t.Errorf("ByCRMUser (-want +got):\n%s", diff)
			}
		})
	}
	platform := []struct {
		name string
		p    provider.Provider
		id   string
		want result
	}{
		{"synced", provider.Salesforce, "pu_ada", result{ownership.Mapping{PlatformUserID: "pu_ada", CRMUserID: "0055g00000AsDfGAAV", CRMUserActive: true}, true}},
		{"inactive CRM user", provider.Salesforce, "pu_old", result{ownership.Mapping{PlatformUserID: "pu_old", CRMUserID: "0055g00000HjKlMAAV"}, true}},
		{"conflict is no mapping", provider.HubSpot, "pu_dup", result{}},
		{"pending team is no mapping towards the CRM", provider.HubSpot, "pu_prov", result{}},
		{"deleted", provider.HubSpot, "pu_gone", result{}},
	}
	for _, tt := range platform {
		t.Run("platform "+tt.name, func(t *testing.T) {
			m, found, err := v.ByPlatformUser(ctx, "acme", tt.p, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, result{m, found}); diff != "" {
				t.Errorf("ByPlatformUser (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := kv.PutString(ctx, streams.KVKey("acme", "hubspot", "platform", "bad"), "{"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.ByPlatformUser(ctx, "acme", provider.HubSpot, "bad"); err == nil {
		t.Error("a corrupt entry gave no error")
	}
}

// TestWatchedFollowsChanges: a watched view sees later puts and deletes, answers a key written
// after its start, and reads the bucket once its watch has ended.
func TestWatchedFollowsChanges(t *testing.T) {
	kv := harness.KV(t, streams.MappingsBucket)
	ctx := context.Background()
	key := streams.KVKey("acme", "hubspot", "platform", "pu_ada")
	if _, err := kv.PutString(ctx, key, `{"platform_user_id":"pu_ada","crm_user_id":"7001","status":"synced","usable":true,"active":true,"kind":"user"}`); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	v, err := NewWatched(wctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func() (ownership.Mapping, bool) {
		t.Helper()
		m, found, err := v.ByPlatformUser(ctx, "acme", provider.HubSpot, "pu_ada")
		if err != nil {
			t.Fatal(err)
		}
		return m, found
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		harness.Eventually(t, 5*time.Second, "the view to show "+what, ok)
	}
	if m, found := lookup(); !found || m.CRMUserID != "7001" {
		t.Fatalf("initial value: %+v %v", m, found)
	}
	if _, err := kv.PutString(ctx, key, `{"platform_user_id":"pu_ada","crm_user_id":"7002","status":"synced","usable":true,"active":true,"kind":"user"}`); err != nil {
		t.Fatal(err)
	}
	eventually("the new CRM user", func() bool { m, _ := lookup(); return m.CRMUserID == "7002" })
	if err := kv.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	eventually("the deletion", func() bool { _, found := lookup(); return !found })

	// A mapping written after the start is found at once: a key missing from the copy is read.
	if _, err := kv.PutString(ctx, streams.KVKey("acme", "hubspot", "crm", "7009"), `{"platform_user_id":"pu_new","crm_user_id":"7009","status":"synced","usable":true,"active":true,"kind":"user"}`); err != nil {
		t.Fatal(err)
	}
	if m, found, err := v.ByCRMUser(ctx, "acme", provider.HubSpot, "7009"); err != nil || !found || m.PlatformUserID != "pu_new" {
		t.Fatalf("new mapping: %+v %v %v", m, found, err)
	}

	stop()
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end with its context")
	}
	if _, err := kv.PutString(ctx, key, `{"platform_user_id":"pu_ada","crm_user_id":"7003","status":"synced","usable":true,"active":true,"kind":"user"}`); err != nil {
		t.Fatal(err)
	}
	if m, found := lookup(); !found || m.CRMUserID != "7003" {
		t.Fatalf("after the watch ended: %+v %v", m, found)
	}
}
