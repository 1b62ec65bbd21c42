package mappingkv_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/provider"
)

func TestKeys(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"crm", mappingkv.CRMKey("acme_co", provider.Salesforce, "0055g00000AsDfGAAV"), "acme_5fco.salesforce.crm.0055g00000AsDfGAAV"},
		{"platform", mappingkv.PlatformKey("acme", provider.HubSpot, "pu.ada"), "acme.hubspot.platform.pu_2eada"},
		{"meta", mappingkv.MetaKey("acme", provider.HubSpot), "acme.hubspot.meta"},
		{"prefix", mappingkv.Prefix("acme", provider.Salesforce), "acme.salesforce."},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s key = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestWireForm pins the JSON both services exchange: a value mapper wrote before the shape moved
// here decodes to the same entry, and an encoded entry decodes back unchanged.
func TestWireForm(t *testing.T) {
	const stored = `{"tenant":"acme","provider":"salesforce","platform_user_id":"pu_ada","crm_user_id":"0055g00000AsDfGAAV","status":"synced","usable":true,"active":true,"kind":"user","made_by":"email","email":"ada@example.com","updated_at":"2026-01-01T00:00:00Z"}`
	want := mappingkv.Entry{Tenant: "acme", Provider: provider.Salesforce, PlatformUserID: "pu_ada", CRMUserID: "0055g00000AsDfGAAV",
		Status: mappingkv.StatusSynced, Usable: true, Active: true, Kind: mappingkv.KindUser, MadeBy: "email", Email: "ada@example.com",
		UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got, err := mappingkv.Decode([]byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	b, err := mappingkv.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != stored {
		t.Errorf("Encode = %s\nwant     %s", b, stored)
	}
}
