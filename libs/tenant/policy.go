package tenant

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/secretref"
)

// Policy is what the operator allows tenant connections (issue 13 item 1): where secret
// references may point and which hosts ownersync may call with a tenant's credentials.
type Policy struct {
	// Secrets is the secret namespace (OWNERSYNC_SECRET_ENV_PREFIX, OWNERSYNC_SECRETS_DIR).
	Secrets secretref.Namespace
	// AnyCRMHost allows CRM URLs on any host and plain http (OWNERSYNC_CRM_ANY_HOST; sandboxes and
	// tests). Otherwise a URL must be https on the provider's own hosts (CRMHosts).
	AnyCRMHost bool
}

// CRMHosts are the hosts a CRM URL may name in production, per provider: a name equal to an
// entry, or under an entry that starts with a dot.
var CRMHosts = map[provider.Provider][]string{
	provider.Salesforce: {".my.salesforce.com", ".salesforce.com", ".force.com"},
	provider.HubSpot:    {"api.hubapi.com"},
}

// CheckCRMURL returns why raw may not be called for provider p, or nil.
func (p Policy) CheckCRMURL(prov provider.Provider, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry credentials", u.Redacted())
	}
	if p.AnyCRMHost {
		return nil
	}
	if u.Scheme != "https" || (u.Port() != "" && u.Port() != "443") || !hostAllowed(prov, u.Hostname()) {
		return fmt.Errorf("%q is not a %s host (https on %s)", raw, prov, strings.Join(allowedHosts(prov), ", "))
	}
	return nil
}

// HostAllowed reports whether a request to host (a URL's host, with or without port) may be sent
// for provider p.
func (p Policy) HostAllowed(prov provider.Provider, scheme, host string) bool {
	if p.AnyCRMHost {
		return true
	}
	h := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		if host[i+1:] != "443" {
			return false
		}
		h = host[:i]
	}
	return scheme == "https" && hostAllowed(prov, h)
}

func hostAllowed(prov provider.Provider, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range CRMHosts[prov] {
		if strings.HasPrefix(a, ".") && strings.HasSuffix(host, a) && len(host) > len(a) || host == a {
			return true
		}
	}
	return false
}

func allowedHosts(prov provider.Provider) []string {
	var out []string
	for _, a := range CRMHosts[prov] {
		if strings.HasPrefix(a, ".") {
			a = "*" + a
		}
		out = append(out, a)
	}
	return out
}

// Check reports, as a *ValidationError listing every problem, each secret reference outside the
// namespace and each CRM URL the policy does not allow. It adds to Validate, which checks the
// configuration's own consistency.
func (p Policy) Check(t *Tenant) error {
	var problems []string
	ref := func(field, ref string) {
		if ref == "" || !IsSecretRef(ref) || isStoredRef(ref) {
			return // empty, a literal Validate already refused, or a Connect flow's stored value (its own tenant's, Validate checks)
		}
		if err := p.Secrets.Check(ref); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", field, err))
		}
	}
	crmURL := func(prov provider.Provider, field, raw string) {
		if raw == "" {
			return
		}
		if err := p.CheckCRMURL(prov, raw); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", field, err))
		}
	}
	if sf := t.Salesforce; sf != nil {
		ref("salesforce.auth.client_secret_ref", sf.Auth.ClientSecretRef)
		ref("salesforce.auth.private_key_ref", sf.Auth.PrivateKeyRef)
		ref("salesforce.auth.refresh_token_ref", sf.Auth.RefreshTokenRef)
		crmURL(provider.Salesforce, "salesforce.instance_url", sf.InstanceURL)
		crmURL(provider.Salesforce, "salesforce.api_base_url", sf.APIBaseURL)
		crmURL(provider.Salesforce, "salesforce.auth.token_url", sf.Auth.TokenURL)
	}
	if hs := t.HubSpot; hs != nil {
		ref("hubspot.client_secret_ref", hs.ClientSecretRef)
		ref("hubspot.auth.token_ref", hs.Auth.TokenRef)
		ref("hubspot.auth.client_secret_ref", hs.Auth.ClientSecretRef)
		ref("hubspot.auth.refresh_token_ref", hs.Auth.RefreshTokenRef)
		crmURL(provider.HubSpot, "hubspot.api_base_url", hs.APIBaseURL)
		crmURL(provider.HubSpot, "hubspot.auth.token_url", hs.Auth.TokenURL)
	}
	if len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}
