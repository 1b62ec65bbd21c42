package connect

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
)

// Login environments of "Connect Salesforce".
const (
	EnvProduction = "production" // https://login.salesforce.com
	EnvSandbox    = "sandbox"    // https://test.salesforce.com
	EnvMyDomain   = "mydomain"   // https://<domain>.my.salesforce.com
)

// LoginOrigin returns the origin the admin signs in at: login or test.salesforce.com, a My Domain
// (host ending in .my.salesforce.com, given with or without https://) or one of the sandbox origins.
func (s *Service) LoginOrigin(env, myDomain string) (string, error) {
	switch env {
	case EnvProduction, "":
		return "https://login.salesforce.com", nil
	case EnvSandbox:
		return "https://test.salesforce.com", nil
	case EnvMyDomain:
		d := strings.TrimSpace(myDomain)
		if contains(s.cfg.Salesforce.SandboxOrigins, strings.TrimRight(d, "/")) {
			return strings.TrimRight(d, "/"), nil
		}
		d = strings.TrimPrefix(strings.TrimRight(d, "/"), "https://")
		if !isSalesforceHost(d, ".my.salesforce.com") || strings.ContainsAny(d, "/:@?#") {
			return "", public("%q is not a My Domain (it ends in .my.salesforce.com, e.g. acme.my.salesforce.com).", myDomain)
		}
		return "https://" + d, nil
	}
	return "", public("Unknown Salesforce environment %q.", env)
}

// isSalesforceHost: a DNS name under suffix, made of letters, digits, '-' and '.'.
func isSalesforceHost(host, suffix string) bool {
	if !strings.HasSuffix(host, suffix) || len(host) <= len(suffix) || len(host) > 253 {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// allowedInstance reports whether u is a Salesforce instance URL ownersync may send tokens to: a
// configured sandbox origin, or https on a host of the production CRM host allowlist
// (tenant.CRMHosts). OWNERSYNC_CRM_ANY_HOST does not widen it: a connect flow's sandboxes are named
// one by one in SandboxOrigins.
func (s *Service) allowedInstance(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return false
	}
	origin := u.Scheme + "://" + u.Host
	if contains(s.cfg.Salesforce.SandboxOrigins, origin) {
		return true
	}
	return u.Port() == "" && tenant.Policy{}.HostAllowed(provider.Salesforce, u.Scheme, u.Host)
}

func (s *Service) salesforceOAuth(origin string) *oauth2.Config {
	a := s.cfg.Salesforce
	return &oauth2.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, RedirectURL: s.CallbackURL(Salesforce), Scopes: SalesforceScopes,
		Endpoint: oauth2.Endpoint{AuthURL: origin + salesforceAuthorizePath, TokenURL: origin + salesforceTokenPath, AuthStyle: oauth2.AuthStyleInParams}}
}

// StartSalesforce returns the URL of Salesforce's login page for the tenant (PKCE S256).
func (s *Service) StartSalesforce(ctx context.Context, tenantID, actor, session, env, myDomain string) (string, error) {
	if err := s.Available(Salesforce); err != nil {
		return "", err
	}
	origin, err := s.LoginOrigin(env, myDomain)
	if err != nil {
		return "", err
	}
	verifier := oauth2.GenerateVerifier()
	state, err := s.begin(ctx, &pending{tenant: tenantID, provider: Salesforce, actor: actor, session: sessionKey(session), verifier: verifier, loginOrigin: origin})
	if err != nil {
		return "", err
	}
	return s.salesforceOAuth(origin).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login consent")), nil
}

// identity is what ownersync reads from the identity URL.
type identity struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Username       string `json:"username"`
}

func (s *Service) finishSalesforce(ctx context.Context, p *pending, code string) (key string, err error) {
	a := s.cfg.Salesforce
	tok, err := s.salesforceOAuth(p.loginOrigin).Exchange(s.ctx(ctx), code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return "", public("Salesforce refused the authorization code: %s", oauthReason(err))
	}
	if tok.RefreshToken == "" {
		return "", public("Salesforce returned no refresh token: the connected app must have the \"Perform requests at any time (refresh_token, offline_access)\" scope.")
	}
	instance, _ := tok.Extra("instance_url").(string)
	idURL, _ := tok.Extra("id").(string)
	if !s.allowedInstance(instance) {
		return "", public("Salesforce named an instance URL ownersync does not send tokens to (%q).", instance)
	}
	// The identity URL is on the login host the admin used (or, for a My Domain login, the
	// production or sandbox login host): never send the token anywhere else.
	iu, err := url.Parse(idURL)
	if err != nil || !s.identityHostOK(p.loginOrigin, iu) || !strings.HasPrefix(iu.Path, "/id/") {
		return "", public("Salesforce named an unexpected identity URL; nothing was stored.")
	}
	var id identity
	if err := s.getJSON(ctx, idURL, tok.AccessToken, &id); err != nil {
		return "", fmt.Errorf("salesforce identity: %w", err)
	}
	org, err := sfid.To18(id.OrganizationID)
	if err != nil || sfid.Prefix(org) != "00D" || !strings.HasPrefix(iu.Path, "/id/"+id.OrganizationID[:15]) {
		return "", public("Salesforce's identity answer does not name the org; nothing was stored.")
	}
	if other, err := s.claimedElsewhere(ctx, p.tenant, func(t *tenant.Tenant) bool {
		o, err := sfid.To18(func() string {
			if t.Salesforce == nil {
				return ""
			}
			return t.Salesforce.OrgID
		}())
		return err == nil && o == org
	}); err != nil {
		return "", err
	} else if other != "" {
		return "", public("Salesforce org %s is already connected to another tenant; an org can feed one tenant only.", org)
	}
	t, err := s.tenants.Get(ctx, p.tenant)
	if err != nil {
		return "", err
	}
	refreshRef, err := s.put(ctx, t.ID, SalesforceRefreshToken, tok.RefreshToken)
	if err != nil {
		return "", err
	}
	secretRef, err := s.put(ctx, t.ID, SalesforceClientSecret, a.ClientSecret)
	if err != nil {
		return "", err
	}
	sf := t.Salesforce
	if sf == nil {
		sf = &tenant.SFConfig{}
		t.Salesforce = sf
	}
	// The Outbound Message key: generated as the admin API does, shown once by the caller, only
	// its digest stored (issue 13 item 3). A reconnection keeps the key the org already uses.
	if !tenant.IsSharedKeyDigest(sf.SharedKeyRef) {
		if key, _, err = tenant.RotateSharedKey(sf, s.cfg.Now(), 0); err != nil {
			return "", err
		}
	}
	sf.Enabled = true
	sf.OrgID = org
	sf.InstanceURL = strings.TrimRight(instance, "/")
	sf.APIBaseURL = ""
	sf.Auth = tenant.SFAuth{Flow: "web_server", ClientID: a.ClientID, ClientSecretRef: secretRef, RefreshTokenRef: refreshRef,
		TokenURL: p.loginOrigin + salesforceTokenPath, ConnectedBy: p.actor, ConnectedAt: s.cfg.Now().UTC(),
		Username: id.Username} // the Outbound Messages' sending user in the metadata package
	if err := s.tenants.Put(ctx, t); err != nil {
		return "", err
	}
	return key, nil
}

// identityHostOK: the identity URL's origin is the login origin, or login/test.salesforce.com for
// a My Domain login.
func (s *Service) identityHostOK(loginOrigin string, u *url.URL) bool {
	origin := u.Scheme + "://" + u.Host
	if origin == loginOrigin {
		return true
	}
	return u.Scheme == "https" && (u.Host == "login.salesforce.com" || u.Host == "test.salesforce.com")
}
