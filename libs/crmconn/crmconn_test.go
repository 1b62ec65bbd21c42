package crmconn_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

type tenants map[string]*tenant.Tenant

func (ts tenants) Get(_ context.Context, id string) (*tenant.Tenant, error) {
	if t, ok := ts[id]; ok {
		return t, nil
	}
	return nil, tenant.ErrNotFound
}

func TestClients(t *testing.T) {
	org, err := sfsim.New(sfsim.Config{ClientID: "writer", ClientSecret: "sf-secret", JWTAcceptUnverified: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(sfsim.Seed{
		Users:    []sfsim.SeedUser{{ID: "0055g00000AsDfGAAV", Username: "ada@acme.test", Email: "ada@example.com", LastName: "L"}},
		Contacts: []sfsim.SeedRecord{{ID: "0035g00000QwErTAAV", Email: "c1@example.org", LastName: "C", Owner: "0055g00000AsDfGAAV"}},
	}); err != nil {
		t.Fatal(err)
	}
	sfURL, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	acct, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Load(hssim.Seed{Contacts: []hssim.SeedContact{{ID: "101", Email: "c1@example.org"}}}); err != nil {
		t.Fatal(err)
	}
	hsURL, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	keyFile := keyDir + "/sf.pem"
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OWNERSYNC_SECRET_SF": "sf-secret", "OWNERSYNC_SECRET_HS_TOKEN": "pat-secret", "OWNERSYNC_SECRET_BAD_PEM": "not a key"}
	secrets := &secretref.Resolver{Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: keyDir}, Getenv: func(k string) string { return env[k] }}

	v1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := tenants{
		"acme": {ID: "acme", UpdatedAt: v1,
			Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, APIBaseURL: sfURL}, APIVersion: "62.0",
				Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "writer", ClientSecretRef: "env:OWNERSYNC_SECRET_SF"}},
			HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true, APIBaseURL: hsURL},
				Auth: tenant.HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_HS_TOKEN"}}},
		"jwt": {ID: "jwt",
			Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, APIBaseURL: sfURL}, APIVersion: "62.0",
				Auth: tenant.SFAuth{Flow: "jwt_bearer", ClientID: "writer", Username: "ada@acme.test", PrivateKeyRef: "file:" + keyFile,
					TokenURL: sfURL + "/services/oauth2/token"}}},
		"off":      {ID: "off", HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: false}}},
		"nosecret": {ID: "nosecret", HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true}, Auth: tenant.HSAuth{TokenRef: "env:OWNERSYNC_SECRET_MISSING"}}},
		"badkey":   {ID: "badkey", Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, APIBaseURL: sfURL}, Auth: tenant.SFAuth{Flow: "jwt_bearer", ClientID: "x", Username: "u", PrivateKeyRef: "env:OWNERSYNC_SECRET_BAD_PEM"}}},
	}
	c := crmconn.New(crmconn.Config{Tenants: ts, Secrets: secrets, Timeout: 5 * time.Second, AnyCRMHost: true})
	ctx := context.Background()

	for _, id := range []string{"acme", "jwt"} {
		sf, err := c.Salesforce(ctx, id)
		if err != nil {
			t.Fatalf("Salesforce(%s): %v", id, err)
		}
		res, err := sf.UpdateOwners(ctx, []salesforce.OwnerUpdate{{ObjectType: "Contact", ID: "0035g00000QwErTAAV", OwnerID: "0055g00000AsDfGAAV"}})
		if err != nil || len(res) != 1 || !res[0].Success {
			t.Errorf("%s: UpdateOwners = %+v, %v", id, res, err)
		}
	}
	hs, err := c.HubSpot(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if ct, err := hs.FindContactByEmail(ctx, "c1@example.org"); err != nil || ct.ID != "101" {
		t.Errorf("FindContactByEmail = %+v, %v", ct, err)
	}

	a1, _ := c.Salesforce(ctx, "acme")
	a2, _ := c.Salesforce(ctx, "acme")
	if a1 != a2 {
		t.Error("a second call built a new client for an unchanged tenant")
	}
	ts["acme"].UpdatedAt = v1.Add(time.Minute)
	if a3, _ := c.Salesforce(ctx, "acme"); a3 == a1 {
		t.Error("a changed configuration kept the old client")
	}

	if d1, _ := c.SalesforceFor(ts["acme"]); d1 == a1 || d1 == nil {
		t.Error("SalesforceFor after a configuration change returned the old client or none")
	}

	isConfig := func(err error) bool { var ce *crmconn.ConfigError; return errors.As(err, &ce) }
	for _, tt := range []struct {
		name string
		call func() error
		want func(error) bool
	}{
		{"unknown tenant", func() error { _, err := c.HubSpot(ctx, "nobody"); return err }, func(err error) bool { return errors.Is(err, tenant.ErrNotFound) }},
		{"disabled", func() error { _, err := c.HubSpot(ctx, "off"); return err }, func(err error) bool { return errors.Is(err, crmconn.ErrNotConnected) }},
		{"no salesforce", func() error { _, err := c.Salesforce(ctx, "off"); return err }, func(err error) bool { return errors.Is(err, crmconn.ErrNotConnected) }},
		{"missing secret", func() error { _, err := c.HubSpot(ctx, "nosecret"); return err }, isConfig},
		{"bad key", func() error { _, err := c.Salesforce(ctx, "badkey"); return err }, isConfig},
	} {
		err := tt.call()
		if !tt.want(err) {
			t.Errorf("%s: got %v", tt.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "not a key") {
			t.Errorf("%s: the error shows a secret value: %v", tt.name, err)
		}
	}
}
