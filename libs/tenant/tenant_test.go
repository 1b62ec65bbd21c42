package tenant_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/tenant"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{id: "acme", want: true},
		{id: "acme-eu_2", want: true},
		{id: "0", want: true},
		{id: strings.Repeat("a", 63), want: true},
		{id: strings.Repeat("a", 64), want: false},
		{id: "", want: false},
		{id: "-acme", want: false},
		{id: "_acme", want: false},
		{id: "Acme", want: false},
		{id: "acme.eu", want: false}, // a subject token separator
		{id: "acme*", want: false},
		{id: "acme>", want: false},
		{id: "ac me", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := tenant.ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %t, want %t", tt.id, got, tt.want)
			}
		})
	}
}

// TestProvidersAreTyped: a tenant's providers are provider.Provider values, not names to convert:
// Connected lists the enabled ones in provider.All's order and ProviderSettings takes one.
func TestProvidersAreTyped(t *testing.T) {
	tn := &tenant.Tenant{ID: "acme",
		Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, FallbackOwnerID: "005A"}},
		HubSpot:    &tenant.HSConfig{Settings: tenant.Settings{Enabled: false}}}
	var connected []provider.Provider = tn.Connected()
	if !slices.Equal(connected, []provider.Provider{provider.Salesforce}) {
		t.Errorf("Connected = %v, want [salesforce]", connected)
	}
	var settings func(provider.Provider) (tenant.Settings, bool) = tn.ProviderSettings
	if s, ok := settings(provider.Salesforce); !ok || s.FallbackOwnerID != "005A" {
		t.Errorf("ProviderSettings(salesforce) = %+v, %v", s, ok)
	}
	if _, ok := settings(provider.HubSpot); !ok {
		t.Error("ProviderSettings(hubspot) of a configured but disabled HubSpot = false, want its settings")
	}
	tn.HubSpot.Enabled = true
	if got := tn.Connected(); !slices.Equal(got, provider.All) {
		t.Errorf("Connected with both enabled = %v, want %v", got, provider.All)
	}
}
