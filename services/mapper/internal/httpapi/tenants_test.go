package httpapi_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/ownersync/ownersync/libs/tenant"
	mapperapi "github.com/ownersync/ownersync/services/mapper/api"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
)

func TestTenantConfiguration(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/tenants/acme", acmeToken, "")
	if r.Status != 200 {
		t.Fatalf("GET tenant = %d %s", r.Status, r.Body)
	}
	var got tenant.Tenant
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Salesforce.Auth.ClientSecretRef != "env:OWNERSYNC_SECRET_ACME_SF" || got.HubSpot.Auth.TokenRef != "env:OWNERSYNC_SECRET_ACME_HS_TOKEN" {
		t.Errorf("GET tenant lost its references: %s", r.Body)
	}

	// A tenant token may change its own tenant.
	got.Name = "Acme Corporation"
	got.Salesforce.Direction = tenant.PlatformToCRM
	body, _ := json.Marshal(got)
	if r := e.do("PUT", "/v1/tenants/acme", acmeToken, string(body)); r.Status != 200 {
		t.Fatalf("PUT tenant = %d %s", r.Status, r.Body)
	}
	stored, err := e.tenants.Get(t.Context(), "acme")
	if err != nil || stored.Name != "Acme Corporation" || stored.Salesforce.Direction != tenant.PlatformToCRM {
		t.Fatalf("stored = %+v, %v", stored, err)
	}

	// Creating a tenant: operator only; the id may come from the path alone.
	newT := `{"name":"Initech","report_recipients":["it@initech.example"],
		"hubspot":{"enabled":true,"portal_id":77,"client_secret_ref":"file:/run/secrets/ownersync/initech-hs","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_INITECH_HS_TOKEN"}}}`
	if r := e.do("PUT", "/v1/tenants/initech", acmeToken, newT); r.Status != 403 {
		t.Errorf("tenant token creating another tenant = %d, want 403", r.Status)
	}
	r = e.do("PUT", "/v1/tenants/initech", operatorToken, newT)
	if r.Status != 201 {
		t.Fatalf("operator creating a tenant = %d %s", r.Status, r.Body)
	}
	var created tenant.Tenant
	_ = json.Unmarshal(r.Body, &created)
	if created.ID != "initech" || created.HubSpot.Direction != tenant.Bidirectional || created.UpdatedAt.IsZero() {
		t.Errorf("created = %+v; want id from the path and defaults filled", created)
	}

	// The list (operator) has all three, sorted.
	r = e.do("GET", "/v1/tenants", operatorToken, "")
	var list struct{ Items []tenant.Tenant }
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range list.Items {
		ids = append(ids, x.ID)
	}
	if d := cmp.Diff([]string{"acme", "globex", "initech"}, ids); d != "" {
		t.Errorf("tenant list ids (-want +got):\n%s", d)
	}

	bad := []struct {
		name, path, body string
		status           int
		code             string
		mustMention      string
	}{
		{"literal secret", "/v1/tenants/acme", `{"id":"acme","hubspot":{"enabled":true,"portal_id":1,"client_secret_ref":"s3cr3t-literal-value","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_X"}}}`,
			400, "invalid_tenant_config", "hubspot.client_secret_ref must be a secret reference"},
		{"literal salesforce secret", "/v1/tenants/acme", `{"id":"acme","salesforce":{"enabled":true,"org_id":"00D5g000004XyZa","auth":{"flow":"client_credentials","client_secret_ref":"plain-sf-secret-value"}}}`,
			400, "invalid_tenant_config", "salesforce.auth.client_secret_ref must be a secret reference"},
		{"every problem at once", "/v1/tenants/acme", `{"report_recipients":["nope"],"schedule":{"enabled":true,"interval":"1m"},"salesforce":{"org_id":"123","direction":"sideways"}}`,
			400, "invalid_tenant_config", "is not an email address; schedule interval"},
		{"id mismatch", "/v1/tenants/acme", `{"id":"globex"}`, 400, "id_mismatch", ""},
		{"unknown field", "/v1/tenants/acme", `{"id":"acme","client_secret":"x"}`, 400, "invalid_body", "client_secret"},
		{"not json", "/v1/tenants/acme", `id: acme`, 400, "invalid_body", ""},
		{"invalid tenant id", "/v1/tenants/ACME", `{}`, 400, "invalid_tenant", ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("PUT", tc.path, operatorToken, tc.body)
			if r.Status != tc.status || r.errorCode() != tc.code || !strings.Contains(string(r.Body), tc.mustMention) {
				t.Errorf("= %d %s, want %d %s mentioning %q", r.Status, r.Body, tc.status, tc.code, tc.mustMention)
			}
			for _, secret := range []string{"s3cr3t-literal-value", "plain-sf-secret-value"} {
				if strings.Contains(string(r.Body), secret) {
					t.Errorf("the refusal echoes the secret: %s", r.Body)
				}
			}
		})
	}
	// Refused configurations changed nothing.
	if s, _ := e.tenants.Get(t.Context(), "acme"); s.Name != "Acme Corporation" || s.HubSpot.ClientSecretRef != "env:OWNERSYNC_SECRET_ACME_HS_CLIENT" {
		t.Errorf("a refused PUT changed the tenant: %+v", s)
	}
}

// TestNoSecretInResponsesOrLogs resolves nothing, but proves it: with the referenced secrets set in
// the environment, no response body or log line of any route contains a secret value or a token.
func TestNoSecretInResponsesOrLogs(t *testing.T) {
	secrets := map[string]string{
		"OWNERSYNC_SECRET_ACME_SF":          "sf-client-secret-Zq81vP0x",
		"OWNERSYNC_SECRET_ACME_HS_CLIENT":   "hs-app-secret-Jk27mW3y",
		"OWNERSYNC_SECRET_ACME_HS_TOKEN":    "pat-na1-44c1c7e4-secret",
		"OWNERSYNC_SECRET_INITECH_HS_TOKEN": "pat-na1-initech-secret-77",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	e := newEnv(t)
	var bodies []string
	call := func(method, path, token, body string) response {
		r := e.do(method, path, token, body)
		bodies = append(bodies, string(r.Body))
		return r
	}
	for _, tok := range []string{operatorToken, acmeToken} {
		for _, p := range []string{"", "/users/overview", "/mappings?q=ada", "/unmapped/platform-users", "/unmapped/crm-users",
			"/errors", "/sync-runs", "/sync-runs/run-2", "/records/hubspot/contact/1/history", "/dlq"} {
			call("GET", "/v1/tenants/acme"+p, tok, "")
		}
	}
	call("GET", "/v1/tenants", operatorToken, "")
	call("GET", "/v1/tenants/globex", acmeToken, "")
	call("GET", "/v1/tenants/acme", "wrong-token-but-long-enough", "")
	call("PUT", "/v1/tenants/acme/mappings/hubspot/u1", acmeToken, `{"crm_user_id":"9001"}`)
	call("POST", "/v1/tenants/acme/sync-users?dry_run=true", acmeToken, "")
	call("POST", "/v1/tenants/acme/dlq/replay", acmeToken, `{"service":"writer"}`)
	// A refused PUT that carries a literal secret value must not echo it or log it.
	call("PUT", "/v1/tenants/acme", operatorToken, `{"id":"acme","hubspot":{"enabled":true,"portal_id":1,"client_secret_ref":"`+secrets["OWNERSYNC_SECRET_ACME_HS_CLIENT"]+`","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_ACME_HS_TOKEN"}}}`)
	call("PUT", "/v1/tenants/initech", operatorToken, `{"hubspot":{"enabled":true,"portal_id":77,"client_secret_ref":"env:OWNERSYNC_SECRET_ACME_HS_CLIENT","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_INITECH_HS_TOKEN"}}}`)
	call("GET", "/v1/tenants/initech", operatorToken, "")
	// The service fails with an internal error: logged, not returned.
	e.svc.SetErr(errTest("dial tcp 10.0.0.7:27017: i/o timeout"))
	call("GET", "/v1/tenants/acme/users/overview", acmeToken, "")

	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"admin request"`) {
		t.Fatalf("no request logs captured:\n%s", logs)
	}
	forbidden := []string{operatorToken, acmeToken, globexToken, "wrong-token-but-long-enough"}
	for _, v := range secrets {
		forbidden = append(forbidden, v)
	}
	for _, s := range forbidden {
		for _, b := range bodies {
			if strings.Contains(b, s) {
				t.Errorf("a response contains secret %q: %s", s, b)
			}
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain secret %q", s)
		}
	}
	raw, err := dumpCollection(e.db, "tenants")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range secrets {
		if strings.Contains(raw, v) {
			t.Errorf("the tenants collection stores secret %q", v)
		}
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

// TestOpenAPIMatchesRoutes checks the OpenAPI document against Echo's routes both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(mapperapi.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	var documented []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if methods[m] {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	var registered []string
	for _, r := range e.server.E.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") {
			continue // /healthz, /readyz, /metrics belong to echoserver
		}
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		registered = append(registered, r.Method+" "+strings.Join(segs, "/"))
	}
	sort.Strings(documented)
	sort.Strings(registered)
	if d := cmp.Diff(documented, registered); d != "" {
		t.Errorf("OpenAPI paths (-documented +registered):\n%s", d)
	}
	if len(registered) < 18 {
		t.Errorf("only %d routes registered: %v", len(registered), registered)
	}
	// Every $ref points at a defined component.
	var all map[string]any
	if err := yaml.Unmarshal(mapperapi.OpenAPI, &all); err != nil {
		t.Fatal(err)
	}
	comps, _ := all["components"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "$ref" {
					ref, _ := c.(string)
					parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
					sec, _ := comps[parts[0]].(map[string]any)
					if len(parts) != 2 || sec == nil || sec[parts[1]] == nil {
						t.Errorf("dangling $ref %q", ref)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(all)
	// The document is served as is, without a token.
	r := e.do("GET", "/v1/openapi.yaml", "", "")
	if r.Status != http.StatusOK || string(r.Body) != string(mapperapi.OpenAPI) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /v1/openapi.yaml = %d %s", r.Status, r.Header.Get("Content-Type"))
	}
}

func TestDLQRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/tenants/acme/dlq?service=writer&subject=crm.owner.changed.acme.*&limit=5000", acmeToken, "")
	if r.Status != 200 {
		t.Fatalf("GET dlq = %d %s", r.Status, r.Body)
	}
	jsonEqual(t, r.Body, map[string]any{"items": []httpapi.DeadLetter{{ID: 4, Service: "writer", Subject: "crm.owner.changed.acme.salesforce",
		Stream: "CRM", StreamSequence: 9, Error: "permanent: INVALID_CROSS_REFERENCE_KEY", At: t0, EventType: "OwnerChanged", Size: 42}}})
	r = e.do("POST", "/v1/tenants/acme/dlq/replay", acmeToken, `{"ids":[4,7],"subject":"crm.>"}`)
	if r.Status != 200 {
		t.Fatalf("replay = %d %s", r.Status, r.Body)
	}
	jsonEqual(t, r.Body, httpapi.ReplayResult{Replayed: []httpapi.ReplayedLetter{{ID: 4, Subject: "crm.owner.changed.acme.salesforce", MsgID: "replay:4"}}})
	want := []string{
		"List acme {Service:writer Subject:crm.owner.changed.acme.* IDs:[] Limit:1000}",
		"Replay acme {Service: Subject:crm.> IDs:[4 7] Limit:1000}",
	}
	if d := cmp.Diff(want, e.dlq.TakeCalls()); d != "" {
		t.Errorf("DLQ calls (-want +got):\n%s", d)
	}
}
