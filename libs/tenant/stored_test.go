package tenant

import (
	"strings"
	"testing"
)

// TestStoredReferences: a Connect flow's stored:<tenant>/<name> references are secret references,
// but only the tenant's own; web_server needs its refresh token, client and token URL.
func TestStoredReferences(t *testing.T) {
	base := func() Tenant {
		return Tenant{ID: "acme", Salesforce: &SFConfig{Settings: Settings{Enabled: true}, OrgID: "00D5g000004XyZaEAK",
			Auth: SFAuth{Flow: "web_server", ClientID: "ck", TokenURL: "https://login.salesforce.com/services/oauth2/token",
				ClientSecretRef: "stored:acme/salesforce.client_secret", RefreshTokenRef: "stored:acme/salesforce.refresh_token"}}}
	}
	ok := base()
	ok.Normalize()
	if err := ok.Validate(); err != nil {
		t.Fatalf("connected tenant: %v", err)
	}
	for name, mut := range map[string]func(*Tenant){
		"another tenant's secret": func(x *Tenant) { x.Salesforce.Auth.RefreshTokenRef = "stored:globex/salesforce.refresh_token" },
		"no refresh token":        func(x *Tenant) { x.Salesforce.Auth.RefreshTokenRef = "" },
		"no token url":            func(x *Tenant) { x.Salesforce.Auth.TokenURL = "" },
		"malformed stored ref":    func(x *Tenant) { x.Salesforce.Auth.RefreshTokenRef = "stored:acme" },
	} {
		x := base()
		mut(&x)
		x.Normalize()
		if err := x.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "client_secret_ref") {
			t.Errorf("%s: unrelated problem %v", name, err)
		}
	}
	if IsSecretRef("stored:") || IsSecretRef("stored:/x") || !IsSecretRef("stored:acme/x") {
		t.Error("IsSecretRef on stored references")
	}
}
