package writeback

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

type tenants map[string]*tenant.Tenant

func (ts tenants) Get(_ context.Context, id string) (*tenant.Tenant, error) {
	if t, ok := ts[id]; ok {
		return t, nil
	}
	return nil, tenant.ErrNotFound
}

func TestTenantPolicies(t *testing.T) {
	acme := &tenant.Tenant{ID: "acme",
		Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, Direction: tenant.PlatformToCRM,
			ObjectModules: []string{"contact", "lead"}, FallbackOwnerID: "0055g00000FbFbFAAV"}},
		HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: false, Direction: tenant.Bidirectional}},
	}
	p := TenantPolicies{Tenants: tenants{"acme": acme}}
	got, err := p.Policy(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := ownership.Policy{Tenant: "acme", Providers: map[provider.Provider]ownership.ProviderPolicy{
		provider.Salesforce: {Enabled: true, Direction: ownership.PlatformToCRM, RecordTypes: []ownership.RecordType{ownership.Contact, ownership.Lead},
			FallbackOwnerID: "0055g00000FbFbFAAV"},
		provider.HubSpot: {Direction: ownership.Bidirectional},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Policy (-want +got):\n%s", diff)
	}
	if _, err := p.Policy(context.Background(), "nobody"); !errors.Is(err, ErrUnknownTenant) {
		t.Errorf("Policy of an unknown tenant = %v, want ErrUnknownTenant", err)
	}
}
