// Package crm reads CRM users for mapper: Salesforce users and HubSpot owners, with clients built
// from a tenant's configuration (secrets resolved through secretref at the moment of use).
package crm

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

// ErrNotFound is returned by Directory.Get when the CRM has no such user.
var ErrNotFound = errors.New("CRM user not found")

// ErrNotConnected is returned for a provider the tenant has not enabled.
var ErrNotConnected = errors.New("provider not connected")

// Directory is one tenant's user directory in one CRM.
type Directory interface {
	// Pull calls fn with every CRM user, page by page, inactive and archived ones included.
	Pull(ctx context.Context, fn func(page []mongostore.CRMUser) error) error
	// Get reads one user; errors.Is(err, ErrNotFound) when the CRM has none.
	Get(ctx context.Context, id string) (mongostore.CRMUser, error)
}

// Factory builds directories from tenant configuration.
type Factory struct {
	// Secrets resolves the configuration's secret references.
	Secrets secretref.Resolver
	// Timeout bounds each CRM API call (0: the client's default).
	Timeout time.Duration
	// HTTPClient is the transport (nil: http.DefaultTransport).
	HTTPClient *http.Client
	// Tracer makes the request spans (nil: no-op).
	Tracer trace.TracerProvider
	// Metrics counts and times the calls (nil: not recorded).
	Metrics *crmcall.Metrics
}

// Directory returns the directory of a tenant's connected provider.
func (f Factory) Directory(t *tenant.Tenant, provider string) (Directory, error) {
	switch provider {
	case mapping.Salesforce:
		if t.Salesforce == nil || !t.Salesforce.Enabled {
			return nil, fmt.Errorf("%s %s: %w", t.ID, provider, ErrNotConnected)
		}
		return f.salesforce(t.ID, t.Salesforce)
	case mapping.HubSpot:
		if t.HubSpot == nil || !t.HubSpot.Enabled {
			return nil, fmt.Errorf("%s %s: %w", t.ID, provider, ErrNotConnected)
		}
		return f.hubspot(t.ID, t.HubSpot)
	}
	return nil, fmt.Errorf("%s %q: %w", t.ID, provider, ErrNotConnected)
}

func (f Factory) salesforce(tenantID string, c *tenant.SFConfig) (Directory, error) {
	cfg := salesforce.Config{
		InstanceURL: c.InstanceURL, TokenURL: c.Auth.TokenURL, APIVersion: c.APIVersion,
		HTTPClient: f.HTTPClient, Timeout: f.Timeout, TracerProvider: f.Tracer,
		Metrics: f.Metrics, Tenant: tenantID,
	}
	if c.APIBaseURL != "" {
		cfg.InstanceURL = c.APIBaseURL
	}
	switch c.Auth.Flow {
	case "jwt_bearer":
		pemKey, err := f.Secrets.Resolve(c.Auth.PrivateKeyRef)
		if err != nil {
			return nil, fmt.Errorf("salesforce private key: %w", err)
		}
		key, err := parseRSAKey([]byte(pemKey))
		if err != nil {
			return nil, fmt.Errorf("salesforce private key %s: %w", c.Auth.PrivateKeyRef, err)
		}
		cfg.JWTBearer = &salesforce.JWTBearer{ClientID: c.Auth.ClientID, Username: c.Auth.Username, PrivateKey: key, Audience: c.Auth.Audience}
	default:
		secret, err := f.Secrets.Resolve(c.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("salesforce client secret: %w", err)
		}
		cfg.ClientCredentials = &salesforce.ClientCredentials{ClientID: c.Auth.ClientID, ClientSecret: secret}
	}
	cl, err := salesforce.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("salesforce client: %w", err)
	}
	return &sfDirectory{c: cl}, nil
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

func (f Factory) hubspot(tenantID string, c *tenant.HSConfig) (Directory, error) {
	cfg := hubspot.Config{BaseURL: c.APIBaseURL, HTTPClient: f.HTTPClient, Timeout: f.Timeout, TracerProvider: f.Tracer, OwnersPageSize: 500,
		Metrics: f.Metrics, Tenant: tenantID}
	switch c.Auth.Kind {
	case "oauth":
		secret, err := f.Secrets.Resolve(c.Auth.ClientSecretRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot client secret: %w", err)
		}
		refresh, err := f.Secrets.Resolve(c.Auth.RefreshTokenRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot refresh token: %w", err)
		}
		cfg.OAuth = &hubspot.OAuth{ClientID: c.Auth.ClientID, ClientSecret: secret, RefreshToken: refresh, TokenURL: c.Auth.TokenURL}
	default:
		tok, err := f.Secrets.Resolve(c.Auth.TokenRef)
		if err != nil {
			return nil, fmt.Errorf("hubspot access token: %w", err)
		}
		cfg.AccessToken = tok
	}
	cl, err := hubspot.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("hubspot client: %w", err)
	}
	return &hsDirectory{c: cl}, nil
}

type sfDirectory struct{ c *salesforce.Client }

// FromSalesforce converts a Salesforce User row.
func FromSalesforce(u salesforce.User) mongostore.CRMUser {
	id := u.ID
	if long, err := sfid.To18(id); err == nil {
		id = long
	}
	return mongostore.CRMUser{CRMUser: mapping.CRMUser{ID: id, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		Active: u.IsActive, Kind: mapping.CRMKindUser, Username: u.Username, UserType: u.UserType}}
}

func (d *sfDirectory) Pull(ctx context.Context, fn func([]mongostore.CRMUser) error) error {
	return d.c.QueryUsers(ctx, func(page []salesforce.User) error {
		out := make([]mongostore.CRMUser, len(page))
		for i, u := range page {
			out[i] = FromSalesforce(u)
		}
		return fn(out)
	})
}

func (d *sfDirectory) Get(ctx context.Context, id string) (mongostore.CRMUser, error) {
	u, err := d.c.GetUser(ctx, id)
	if errors.Is(err, salesforce.ErrNotFound) {
		return mongostore.CRMUser{}, fmt.Errorf("salesforce user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return mongostore.CRMUser{}, err
	}
	return FromSalesforce(u), nil
}

type hsDirectory struct{ c *hubspot.Client }

// FromHubSpot converts a HubSpot owner; archived is the pass it came from.
func FromHubSpot(o hubspot.Owner, archived bool) mongostore.CRMUser {
	kind := mapping.CRMKindUser
	if o.Type == hubspot.OwnerQueue {
		kind = mapping.CRMKindQueue
	}
	return mongostore.CRMUser{
		CRMUser:       mapping.CRMUser{ID: o.ID, Email: o.Email, FirstName: o.FirstName, LastName: o.LastName, Active: !(archived || o.Archived), Kind: kind},
		HubSpotUserID: o.UserIDIncludingInactive,
	}
}

func (d *hsDirectory) Pull(ctx context.Context, fn func([]mongostore.CRMUser) error) error {
	for _, archived := range []bool{false, true} {
		err := d.c.ListOwners(ctx, archived, func(page []hubspot.Owner) error {
			out := make([]mongostore.CRMUser, len(page))
			for i, o := range page {
				out[i] = FromHubSpot(o, archived)
			}
			return fn(out)
		})
		if err != nil {
			return fmt.Errorf("hubspot owners (archived=%t): %w", archived, err)
		}
	}
	return nil
}

func (d *hsDirectory) Get(ctx context.Context, id string) (mongostore.CRMUser, error) {
	o, err := d.c.GetOwner(ctx, id, false)
	if errors.Is(err, hubspot.ErrNotFound) {
		o, err = d.c.GetOwner(ctx, id, true)
		if err == nil {
			return FromHubSpot(o, true), nil
		}
	}
	if errors.Is(err, hubspot.ErrNotFound) {
		return mongostore.CRMUser{}, fmt.Errorf("hubspot owner %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return mongostore.CRMUser{}, err
	}
	return FromHubSpot(o, false), nil
}
