package crmclients

import (
	"context"
	"errors"
	"testing"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

var errStoreDown = errors.New("tenant store unavailable")

type tenants map[string]*tenant.Tenant

func (ts tenants) Get(_ context.Context, id string) (*tenant.Tenant, error) {
	if id == "down" {
		return nil, errStoreDown
	}
	if t, ok := ts[id]; ok {
		return t, nil
	}
	return nil, tenant.ErrNotFound
}

// TestPermanence: configuration problems fail the tenant's writes for good (permanent
// *crmwrite.Error); a tenant store failure may pass and is returned as is. Building and caching
// the clients is libs/crmconn's (tested there).
func TestPermanence(t *testing.T) {
	ts := tenants{
		"off":      {ID: "off", HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: false}}},
		"nosecret": {ID: "nosecret", HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true}, Auth: tenant.HSAuth{TokenRef: "env:OWNERSYNC_SECRET_MISSING"}}},
		"badkey": {ID: "badkey", Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, APIBaseURL: "http://127.0.0.1:1"},
			Auth: tenant.SFAuth{Flow: "jwt_bearer", ClientID: "x", Username: "u", PrivateKeyRef: "env:OWNERSYNC_SECRET_BAD_PEM"}}},
	}
	secrets := &secretref.Resolver{Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: "/run/secrets/ownersync"}, Getenv: func(k string) string { return map[string]string{"OWNERSYNC_SECRET_BAD_PEM": "not a key"}[k] }}
	c := New(crmconn.Config{Tenants: ts, Secrets: secrets})
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		call      func() error
		permanent bool
	}{
		{"unknown tenant", func() error { _, err := c.HubSpotWriter(ctx, "nobody"); return err }, true},
		{"disabled", func() error { _, err := c.HubSpotWriter(ctx, "off"); return err }, true},
		{"no salesforce", func() error { _, err := c.SalesforceWriter(ctx, "off"); return err }, true},
		{"missing secret", func() error { _, err := c.HubSpotWriter(ctx, "nosecret"); return err }, true},
		{"bad key", func() error { _, err := c.SalesforceWriter(ctx, "badkey"); return err }, true},
		{"tenant store down", func() error { _, err := c.SalesforceWriter(ctx, "down"); return err }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			e, ok := crmwrite.AsError(err)
			if got := ok && e.Class.Class == ownership.Permanent; got != tt.permanent {
				t.Errorf("%v: permanent = %t, want %t", err, got, tt.permanent)
			}
			if !tt.permanent && !errors.Is(err, errStoreDown) {
				t.Errorf("%v does not wrap the store's error", err)
			}
		})
	}
}
