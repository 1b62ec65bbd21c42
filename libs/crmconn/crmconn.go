// Package crmconn builds Salesforce and HubSpot clients from a tenant's configuration and keeps one
// of each per tenant. Secret references are resolved when a client is built; a client lives as long
// as its tenant's configuration is unchanged (its UpdatedAt), so its OAuth token and the API usage
// it last saw carry from one call to the next. mapper (reading CRM users) and the writer (writing
// owners) both connect through it.
package crmconn

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
	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
)

// ErrNotConnected is returned for a provider the tenant has not enabled.
var ErrNotConnected = errors.New("provider not connected")

// ConfigError is a connection configuration that cannot make a client: a secret reference that
// does not resolve, a private key that does not parse, settings the client refuses. It will not go
// away until an admin changes the configuration. It never carries a secret's value.
type ConfigError struct {
	Tenant   string
	Provider provider.Provider
	Err      error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("tenant %s %s connection: %v", e.Tenant, e.Provider, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// DefaultSalesforceAPIVersion is used when a configuration names none.
const DefaultSalesforceAPIVersion = "62.0"

// hubspotOwnersPageSize is the Owners API page asked for (HubSpot's maximum), so a Sync Users run
// of a large account takes few calls.
const hubspotOwnersPageSize = 500

// Tenants returns a tenant's configuration; *tenantstore.Cache implements it.
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Config configures Clients.
type Config struct {
	// Tenants looks tenants up for Salesforce and HubSpot (nil: only the ...For methods work).
	Tenants Tenants
	// Secrets resolves secret references inside the operator's namespace (nil: nothing resolves);
	// secretbox.Resolver adds the stored: references of Connect flows.
	Secrets Resolver
	// Stored keeps a refresh token the CRM rotated (nil: a rotated token is used until the client
	// is rebuilt, and the stored one fails after that).
	Stored *secretbox.Store
	// AnyCRMHost lets clients call any host over http or https (OWNERSYNC_CRM_ANY_HOST; sandboxes
	// and tests). Otherwise every configured URL, and every request a client sends (an
	// instance_url from a token answer included), must be https on the provider's hosts
	// (tenant.CRMHosts).
	AnyCRMHost bool
	// Timeout bounds each CRM API call (0: the clients' default, 30 s).
	Timeout time.Duration
	// HTTPClient is the transport (nil: http.DefaultTransport).
	HTTPClient *http.Client
	// TracerProvider makes the request spans (nil: no-op).
	TracerProvider trace.TracerProvider
	// Metrics counts and times the calls, by tenant (nil: not recorded).
	Metrics *crmcall.Metrics
}

// Resolver resolves a secret reference (*secretref.Resolver, secretbox.Resolver).
type Resolver interface {
	Resolve(ref string) (string, error)
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
	if cfg.Secrets == nil || isNilResolver(cfg.Secrets) {
		cfg.Secrets = &secretref.Resolver{}
	}
	return &Clients{cfg: cfg, sf: map[string]cached[*salesforce.Client]{}, hs: map[string]cached[*hubspot.Client]{}}
}

// Salesforce returns the Salesforce client of the tenant with id tenantID. Errors: the Tenants
// store's (tenant.ErrNotFound for an unknown tenant), ErrNotConnected, *ConfigError.
func (c *Clients) Salesforce(ctx context.Context, tenantID string) (*salesforce.Client, error) {
	t, err := c.tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return c.SalesforceFor(t)
}

// HubSpot returns the HubSpot client of the tenant with id tenantID, with Salesforce's errors.
func (c *Clients) HubSpot(ctx context.Context, tenantID string) (*hubspot.Client, error) {
	t, err := c.tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return c.HubSpotFor(t)
}

func (c *Clients) tenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	if c.cfg.Tenants == nil {
		return nil, errors.New("crmconn: no tenant store configured")
	}
	t, err := c.cfg.Tenants.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", id, err)
	}
	return t, nil
}

// SalesforceFor returns the Salesforce client of a tenant already read: ErrNotConnected when
// Salesforce is not enabled, *ConfigError when the configuration cannot make a client.
func (c *Clients) SalesforceFor(t *tenant.Tenant) (*salesforce.Client, error) {
	if t.Salesforce == nil || !t.Salesforce.Enabled {
		return nil, fmt.Errorf("tenant %s %s: %w", t.ID, provider.Salesforce, ErrNotConnected)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.sf[t.ID]; ok && e.version.Equal(t.UpdatedAt) {
		return e.client, nil
	}
	cl, err := c.newSalesforce(t.ID, t.Salesforce)
	if err != nil {
		return nil, &ConfigError{Tenant: t.ID, Provider: provider.Salesforce, Err: err}
	}
	c.sf[t.ID] = cached[*salesforce.Client]{version: t.UpdatedAt, client: cl}
	return cl, nil
}

// HubSpotFor returns the HubSpot client of a tenant already read, with SalesforceFor's errors.
func (c *Clients) HubSpotFor(t *tenant.Tenant) (*hubspot.Client, error) {
	if t.HubSpot == nil || !t.HubSpot.Enabled {
		return nil, fmt.Errorf("tenant %s %s: %w", t.ID, provider.HubSpot, ErrNotConnected)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.hs[t.ID]; ok && e.version.Equal(t.UpdatedAt) {
		return e.client, nil
	}
	cl, err := c.newHubSpot(t.ID, t.HubSpot)
	if err != nil {
		return nil, &ConfigError{Tenant: t.ID, Provider: provider.HubSpot, Err: err}
	}
	c.hs[t.ID] = cached[*hubspot.Client]{version: t.UpdatedAt, client: cl}
	return cl, nil
}

func (c *Clients) policy() tenant.Policy { return tenant.Policy{AnyCRMHost: c.cfg.AnyCRMHost} }

// checkURLs refuses a configuration whose URLs the host policy does not allow, before any secret
// is resolved (the store's validation checks the same; this holds for a configuration written
// around it).
func (c *Clients) checkURLs(p provider.Provider, urls ...string) error {
	for _, u := range urls {
		if u == "" {
			continue
		}
		if err := c.policy().CheckCRMURL(p, u); err != nil {
			return err
		}
	}
	return nil
}

// httpClient is the configured client with a transport that refuses requests to hosts the
// policy does not allow: whatever URL a client builds — from a token answer's instance_url, from a
// redirect — a tenant's credentials go only to the provider.
func (c *Clients) httpClient(p provider.Provider) *http.Client {
	base := http.DefaultTransport
	var jar http.CookieJar
	if c.cfg.HTTPClient != nil {
		if c.cfg.HTTPClient.Transport != nil {
			base = c.cfg.HTTPClient.Transport
		}
		jar = c.cfg.HTTPClient.Jar
	}
	return &http.Client{Transport: hostGuard{base: base, provider: p, policy: c.policy()}, Jar: jar}
}

// ErrHostNotAllowed is returned for a request to a host the policy does not allow.
var ErrHostNotAllowed = errors.New("host not allowed for this CRM")

type hostGuard struct {
	base     http.RoundTripper
	provider provider.Provider
	policy   tenant.Policy
}

func (g hostGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if !g.policy.HostAllowed(g.provider, r.URL.Scheme, r.URL.Host) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, fmt.Errorf("%s %s://%s: %w", g.provider, r.URL.Scheme, r.URL.Host, ErrHostNotAllowed)
	}
	return g.base.RoundTrip(r)
}

func (c *Clients) newSalesforce(tenantID string, s *tenant.SFConfig) (*salesforce.Client, error) {
	if err := c.checkURLs(provider.Salesforce, s.InstanceURL, s.APIBaseURL, s.Auth.TokenURL); err != nil {
		return nil, err
	}
	cfg := salesforce.Config{InstanceURL: s.InstanceURL, TokenURL: s.Auth.TokenURL, APIVersion: s.APIVersion,
		HTTPClient: c.httpClient(provider.Salesforce), Timeout: c.cfg.Timeout, TracerProvider: c.cfg.TracerProvider,
		Metrics: c.cfg.Metrics, Tenant: tenantID}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultSalesforceAPIVersion
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
	case "web_server":
		secret, err := c.cfg.Secrets.Resolve(s.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("salesforce client secret: %w", err)
		}
		// The client caches the access token itself and asks the source only after a 401.
		cfg.TokenSource = c.refreshSource(s.Auth.ClientID, secret, s.Auth.TokenURL, s.Auth.RefreshTokenRef)
	default:
		secret, err := c.cfg.Secrets.Resolve(s.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("salesforce client secret: %w", err)
		}
		cfg.ClientCredentials = &salesforce.ClientCredentials{ClientID: s.Auth.ClientID, ClientSecret: secret}
	}
	cl, err := salesforce.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("salesforce client: %w", err)
	}
	return cl, nil
}

func (c *Clients) newHubSpot(tenantID string, h *tenant.HSConfig) (*hubspot.Client, error) {
	if err := c.checkURLs(provider.HubSpot, h.APIBaseURL, h.Auth.TokenURL); err != nil {
		return nil, err
	}
	cfg := hubspot.Config{BaseURL: h.APIBaseURL, HTTPClient: c.httpClient(provider.HubSpot), Timeout: c.cfg.Timeout,
		TracerProvider: c.cfg.TracerProvider, OwnersPageSize: hubspotOwnersPageSize,
		Metrics: c.cfg.Metrics, Tenant: tenantID}
	switch h.Auth.Kind {
	case "oauth":
		secret, err := c.cfg.Secrets.Resolve(h.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot client secret: %w", err)
		}
		if secretbox.IsRef(h.Auth.RefreshTokenRef) {
			// Connected through the console: rotated refresh tokens are stored again.
			tokenURL := h.Auth.TokenURL
			if tokenURL == "" {
				tokenURL = hubspot.DefaultTokenURL
			}
			cfg.TokenSource = oauth2.ReuseTokenSource(nil, c.refreshSource(h.Auth.ClientID, secret, tokenURL, h.Auth.RefreshTokenRef))
			break
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
	cl, err := hubspot.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("hubspot client: %w", err)
	}
	return cl, nil
}

// parseRSAKey reads a PEM private key in PKCS #1 or PKCS #8 form.
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
