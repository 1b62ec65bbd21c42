package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/tenant"
)

// TestTenantTokenChangesOnlyBehaviour is issue 13 item 1: a tenant token may change behaviour
// settings, never a connection field (the ids, URLs, auth and secret references that decide what
// ownersync resolves and where it sends it), whether by PUT or PATCH; PATCH updates part of a
// tenant, and neither a PUT {} nor a tenant token can drop a connection.
func TestTenantTokenChangesOnlyBehaviour(t *testing.T) {
	e := newEnv(t)
	get := func() *tenant.Tenant {
		t.Helper()
		s, err := e.tenants.Get(t.Context(), "acme")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := get()
	withSF := func(change func(sf *tenant.SFConfig)) string {
		c := *before
		sf := *before.Salesforce
		change(&sf)
		c.Salesforce = &sf
		b, _ := json.Marshal(c)
		return string(b)
	}
	noHS := *before
	noHS.HubSpot = nil
	b, _ := json.Marshal(noHS)
	withoutHubSpot := string(b)
	refused := []struct {
		name, method, body string
		token              string
		status             int
		code               string
		fields             []string
	}{
		{"PUT with another instance URL", "PUT", withSF(func(sf *tenant.SFConfig) { sf.InstanceURL = "https://collector.example" }), acmeToken,
			403, "connection_fields", []string{"salesforce.instance_url"}},
		{"PUT with the operator's token as client secret", "PUT", withSF(func(sf *tenant.SFConfig) { sf.Auth.ClientSecretRef = "env:OWNERSYNC_OPERATOR_TOKEN" }), acmeToken,
			403, "connection_fields", []string{"salesforce.auth.client_secret_ref"}},
		{"PUT with another org id", "PUT", withSF(func(sf *tenant.SFConfig) { sf.OrgID = "00D5g000004GlObEAK" }), acmeToken,
			403, "connection_fields", []string{"salesforce.org_id"}},
		{"PUT of a shared key", "PUT", withSF(func(sf *tenant.SFConfig) { sf.SharedKeyRef = "env:ANY" }), acmeToken,
			403, "connection_fields", []string{"salesforce.shared_key_ref"}},
		{"PATCH of a file reference", "PATCH", `{"hubspot":{"auth":{"token_ref":"file:/proc/self/environ"},"api_base_url":"http://127.0.0.1:9"}}`, acmeToken,
			403, "connection_fields", []string{"hubspot.api_base_url", "hubspot.auth.token_ref"}},
		{"PATCH of legacy signatures and portal", "PATCH", `{"hubspot":{"legacy_signatures":true,"portal_id":999}}`, acmeToken,
			403, "connection_fields", []string{"hubspot.legacy_signatures", "hubspot.portal_id"}},
		{"tenant PUT {}", "PUT", `{}`, acmeToken, 403, "connection_fields", []string{"hubspot", "salesforce"}},
		{"tenant PATCH removing a connection", "PATCH", `{"salesforce":null}`, acmeToken, 403, "connection_fields", []string{"salesforce"}},
		{"operator PUT {}", "PUT", `{}`, operatorToken, 409, "connection_removal", []string{"hubspot", "salesforce", `{"salesforce":null}`}},
		{"operator PUT without hubspot", "PUT", withoutHubSpot, operatorToken, 409, "connection_removal", []string{"hubspot"}},
		{"PATCH with an unknown field", "PATCH", `{"salesforce":{"client_secret":"x"}}`, operatorToken, 400, "invalid_body", []string{"client_secret"}},
		{"PATCH that is not an object", "PATCH", `[1]`, operatorToken, 400, "invalid_body", nil},
		{"PATCH with another id", "PATCH", `{"id":"globex"}`, operatorToken, 400, "id_mismatch", nil},
		{"PATCH with an invalid value", "PATCH", `{"salesforce":{"direction":"sideways"}}`, acmeToken, 400, "invalid_tenant_config", []string{"salesforce.direction"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, "/v1/tenants/acme", tc.token, tc.body)
			if r.Status != tc.status || r.errorCode() != tc.code {
				t.Fatalf("= %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			for _, f := range tc.fields {
				if !strings.Contains(string(r.Body), strings.ReplaceAll(f, `"`, `\"`)) {
					t.Errorf("the answer does not name %s: %s", f, r.Body)
				}
			}
			if d := cmp.Diff(before, get()); d != "" {
				t.Errorf("a refused %s changed the tenant (-before +after):\n%s", tc.method, d)
			}
		})
	}

	// The operator too stays inside the secret namespace and the CRMs' hosts (the policy the
	// mapper's store checks; OWNERSYNC_SECRET_ENV_PREFIX, OWNERSYNC_SECRETS_DIR, OWNERSYNC_CRM_ANY_HOST).
	for _, tc := range []struct{ name, patch, field string }{
		{"the operator token as a secret", `{"salesforce":{"auth":{"client_secret_ref":"env:OWNERSYNC_OPERATOR_TOKEN"}}}`, "salesforce.auth.client_secret_ref"},
		{"a file outside the secrets directory", `{"hubspot":{"auth":{"token_ref":"file:/proc/self/environ"}}}`, "hubspot.auth.token_ref"},
		{"a host that is not Salesforce's", `{"salesforce":{"instance_url":"https://collector.example"}}`, "salesforce.instance_url"},
		{"plain http to HubSpot", `{"hubspot":{"api_base_url":"http://api.hubapi.com"}}`, "hubspot.api_base_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("PATCH", "/v1/tenants/acme", operatorToken, tc.patch)
			if r.Status != http.StatusBadRequest || r.errorCode() != "invalid_tenant_config" || !strings.Contains(string(r.Body), tc.field+":") {
				t.Errorf("= %d %s, want 400 invalid_tenant_config naming %s", r.Status, r.Body, tc.field)
			}
			if d := cmp.Diff(before, get()); d != "" {
				t.Errorf("a refused PATCH changed the tenant (-before +after):\n%s", d)
			}
		})
	}

	// A tenant token patches behaviour settings; everything else stays.
	r := e.do("PATCH", "/v1/tenants/acme", acmeToken, `{"name":"Acme (patched)","schedule":{"enabled":true,"interval":"2h"},
		"salesforce":{"direction":"crm_to_platform","auto_provisioning":true,"fallback_owner_id":"005000000000001AAA"},"hubspot":{"enabled":false}}`)
	if r.Status != http.StatusOK {
		t.Fatalf("tenant PATCH of behaviour = %d %s", r.Status, r.Body)
	}
	want := *before
	sf, hs := *before.Salesforce, *before.HubSpot
	want.Salesforce, want.HubSpot = &sf, &hs
	want.Name, want.Schedule = "Acme (patched)", tenant.Schedule{Enabled: true, Interval: "2h"}
	sf.Direction, sf.AutoProvisioning, sf.FallbackOwnerID = tenant.CRMToPlatform, true, "005000000000001AAA"
	hs.Enabled = false
	got := get()
	want.UpdatedAt = got.UpdatedAt
	if d := cmp.Diff(&want, got); d != "" {
		t.Errorf("after PATCH (-want +got):\n%s", d)
	}
	var answered tenant.Tenant
	if err := json.Unmarshal(r.Body, &answered); err != nil || answered.Name != "Acme (patched)" {
		t.Errorf("PATCH answer = %s (%v)", r.Body, err)
	}

	// The operator changes connections and removes one explicitly.
	r = e.do("PATCH", "/v1/tenants/acme", operatorToken, `{"salesforce":{"instance_url":"https://acme2.my.salesforce.com"},"hubspot":null}`)
	if r.Status != http.StatusOK {
		t.Fatalf("operator PATCH = %d %s", r.Status, r.Body)
	}
	if s := get(); s.HubSpot != nil || s.Salesforce.InstanceURL != "https://acme2.my.salesforce.com" || s.Salesforce.Auth.ClientSecretRef != "env:OWNERSYNC_SECRET_ACME_SF" {
		t.Errorf("after operator PATCH: %+v", s)
	}
	if r := e.do("PATCH", "/v1/tenants/nobody", operatorToken, `{"name":"x"}`); r.Status != http.StatusNotFound {
		t.Errorf("PATCH of an unknown tenant = %d %s, want 404", r.Status, r.Body)
	}
	if r := e.do("PATCH", "/v1/tenants/globex", acmeToken, `{"name":"x"}`); r.Status != http.StatusForbidden {
		t.Errorf("PATCH of another tenant = %d %s, want 403", r.Status, r.Body)
	}
}

// TestSourcesAreClaimedOnce is issue 13 item 2 at the API: saving another tenant's Salesforce org
// (either id form) or HubSpot portal is refused with 409 source_claimed, which names the source
// and not the tenant holding it, and changes nothing.
func TestSourcesAreClaimedOnce(t *testing.T) {
	e := newEnv(t)
	before, err := e.tenants.Get(t.Context(), "globex")
	if err != nil {
		t.Fatal(err)
	}
	sf := `"salesforce":{"enabled":true,"org_id":"%s","instance_url":"https://globex.my.salesforce.com","auth":{"flow":"client_credentials","client_id":"g","client_secret_ref":"env:OWNERSYNC_SECRET_GLOBEX"}}`
	for _, tc := range []struct{ name, method, body, source string }{
		{"PUT of acme's org, 15 characters", "PUT", `{` + fmt.Sprintf(sf, "00D5g000004XyZa") + `}`, "salesforce org 00D5g000004XyZaEAK"},
		{"PATCH of acme's org, 18 characters", "PATCH", `{` + fmt.Sprintf(sf, "00D5g000004XyZaEAK") + `}`, "salesforce org 00D5g000004XyZaEAK"},
		{"PATCH of acme's portal", "PATCH", `{"hubspot":{"enabled":true,"portal_id":4412345,"app_id":1,"client_secret_ref":"env:OWNERSYNC_SECRET_G","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_GT"}}}`, "hubspot portal 4412345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, "/v1/tenants/globex", operatorToken, tc.body)
			if r.Status != http.StatusConflict || r.errorCode() != "source_claimed" || !strings.Contains(string(r.Body), tc.source) {
				t.Fatalf("= %d %s, want 409 source_claimed naming %s", r.Status, r.Body, tc.source)
			}
			if strings.Contains(string(r.Body), "acme") {
				t.Errorf("the answer names the tenant holding the source: %s", r.Body)
			}
			if d := cmp.Diff(before, func() *tenant.Tenant { g, _ := e.tenants.Get(t.Context(), "globex"); return g }()); d != "" {
				t.Errorf("the refused save changed globex (-before +after):\n%s", d)
			}
		})
	}
	// A new tenant claiming acme's org is not created.
	r := e.do("PUT", "/v1/tenants/initech", operatorToken, `{`+fmt.Sprintf(sf, "00D5g000004XyZaEAK")+`}`)
	if r.Status != http.StatusConflict {
		t.Errorf("creating a tenant with acme's org = %d %s, want 409", r.Status, r.Body)
	}
	if _, err := e.tenants.Get(t.Context(), "initech"); err == nil {
		t.Error("the refused tenant was created")
	}
}
