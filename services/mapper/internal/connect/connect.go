// Package connect runs the "Connect HubSpot" and "Connect Salesforce" OAuth 2.0 flows of the
// console (issue 16): it builds the authorize URL (state, PKCE for Salesforce), exchanges the code
// on the callback, reads what the CRM says about the account (HubSpot portal, scopes and time zone;
// Salesforce org id and instance URL from the identity URL), stores the tokens encrypted
// (libs/secretbox) and writes the tenant's connection with stored: references. It also creates
// HubSpot's webhook subscriptions when the operator configured the app's developer API key, tests a
// connection, builds the Salesforce metadata package and disconnects (revoking at the CRM).
//
// A pending flow lives in MongoDB (connect_flows, see Flows), bound to the console session that
// started it, for StateTTL: the callback may reach any mapper replica, also after a restart, but
// must come back in the same session; it is consumed once.
package connect

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/tenant"
)

// Provider names as the Connect routes and forms carry them (path segments), taken from
// libs/provider's one definition.
const (
	HubSpot    = string(provider.HubSpot)
	Salesforce = string(provider.Salesforce)
)

// StateTTL is how long an authorize URL's state is good for.
const StateTTL = 15 * time.Minute

// Names of the stored values (secretbox names under the tenant).
const (
	HubSpotRefreshToken    = "hubspot.refresh_token"
	HubSpotClientSecret    = "hubspot.client_secret"
	SalesforceRefreshToken = "salesforce.refresh_token"
	SalesforceClientSecret = "salesforce.client_secret"
	// SalesforceSharedKey is where Connect Salesforce kept the Outbound Message key before the one
	// shared-key model (issue 13 item 3); mapper migrates such a key to its digest at start and
	// deletes the stored value (MigrateSharedKeys).
	SalesforceSharedKey     = "salesforce.shared_key"
	salesforceTokenPath     = "/services/oauth2/token"
	salesforceAuthorizePath = "/services/oauth2/authorize"
)

// HubSpotApp is the operator's HubSpot public app.
type HubSpotApp struct {
	ClientID     string
	ClientSecret string
	// AppID and DeveloperAPIKey let ownersync create the webhook subscriptions itself; without
	// them the Connections page lists what to subscribe to.
	AppID           int64
	DeveloperAPIKey string
	// AuthorizeURL defaults to https://app.hubspot.com/oauth/authorize; APIBaseURL to
	// https://api.hubapi.com (token, token metadata, revoke, webhooks and account info).
	AuthorizeURL string
	APIBaseURL   string
	// Scopes are asked for (DefaultHubSpotScopes when empty).
	Scopes []string
}

// DefaultHubSpotScopes are what ownersync needs: reading owners (Sync Users), reading contacts
// (lookups by email and id) and writing their owner; "oauth" is HubSpot's base scope.
var DefaultHubSpotScopes = []string{"oauth", "crm.objects.owners.read", "crm.objects.contacts.read", "crm.objects.contacts.write"}

// SalesforceApp is the operator's Salesforce connected app (web-server flow with PKCE).
type SalesforceApp struct {
	ClientID     string
	ClientSecret string
	// SandboxOrigins are extra login origins allowed besides login/test.salesforce.com and My
	// Domains (the CRM sandboxes of the dev stack and tests; never set in production). Their
	// instance URLs are allowed too.
	SandboxOrigins []string
}

// SalesforceScopes: api (REST calls), refresh_token (offline access for the writer), id (the
// identity URL that names the org).
var SalesforceScopes = []string{"api", "refresh_token", "id"}

// Tenants reads and writes tenants (tenantstore.Store implements it).
type Tenants interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
	List(ctx context.Context) ([]tenant.Tenant, error)
	Put(ctx context.Context, t *tenant.Tenant) error
}

// Config configures the flows.
type Config struct {
	// AdminURL is the console's public base URL; callbacks are AdminURL/admin/connect/{provider}/callback.
	AdminURL string
	// IngressURL is the public base URL of ingress (Outbound Message endpoint, webhook target).
	IngressURL string
	HubSpot    *HubSpotApp
	Salesforce *SalesforceApp
	// HTTPClient calls the CRMs (nil: a client with a 30 s timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	// Flows keeps the pending flows, shared by the mapper replicas (required).
	Flows *Flows
}

// Service runs the flows.
type Service struct {
	cfg     Config
	tenants Tenants
	stored  *secretbox.Store
	clients *crmconn.Clients
	flows   *Flows
}

type pending struct {
	tenant, provider, actor, session string
	verifier, loginOrigin            string
	expires                          time.Time
}

// New returns the service; stored may be nil (then nothing can be connected and Available says why).
// cfg.Flows is required: flows kept in one process would need sticky sessions.
func New(cfg Config, tenants Tenants, stored *secretbox.Store, clients *crmconn.Clients) *Service {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Flows == nil {
		panic("connect: Config.Flows is required")
	}
	cfg.AdminURL = strings.TrimRight(cfg.AdminURL, "/")
	cfg.IngressURL = strings.TrimRight(cfg.IngressURL, "/")
	if h := cfg.HubSpot; h != nil {
		if h.AuthorizeURL == "" {
			h.AuthorizeURL = "https://app.hubspot.com/oauth/authorize"
		}
		if h.APIBaseURL == "" {
			h.APIBaseURL = "https://api.hubapi.com"
		}
		h.APIBaseURL = strings.TrimRight(h.APIBaseURL, "/")
		if len(h.Scopes) == 0 {
			h.Scopes = DefaultHubSpotScopes
		}
	}
	return &Service{cfg: cfg, tenants: tenants, stored: stored, clients: clients, flows: cfg.Flows}
}

// Errors shown to the admin as they are.
var (
	ErrNotConfigured = errors.New("the operator has not configured this app")
	ErrNoKeyring     = errors.New("the operator has not configured OWNERSYNC_STORED_SECRET_KEYS, so tokens cannot be stored")
	ErrState         = errors.New("this sign-in link has expired or was started in another session; start again from the Connections page")
)

// PublicError is an error whose message is meant for the admin.
type PublicError struct{ Msg string }

func (e *PublicError) Error() string { return e.Msg }

func public(format string, a ...any) error { return &PublicError{Msg: fmt.Sprintf(format, a...)} }

// Available reports whether provider can be connected, or why not.
func (s *Service) Available(provider string) error {
	if s.stored == nil {
		return ErrNoKeyring
	}
	switch provider {
	case HubSpot:
		if s.cfg.HubSpot == nil || s.cfg.HubSpot.ClientID == "" {
			return ErrNotConfigured
		}
	case Salesforce:
		if s.cfg.Salesforce == nil || s.cfg.Salesforce.ClientID == "" {
			return ErrNotConfigured
		}
	default:
		return ErrNotConfigured
	}
	return nil
}

// CallbackURL is the redirect URL registered with the provider's app.
func (s *Service) CallbackURL(provider string) string {
	return s.cfg.AdminURL + "/admin/connect/" + provider + "/callback"
}

// OutboundURL is the Outbound Message endpoint URL without its key.
func (s *Service) OutboundURL() string { return s.cfg.IngressURL + "/webhooks/salesforce" }

// WebhookURL is HubSpot's webhook target URL.
func (s *Service) WebhookURL() string { return s.cfg.IngressURL + "/webhooks/hubspot" }

// HubSpotApp returns the configured app (nil when none).
func (s *Service) HubSpotApp() *HubSpotApp { return s.cfg.HubSpot }

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey is what a pending flow remembers of the session (a hash, not the session id).
func sessionKey(session string) string {
	sum := sha256.Sum256([]byte("connect-session\x00" + session))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Service) begin(ctx context.Context, p *pending) (string, error) {
	state := randomString(24)
	now := s.cfg.Now()
	p.expires = now.Add(StateTTL)
	if err := s.flows.put(ctx, state, p, now); err != nil {
		return "", err
	}
	return state, nil
}

// take removes and returns the pending flow of state if it belongs to provider and session.
func (s *Service) take(ctx context.Context, provider, state, session string) (*pending, error) {
	return s.flows.take(ctx, provider, state, sessionKey(session), s.cfg.Now())
}

// Tenant returns the tenant a pending state belongs to, without consuming it ("" when unknown or
// expired); an error only when the flows cannot be read.
func (s *Service) Tenant(ctx context.Context, state string) (string, error) {
	return s.flows.tenant(ctx, state, s.cfg.Now())
}

// Finished is what a completed flow produced.
type Finished struct {
	// Tenant is the tenant the flow connected (for the redirect).
	Tenant string
	// SharedKey is the Outbound Message key generated for a Salesforce connection that had none
	// (tenant.RotateSharedKey, as the admin API does): the caller shows it once with the endpoint
	// URL; only its digest is stored.
	SharedKey string
}

// Callback finishes a flow: code exchange, account facts, stored tokens, tenant connection.
// errParam is the provider's error=…, when the admin declined.
func (s *Service) Callback(ctx context.Context, provider, state, code, errParam, session string) (Finished, error) {
	p, err := s.take(ctx, provider, state, session)
	if err != nil {
		return Finished{}, err
	}
	f := Finished{Tenant: p.tenant}
	if errParam != "" {
		return f, public("%s did not grant access (%s). Nothing was changed.", title(provider), errParam)
	}
	if code == "" {
		return f, public("%s sent no authorization code. Start again.", title(provider))
	}
	switch provider {
	case HubSpot:
		return f, s.finishHubSpot(ctx, p, code)
	case Salesforce:
		f.SharedKey, err = s.finishSalesforce(ctx, p, code)
		return f, err
	}
	return f, ErrState
}

func title(provider string) string {
	if provider == HubSpot {
		return "HubSpot"
	}
	return "Salesforce"
}

// claimedElsewhere reports another tenant connected to the same source.
func (s *Service) claimedElsewhere(ctx context.Context, tenantID string, same func(*tenant.Tenant) bool) (string, error) {
	all, err := s.tenants.List(ctx)
	if err != nil {
		return "", err
	}
	for i := range all {
		if all[i].ID != tenantID && same(&all[i]) {
			return all[i].ID, nil
		}
	}
	return "", nil
}

func (s *Service) put(ctx context.Context, tenantID, name, value string) (string, error) {
	if err := s.stored.Put(ctx, tenantID, name, secretbox.NewSecret(value)); err != nil {
		return "", err
	}
	return secretbox.Ref(tenantID, name), nil
}

// AuthorizeOrigins are the origins the Connect buttons lead to (the console's Content-Security-Policy
// form-action must allow them: Chromium applies it to the redirect after the form's POST).
func (s *Service) AuthorizeOrigins() []string {
	var out []string
	if h := s.cfg.HubSpot; h != nil {
		if u, err := url.Parse(h.AuthorizeURL); err == nil {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	if a := s.cfg.Salesforce; a != nil {
		out = append(out, "https://login.salesforce.com", "https://test.salesforce.com", "https://*.my.salesforce.com")
		out = append(out, a.SandboxOrigins...)
	}
	return out
}
