package crmuserkv_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/crmuserkv"
	"github.com/ownersync/ownersync/libs/provider"
)

func TestKeys(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"user", crmuserkv.Key("acme_co", provider.Salesforce, "0055g00000AsDfGAAV"), "acme_5fco.salesforce.0055g00000AsDfGAAV"},
		{"owner", crmuserkv.Key("acme", provider.HubSpot, "71234605"), "acme.hubspot.71234605"},
		{"meta", crmuserkv.MetaKey("acme", provider.HubSpot), "acme.hubspot._meta"},
		{"a user named _meta is not the meta key", crmuserkv.Key("acme", provider.HubSpot, "_meta"), "acme.hubspot._5fmeta"},
		{"prefix", crmuserkv.Prefix("acme", provider.Salesforce), "acme.salesforce."},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s key = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestWireForm pins the JSON mapper writes and the writer reads.
func TestWireForm(t *testing.T) {
	const stored = `{"tenant":"acme","provider":"hubspot","crm_user_id":"71234605","kind":"queue","active":true,"updated_at":"2026-01-01T00:00:00Z"}`
	want := crmuserkv.Entry{Tenant: "acme", Provider: provider.HubSpot, CRMUserID: "71234605", Kind: crmuserkv.KindQueue, Active: true,
		UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got, err := crmuserkv.Decode([]byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	b, err := crmuserkv.Encode(want)
	if err != nil || string(b) != stored {
		t.Errorf("Encode = %s, %v; want %s", b, err, stored)
	}
}
