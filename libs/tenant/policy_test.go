package tenant

import (
	"errors"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/secretref"
)

// TestPolicy is issue 13 item 1 at validation: secret references outside the operator's namespace
// and CRM URLs off the providers' hosts are refused, each named with its field; the switch for
// sandboxes allows any host.
func TestPolicy(t *testing.T) {
	p := Policy{Secrets: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: "/run/secrets/ownersync"}}
	good := func() *Tenant {
		return &Tenant{ID: "acme",
			Salesforce: &SFConfig{Settings: Settings{Enabled: true}, OrgID: "00D5g000004XyZaEAK", InstanceURL: "https://acme.my.salesforce.com",
				Auth: SFAuth{Flow: "jwt_bearer", ClientID: "c", Username: "u", PrivateKeyRef: "file:/run/secrets/ownersync/acme.pem",
					TokenURL: "https://login.salesforce.com/services/oauth2/token"}},
			HubSpot: &HSConfig{Settings: Settings{Enabled: true, APIBaseURL: "https://api.hubapi.com"}, PortalID: 1, ClientSecretRef: "env:OWNERSYNC_SECRET_ACME_HS",
				Auth: HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_ACME_HS_TOKEN"}},
		}
	}
	if err := p.Check(good()); err != nil {
		t.Fatalf("a configuration inside the policy: %v", err)
	}
	for _, u := range []string{"https://acme.lightning.force.com", "https://acme--dev.sandbox.my.salesforce.com", "https://test.salesforce.com:443"} {
		tn := good()
		tn.Salesforce.InstanceURL = u
		if err := p.Check(tn); err != nil {
			t.Errorf("instance_url %s: %v", u, err)
		}
	}
	bad := good()
	bad.Salesforce.InstanceURL = "https://collector.example"
	bad.Salesforce.APIBaseURL = "http://acme.my.salesforce.com"
	bad.Salesforce.Auth.TokenURL = "https://login.salesforce.com.evil.example/token"
	bad.Salesforce.Auth.PrivateKeyRef = "file:/proc/self/environ"
	bad.HubSpot.APIBaseURL = "https://api.hubapi.com:8443"
	bad.HubSpot.Auth.TokenURL = "https://user:pw@api.hubapi.com/oauth/v1/token"
	bad.HubSpot.Auth.TokenRef = "file:/run/secrets/ownersync/../../../etc/shadow"
	err := p.Check(bad)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Check = %v, want a ValidationError", err)
	}
	for _, f := range []string{"salesforce.instance_url", "salesforce.api_base_url", "salesforce.auth.token_url", "salesforce.auth.private_key_ref",
		"hubspot.api_base_url", "hubspot.auth.token_url", "hubspot.auth.token_ref"} {
		if !strings.Contains(err.Error(), f+":") {
			t.Errorf("the refusal does not name %s: %v", f, err)
		}
	}
	if len(ve.Problems) != 7 || strings.Contains(err.Error(), "pw@") {
		t.Errorf("problems = %q", ve.Problems)
	}
	sandbox := good()
	sandbox.Salesforce.InstanceURL, sandbox.HubSpot.APIBaseURL = "http://127.0.0.1:8123", "http://127.0.0.1:8124"
	if err := (Policy{Secrets: p.Secrets, AnyCRMHost: true}).Check(sandbox); err != nil {
		t.Errorf("any host allowed: %v", err)
	}
	if err := p.Check(sandbox); err == nil {
		t.Error("a loopback CRM URL passed the production policy")
	}
}
