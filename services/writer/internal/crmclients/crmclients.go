// Package crmclients builds and keeps one Salesforce and one HubSpot client per tenant from the
// tenant's configuration (DESIGN §8), resolving secret references at the moment a client is built.
// A client lives as long as its tenant's configuration is unchanged, so its OAuth token and the
// API usage it last saw carry from one batch to the next.
package crmclients

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// Tenants returns a tenant's configuration; *tenantstore.Cache implements it.
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Config configures Clients.
type Config struct {
	Tenants Tenants
	// Secrets resolves secret references (default secretref.Default).
	Secrets *secretref.Resolver
	// Timeout bounds each CRM API call (0: the clients' default, 30 s).
	Timeout time.Duration
	// HTTPClient is the transport (nil: http.DefaultTransport).
	HTTPClient *http.Client
	// TracerProvider makes the request spans (nil: no-op).
	TracerProvider trace.TracerProvider
	// Metrics counts and times the calls (nil: not recorded).
	Metrics *crmcall.Metrics
}

// Clients hands out the clients of each tenant. It is safe for concurrent use.
type Clients struct {
	cfg Config
	mu  sync.Mutex
	sf  map[string]cached[*salesforce.Client]
	hs  map[string]cached[*hubspot.Client]
}

type cached[C any] struct {
	version time.Time // the tenant's UpdatedAt when the client was built
	client  C
}

// New returns Clients.
func New(cfg Config) *Clients {
	if cfg.Secrets == nil {
		cfg.Secrets = &secretref.Default
	}
	return &Clients{cfg: cfg, sf: map[string]cached[*salesforce.Client]{}, hs: map[string]cached[*hubspot.Client]{}}
}

// permanent marks a configuration problem: writes for the tenant fail until an admin fixes it.
func permanent(p provider.Provider, err error) error {
	return &crmwrite.Error{Provider: p, Class: ownership.Classification{Class: ownership.Permanent}, Err: err}
}

// Salesforce returns the tenant's Salesforce client. Configuration problems (unknown tenant,
// Salesforce not enabled, a secret that does not resolve, an invalid key) are permanent
// *crmwrite.Errors; a tenant store failure is returned as is.
func (c *Clients) Salesforce(ctx context.Context, tenantID string) (*salesforce.Client, error) {
	t, err := c.tenant(ctx, tenantID, provider.Salesforce)
	if err != nil {
		return nil, err
	}
	if t.Salesforce == nil || !t.Salesforce.Enabled {
		return nil, permanent(provider.Salesforce, fmt.Errorf("tenant %s has no enabled salesforce connection", tenantID))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.sf[tenantID]; ok && e.version.Equal(t.UpdatedAt) {
		return e.client, nil
	}
	cl, err := c.newSalesforce(tenantID, t.Salesforce)
	if err != nil {
		return nil, permanent(provider.Salesforce, fmt.Errorf("tenant %s: %w", tenantID, err))
	}
	c.sf[tenantID] = cached[*salesforce.Client]{version: t.UpdatedAt, client: cl}
	return cl, nil
}

// HubSpot returns the tenant's HubSpot client, with the same error rules as Salesforce.
func (c *Clients) HubSpot(ctx context.Context, tenantID string) (*hubspot.Client, error) {
	t, err := c.tenant(ctx, tenantID, provider.HubSpot)
	if err != nil {
		return nil, err
	}
	if t.HubSpot == nil || !t.HubSpot.Enabled {
		return nil, permanent(provider.HubSpot, fmt.Errorf("tenant %s has no enabled hubspot connection", tenantID))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.hs[tenantID]; ok && e.version.Equal(t.UpdatedAt) {
		return e.client, nil
	}
	cl, err := c.newHubSpot(tenantID, t.HubSpot)
	if err != nil {
		return nil, permanent(provider.HubSpot, fmt.Errorf("tenant %s: %w", tenantID, err))
	}
	c.hs[tenantID] = cached[*hubspot.Client]{version: t.UpdatedAt, client: cl}
	return cl, nil
}

func (c *Clients) tenant(ctx context.Context, id string, p provider.Provider) (*tenant.Tenant, error) {
	t, err := c.cfg.Tenants.Get(ctx, id)
	if errors.Is(err, tenant.ErrNotFound) {
		return nil, permanent(p, fmt.Errorf("tenant %s: %w", id, err))
	}
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", id, err)
	}
	return t, nil
}

// The method values below fit crmwrite's client funcs, e.g. crmwrite.NewSalesforce(cfg, c.SalesforceWriter).

// SalesforceWriter returns the tenant's Salesforce client for crmwrite.Salesforce.
func (c *Clients) SalesforceWriter(ctx context.Context, tenantID string) (crmwrite.SalesforceAPI, error) {
	return c.Salesforce(ctx, tenantID)
}

// SalesforceFinder returns the tenant's Salesforce client for crmwrite.Finder.
func (c *Clients) SalesforceFinder(ctx context.Context, tenantID string) (crmwrite.SalesforceFinderAPI, error) {
	return c.Salesforce(ctx, tenantID)
}

// HubSpotWriter returns the tenant's HubSpot client for crmwrite.HubSpot.
func (c *Clients) HubSpotWriter(ctx context.Context, tenantID string) (crmwrite.HubSpotAPI, error) {
	return c.HubSpot(ctx, tenantID)
}

// HubSpotFinder returns the tenant's HubSpot client for crmwrite.Finder.
func (c *Clients) HubSpotFinder(ctx context.Context, tenantID string) (crmwrite.HubSpotFinderAPI, error) {
	return c.HubSpot(ctx, tenantID)
}

func (c *Clients) newSalesforce(tenantID string, s *tenant.SFConfig) (*salesforce.Client, error) {
	cfg := salesforce.Config{InstanceURL: s.InstanceURL, TokenURL: s.Auth.TokenURL, APIVersion: s.APIVersion,
		HTTPClient: c.cfg.HTTPClient, Timeout: c.cfg.Timeout, TracerProvider: c.cfg.TracerProvider,
		Metrics: c.cfg.Metrics, Tenant: tenantID}
	if cfg.APIVersion == "" {
		cfg.APIVersion = "62.0"
	}
	if s.APIBaseURL != "" {
		cfg.InstanceURL = s.APIBaseURL
	}
	switch s.Auth.Flow {
	case "jwt_bearer":
		pemKey, err := c.cfg.Secrets.Resolve(s.Auth.PrivateKeyRef)
		if err != nil {
			return nil, fmt.Errorf("salesforce private key: %w", err)
		}
		key, err := parseRSAKey([]byte(pemKey))
		if err != nil {
			return nil, fmt.Errorf("salesforce private key %s: %w", s.Auth.PrivateKeyRef, err)
		}
		cfg.JWTBearer = &salesforce.JWTBearer{ClientID: s.Auth.ClientID, Username: s.Auth.Username, PrivateKey: key, Audience: s.Auth.Audience}
	default:
		secret, err := c.cfg.Secrets.Resolve(s.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("salesforce client secret: %w", err)
		}
		cfg.ClientCredentials = &salesforce.ClientCredentials{ClientID: s.Auth.ClientID, ClientSecret: secret}
	}
	return salesforce.New(cfg)
}

func (c *Clients) newHubSpot(tenantID string, h *tenant.HSConfig) (*hubspot.Client, error) {
	cfg := hubspot.Config{BaseURL: h.APIBaseURL, HTTPClient: c.cfg.HTTPClient, Timeout: c.cfg.Timeout, TracerProvider: c.cfg.TracerProvider,
		Metrics: c.cfg.Metrics, Tenant: tenantID}
	switch h.Auth.Kind {
	case "oauth":
		secret, err := c.cfg.Secrets.Resolve(h.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot client secret: %w", err)
		}
		refresh, err := c.cfg.Secrets.Resolve(h.Auth.RefreshTokenRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot refresh token: %w", err)
		}
		cfg.OAuth = &hubspot.OAuth{ClientID: h.Auth.ClientID, ClientSecret: secret, RefreshToken: refresh, TokenURL: h.Auth.TokenURL}
	default:
		tok, err := c.cfg.Secrets.Resolve(h.Auth.TokenRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot access token: %w", err)
		}
		cfg.AccessToken = tok
	}
	return hubspot.New(cfg)
}

func parseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not an RSA private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key")
	}
	return rk, nil
}
