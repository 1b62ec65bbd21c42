package httpapi_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
)

func tokenID(tok string) string { h := auth.Hash(tok); return hex.EncodeToString(h[:4]) }

var (
	operatorActor = "operator:" + tokenID(operatorToken)
	acmeActor     = "tenant:acme:" + tokenID(acmeToken)
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, token string
		want                      int
		code                      string
	}{
		{"no token", "GET", "/v1/tenants/acme/users/overview", "", 401, "unauthenticated"},
		{"unknown token", "GET", "/v1/tenants/acme/users/overview", "not-a-known-token-123456", 401, "unauthenticated"},
		{"short token", "GET", "/v1/tenants/acme/users/overview", "abc", 401, "unauthenticated"},
		{"tenant token, own tenant", "GET", "/v1/tenants/acme/users/overview", acmeToken, 200, ""},
		{"tenant token, other tenant", "GET", "/v1/tenants/globex/users/overview", acmeToken, 403, "forbidden"},
		{"tenant token, other tenant config", "GET", "/v1/tenants/globex", acmeToken, 403, "forbidden"},
		{"tenant token, other tenant map", "PUT", "/v1/tenants/globex/mappings/hubspot/u1", acmeToken, 403, "forbidden"},
		{"tenant token, other tenant dlq replay", "POST", "/v1/tenants/globex/dlq/replay", acmeToken, 403, "forbidden"},
		{"tenant token, tenant list", "GET", "/v1/tenants", acmeToken, 403, "forbidden"},
		{"tenant token, mint token", "POST", "/v1/tenants/acme/tokens", acmeToken, 403, "forbidden"},
		{"operator, acme", "GET", "/v1/tenants/acme/users/overview", operatorToken, 200, ""},
		{"operator, globex", "GET", "/v1/tenants/globex", operatorToken, 200, ""},
		{"operator, tenant list", "GET", "/v1/tenants", operatorToken, 200, ""},
		{"globex token, own", "GET", "/v1/tenants/globex", globexToken, 200, ""},
		{"globex token, acme", "GET", "/v1/tenants/acme/mappings", globexToken, 403, "forbidden"},
		{"operator, unknown tenant", "GET", "/v1/tenants/nobody/users/overview", operatorToken, 404, "tenant_not_found"},
		{"operator, invalid tenant id", "GET", "/v1/tenants/Bad.Tenant/users/overview", operatorToken, 400, "invalid_tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.token, "")
			if r.Status != tc.want || r.errorCode() != tc.code {
				t.Fatalf("%s %s = %d %s, want %d %q", tc.method, tc.path, r.Status, r.Body, tc.want, tc.code)
			}
			if tc.want == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", r.Header)
			}
		})
	}
	// Nothing reached the core for any refused request.
	for _, c := range e.svc.TakeCalls() {
		if strings.Contains(c, "globex") {
			t.Errorf("a refused request reached the service: %s", c)
		}
	}
	if c := e.dlq.TakeCalls(); len(c) > 0 {
		t.Errorf("a refused request reached the DLQ: %v", c)
	}
}

func TestBearerSchemeParsing(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"Basic " + acmeToken, acmeToken, "Bearer", "Bearer  "} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/tenants/acme", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization %q → %d, want 401", h, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/tenants/acme", nil)
	req.Header.Set("Authorization", "bearer "+acmeToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("lower-case scheme → %d, want 200", resp.StatusCode)
	}
}

func TestMintedTenantToken(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/tenants/globex/tokens", operatorToken, "")
	if r.Status != 201 {
		t.Fatalf("mint = %d %s", r.Status, r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
	}
	var m struct{ Tenant, Token string }
	if err := jsonUnmarshal(r.Body, &m); err != nil || m.Tenant != "globex" || len(m.Token) < 40 {
		t.Fatalf("mint body = %s (%v)", r.Body, err)
	}
	if got := e.do("GET", "/v1/tenants/globex", m.Token, ""); got.Status != 200 {
		t.Errorf("minted token on its tenant = %d %s", got.Status, got.Body)
	}
	if got := e.do("GET", "/v1/tenants/acme", m.Token, ""); got.Status != 403 {
		t.Errorf("minted token on another tenant = %d, want 403", got.Status)
	}
	if got := e.do("GET", "/v1/tenants", m.Token, ""); got.Status != 403 {
		t.Errorf("minted token on the tenant list = %d, want 403", got.Status)
	}
	// Stored hashed: the collection holds the SHA-256 and never the token.
	raw, err := dumpCollection(e.db, auth.Collection)
	if err != nil {
		t.Fatal(err)
	}
	h := auth.Hash(m.Token)
	if !strings.Contains(raw, hex.EncodeToString(h[:])) || strings.Contains(raw, m.Token) {
		t.Errorf("admin_tokens = %s; want the hash and not the token", raw)
	}
	// A second store on the same database (a restarted or other replica) accepts it too.
	other, err := auth.New(auth.Options{OperatorToken: operatorToken, DB: e.db})
	if err != nil {
		t.Fatal(err)
	}
	p, err := other.Authenticate(t.Context(), m.Token)
	if err != nil || p != (auth.Principal{Tenant: "globex", TokenID: tokenID(m.Token)}) {
		t.Errorf("Authenticate on a fresh store = %+v, %v", p, err)
	}
	if got := e.do("POST", "/v1/tenants/nobody/tokens", operatorToken, ""); got.Status != 404 {
		t.Errorf("mint for an unknown tenant = %d, want 404", got.Status)
	}
}

// TestHappyPaths drives every read and write of the admin API over the in-memory core (apiDemo)
// and compares each body with the JSON the API documents, written out here: the conversion from
// the core's domain types is under test, not only the routing.
func TestHappyPaths(t *testing.T) {
	e := newEnv(t)
	fin := t0.Add(3 * time.Second)
	fin0 := t0.Add(-2*time.Hour + time.Second)
	ada := httpapi.Mapping{Provider: "salesforce", PlatformUserID: "u1", PlatformUserName: "Ada Lovelace", PlatformUserEmail: "ada@acme.example",
		CRMUserID: "005000000000001AAA", CRMUserName: "Ada Lovelace", CRMUserEmail: "ada@acme.example", CRMUserActive: true, Status: "synced", MadeBy: "email", CreatedAt: t0, UpdatedAt: t0}
	bob := httpapi.Mapping{Provider: "salesforce", PlatformUserID: "u2", PlatformUserName: "Bob Byte", PlatformUserEmail: "bob@acme.example",
		CRMUserID: "005000000000002AAA", CRMUserActive: false, Status: "error", MadeBy: "manual", Reason: "the Salesforce user was deactivated", CreatedAt: t0, UpdatedAt: t0}
	run1 := httpapi.Run{ID: "run-1", Tenant: "acme", Trigger: "schedule", State: "succeeded", Phase: "done", Pulled: 15, Processed: 12,
		StartedAt: t0.Add(-time.Hour), FinishedAt: &fin, Providers: []httpapi.RunProvider{{Provider: "salesforce", Mapped: 10, Created: 1,
			Conflicts: 1, Errors: 1, UnmappedPlatform: 1, UnmappedCRM: 4, ChangesTotal: 3, Changes: []httpapi.Change{{Kind: "created",
				PlatformUserID: "u1", CRMUserID: "005000000000001AAA", Email: "ada@acme.example", Name: "Ada Lovelace"}}}}}
	// A partial run is failed to the API; its providers say which one failed.
	run0 := httpapi.Run{ID: "run-0", Tenant: "acme", Trigger: "schedule", State: "failed", Phase: "done", Pulled: 11, Processed: 12,
		StartedAt: t0.Add(-2 * time.Hour), FinishedAt: &fin0, Error: "a provider failed; see providers", Providers: []httpapi.RunProvider{
			{Provider: "salesforce", Error: "salesforce: 401 INVALID_SESSION_ID"}, {Provider: "hubspot", Mapped: 11, UnmappedPlatform: 1}}}
	unmappedSF := func(id, name, email string) httpapi.UnmappedUser {
		return httpapi.UnmappedUser{Provider: "salesforce", ID: id, Name: name, Email: email, Status: "active", Reason: "no salesforce user has this email"}
	}
	unmappedHS := func(id, name, email string) httpapi.UnmappedUser {
		return httpapi.UnmappedUser{Provider: "hubspot", ID: id, Name: name, Email: email, Status: "active", Reason: "no hubspot user has this email"}
	}
	newRun := func(id string, dry bool) httpapi.Run {
		return httpapi.Run{ID: id, Tenant: "acme", Trigger: "api", DryRun: dry, State: "running", Phase: "starting", StartedAt: t0}
	}
	tests := []struct {
		name, method, path, token, body string
		setup                           func()
		status                          int
		want                            any // JSON-equal body; nil = no body
		calls                           []string
	}{
		{name: "overview", method: "GET", path: "/v1/tenants/acme/users/overview", token: acmeToken, status: 200,
			want: httpapi.Overview{Tenant: "acme", LastSync: &run1, Providers: []httpapi.ProviderOverview{
				{Provider: "salesforce", Connected: true, PlatformUsers: 5, CRMUsers: 3, Mapped: 2, Manual: 1, Conflicts: 1, // the one problem, ambiguous_email (mapping.CountProblems)
					UnmappedPlatform: 3, UnmappedCRM: 1, LastSyncAt: &fin},
				{Provider: "hubspot", Connected: true, PlatformUsers: 5, CRMUsers: 1, UnmappedPlatform: 5, UnmappedCRM: 1, LastSyncAt: &fin},
			}},
			calls: []string{"Overview acme"}},
		{name: "mappings defaults", method: "GET", path: "/v1/tenants/acme/mappings", token: acmeToken,
			status: 200, want: httpapi.MappingPage{Items: []httpapi.Mapping{ada, bob}, Total: 2, Page: 1, PerPage: 50},
			calls: []string{"ListMappings acme {Provider: Status: Q: Page:1 PerPage:50}"}},
		{name: "mappings filtered", method: "GET", path: "/v1/tenants/acme/mappings?provider=salesforce&status=error&q=+Bob%20B+&per_page=25", token: acmeToken,
			status: 200, want: httpapi.MappingPage{Items: []httpapi.Mapping{bob}, Total: 1, Page: 1, PerPage: 25},
			calls: []string{"ListMappings acme {Provider:salesforce Status:error Q:Bob B Page:1 PerPage:25}"}},
		{name: "mappings second page", method: "GET", path: "/v1/tenants/acme/mappings?page=2&per_page=1", token: acmeToken,
			status: 200, want: httpapi.MappingPage{Items: []httpapi.Mapping{bob}, Total: 2, Page: 2, PerPage: 1},
			calls: []string{"ListMappings acme {Provider: Status: Q: Page:2 PerPage:1}"}},
		{name: "mappings per_page capped", method: "GET", path: "/v1/tenants/acme/mappings?per_page=5000", token: operatorToken,
			status: 200, want: httpapi.MappingPage{Items: []httpapi.Mapping{ada, bob}, Total: 2, Page: 1, PerPage: 200},
			calls: []string{"ListMappings acme {Provider: Status: Q: Page:1 PerPage:200}"}},
		{name: "unmapped platform", method: "GET", path: "/v1/tenants/acme/unmapped/platform-users?provider=salesforce", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.UnmappedUser{unmappedSF("u7", "Sam Seven", "sam@acme.example"),
				unmappedSF("user:42@x", "Xia Colon", "xia@acme.example"), unmappedSF("u9", "Nina New", "nina@acme.example")}},
			calls: []string{"UnmappedPlatformUsers acme salesforce"}},
		{name: "unmapped platform all providers", method: "GET", path: "/v1/tenants/acme/unmapped/platform-users", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.UnmappedUser{unmappedSF("u7", "Sam Seven", "sam@acme.example"),
				unmappedSF("user:42@x", "Xia Colon", "xia@acme.example"), unmappedSF("u9", "Nina New", "nina@acme.example"),
				unmappedHS("u1", "Ada Lovelace", "ada@acme.example"), unmappedHS("u2", "Bob Byte", "bob@acme.example"), unmappedHS("u7", "Sam Seven", "sam@acme.example"),
				unmappedHS("user:42@x", "Xia Colon", "xia@acme.example"), unmappedHS("u9", "Nina New", "nina@acme.example")}},
			calls: []string{"UnmappedPlatformUsers acme "}},
		{name: "unmapped crm", method: "GET", path: "/v1/tenants/acme/unmapped/crm-users?provider=hubspot", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.UnmappedUser{{Provider: "hubspot", ID: "9001", Name: "Olga Owner", Email: "olga@acme.example", Status: "active"}}},
			calls: []string{"UnmappedCRMUsers acme hubspot"}},
		{name: "errors", method: "GET", path: "/v1/tenants/acme/errors?provider=salesforce", token: acmeToken, status: 200,
			want: map[string]any{"items": []httpapi.Problem{{Provider: "salesforce", Code: "ambiguous_email", Kind: "conflict", PlatformUserID: "u3", CRMUserID: "005000000000003AAA",
				Email: "cy@acme.example", CRMUserIDs: []string{"005000000000003AAA"}, PlatformUserIDs: []string{"u3"},
				Message: "two active Salesforce users have the email cy@acme.example", Fix: "deactivate one of them or map the user manually", Since: &t0}}},
			calls: []string{"Errors acme salesforce"}},
		{name: "runs", method: "GET", path: "/v1/tenants/acme/sync-runs", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.Run{run1, run0}}, calls: []string{"Runs acme 20"}},
		{name: "runs limit capped", method: "GET", path: "/v1/tenants/acme/sync-runs?limit=1000", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.Run{run1, run0}}, calls: []string{"Runs acme 100"}},
		{name: "run", method: "GET", path: "/v1/tenants/acme/sync-runs/run-1", token: acmeToken,
			status: 200, want: run1, calls: []string{"Run acme run-1"}},
		{name: "partial run", method: "GET", path: "/v1/tenants/acme/sync-runs/run-0", token: acmeToken,
			status: 200, want: run0, calls: []string{"Run acme run-0"}},
		{name: "history salesforce contact", method: "GET", path: "/v1/tenants/acme/records/salesforce/contact/003000000000001/history", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.HistoryEntry{{ID: "h1", Tenant: "acme", Provider: "salesforce", RecordType: "contact",
				RecordID: "003000000000001AAA", At: t0, Direction: "crm_to_platform", Outcome: "assigned", OwnerAfter: "005000000000001AAA", PlatformUserID: "u1", EventID: "sf:00D:1"}}},
			calls: []string{"RecordHistory acme salesforce contact 003000000000001AAA"}},
		{name: "history salesforce lead", method: "GET", path: "/v1/tenants/acme/records/salesforce/lead/00Q000000000001EAA/history", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.HistoryEntry{{ID: "h2", Tenant: "acme", Provider: "salesforce", RecordType: "lead",
				RecordID: "00Q000000000001EAA", At: t0, Direction: "platform_to_crm", Outcome: "written", OwnerBefore: "005000000000001AAA", OwnerAfter: "005000000000007AAA",
				PlatformUserID: "u7", EventID: "pl:9", PlatformRecordID: "lead-9", OccurredAt: t0.Add(-time.Minute)}}},
			calls: []string{"RecordHistory acme salesforce lead 00Q000000000001EAA"}},
		{name: "history hubspot", method: "GET", path: "/v1/tenants/acme/records/hubspot/contact/151/history", token: acmeToken,
			status: 200, want: map[string]any{"items": []httpapi.HistoryEntry{{ID: "h3", Tenant: "acme", Provider: "hubspot", RecordType: "contact",
				RecordID: "151", At: t0, Direction: "crm_to_platform", Outcome: "unmapped_owner", OwnerAfter: "9001", EventID: "hs:1", Reason: "no mapping for owner 9001"}}},
			calls: []string{"RecordHistory acme hubspot contact 151"}},
		{name: "map manually salesforce 15-char id", method: "PUT", path: "/v1/tenants/acme/mappings/salesforce/u7", token: acmeToken,
			body: `{"crm_user_id":"005000000000007"}`, status: 200,
			want: httpapi.Mapping{Provider: "salesforce", PlatformUserID: "u7", PlatformUserName: "Sam Seven", PlatformUserEmail: "sam@acme.example",
				CRMUserID: "005000000000007AAA", CRMUserName: "Sam Seven", CRMUserEmail: "sam7@acme.example", CRMUserActive: true, Status: "synced", MadeBy: "manual", CreatedAt: t0, UpdatedAt: t0},
			calls: []string{"MapManually acme salesforce u7 005000000000007AAA " + acmeActor}},
		{name: "map manually hubspot", method: "PUT", path: "/v1/tenants/acme/mappings/hubspot/user:42@x", token: operatorToken,
			body: `{"crm_user_id":" 9001 "}`, status: 200,
			want: httpapi.Mapping{Provider: "hubspot", PlatformUserID: "user:42@x", PlatformUserName: "Xia Colon", PlatformUserEmail: "xia@acme.example",
				CRMUserID: "9001", CRMUserName: "Olga Owner", CRMUserEmail: "olga@acme.example", CRMUserActive: true, Status: "synced", MadeBy: "manual", CreatedAt: t0, UpdatedAt: t0},
			calls: []string{"MapManually acme hubspot user:42@x 9001 " + operatorActor}},
		{name: "unmap", method: "DELETE", path: "/v1/tenants/acme/mappings/hubspot/user:42@x", token: acmeToken,
			status: 204, calls: []string{"Unmap acme hubspot user:42@x " + acmeActor}},
		{name: "sync started", method: "POST", path: "/v1/tenants/acme/sync-users", token: acmeToken,
			status: 202, want: newRun("run-2", false),
			calls: []string{"StartSync acme {Tenant:acme Trigger:api DryRun:false EmailReport:false Actor:" + acmeActor + "}"}},
		{name: "sync already running", method: "POST", path: "/v1/tenants/acme/sync-users", token: acmeToken,
			status: 200, want: newRun("run-2", false),
			calls: []string{"StartSync acme {Tenant:acme Trigger:api DryRun:false EmailReport:false Actor:" + acmeActor + "}"}},
		{name: "sync dry run", method: "POST", path: "/v1/tenants/acme/sync-users?dry_run=true", token: acmeToken,
			setup: e.svc.FinishRuns, status: 202, want: newRun("run-3", true),
			calls: []string{"StartSync acme {Tenant:acme Trigger:api DryRun:true EmailReport:false Actor:" + acmeActor + "}"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status = %d %s, want %d", r.Status, r.Body, tc.status)
			}
			if tc.want != nil {
				jsonEqual(t, r.Body, tc.want)
			} else if len(r.Body) != 0 {
				t.Errorf("body = %s, want none", r.Body)
			}
			if d := cmp.Diff(tc.calls, e.svc.TakeCalls()); d != "" {
				t.Errorf("service calls (-want +got):\n%s", d)
			}
		})
	}
	r := e.do("POST", "/v1/tenants/acme/sync-users", acmeToken, "")
	if loc := r.Header.Get("Location"); loc != "/v1/tenants/acme/sync-runs/run-3" {
		t.Errorf("Location = %q", loc)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	e := newEnvWith(t, consoletest.NewService())
	for path, want := range map[string]string{
		"/v1/tenants/acme/mappings":                          `{"items":[],"total":0,"page":1,"per_page":50}`,
		"/v1/tenants/acme/unmapped/platform-users":           `{"items":[]}`,
		"/v1/tenants/acme/errors":                            `{"items":[]}`,
		"/v1/tenants/acme/sync-runs":                         `{"items":[]}`,
		"/v1/tenants/acme/records/hubspot/contact/1/history": `{"items":[]}`,
	} {
		r := e.do("GET", path, acmeToken, "")
		if got := strings.TrimSpace(string(r.Body)); r.Status != 200 || got != want {
			t.Errorf("GET %s = %d %s, want %s", path, r.Status, got, want)
		}
	}
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"mappings bad provider", "GET", "/v1/tenants/acme/mappings?provider=pipedrive", "", 400, "invalid_provider"},
		{"mappings bad status", "GET", "/v1/tenants/acme/mappings?status=weird", "", 400, "invalid_status"},
		{"mappings page zero", "GET", "/v1/tenants/acme/mappings?page=0", "", 400, "invalid_page"},
		{"mappings page text", "GET", "/v1/tenants/acme/mappings?page=two", "", 400, "invalid_page"},
		{"mappings per_page zero", "GET", "/v1/tenants/acme/mappings?per_page=0", "", 400, "invalid_per_page"},
		{"mappings per_page negative", "GET", "/v1/tenants/acme/mappings?per_page=-5", "", 400, "invalid_per_page"},
		{"mappings q too long", "GET", "/v1/tenants/acme/mappings?q=" + strings.Repeat("x", 201), "", 400, "invalid_q"},
		{"unmapped bad provider", "GET", "/v1/tenants/acme/unmapped/crm-users?provider=SALESFORCE", "", 400, "invalid_provider"},
		{"errors bad provider", "GET", "/v1/tenants/acme/errors?provider=x", "", 400, "invalid_provider"},
		{"map bad provider", "PUT", "/v1/tenants/acme/mappings/zoho/u1", `{"crm_user_id":"1"}`, 400, "invalid_provider"},
		{"map bad platform id", "PUT", "/v1/tenants/acme/mappings/hubspot/-u1", `{"crm_user_id":"1"}`, 400, "invalid_platform_user_id"},
		{"map long platform id", "PUT", "/v1/tenants/acme/mappings/hubspot/" + strings.Repeat("a", 129), `{"crm_user_id":"1"}`, 400, "invalid_platform_user_id"},
		{"map no body", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", "", 400, "invalid_body"},
		{"map bad json", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user_id":`, 400, "invalid_body"},
		{"map unknown field", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user":"1"}`, 400, "invalid_body"},
		{"map two values", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user_id":"1"}{}`, 400, "invalid_body"},
		{"map wrong type", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user_id":1}`, 400, "invalid_body"},
		{"map empty crm id", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user_id":""}`, 400, "invalid_crm_user_id"},
		{"map hubspot non-numeric", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user_id":"abc"}`, 400, "invalid_crm_user_id"},
		{"map salesforce queue", "PUT", "/v1/tenants/acme/mappings/salesforce/u1", `{"crm_user_id":"00G000000000001"}`, 400, "invalid_crm_user_id"},
		{"map salesforce short", "PUT", "/v1/tenants/acme/mappings/salesforce/u1", `{"crm_user_id":"0050000"}`, 400, "invalid_crm_user_id"},
		{"map body too large", "PUT", "/v1/tenants/acme/mappings/hubspot/u1", `{"crm_user_id":"` + strings.Repeat("1", 5000) + `"}`, 413, "body_too_large"},
		{"unmap bad provider", "DELETE", "/v1/tenants/acme/mappings/x/u1", "", 400, "invalid_provider"},
		{"sync bad dry_run", "POST", "/v1/tenants/acme/sync-users?dry_run=maybe", "", 400, "invalid_dry_run"},
		{"runs bad limit", "GET", "/v1/tenants/acme/sync-runs?limit=0", "", 400, "invalid_limit"},
		{"run bad id", "GET", "/v1/tenants/acme/sync-runs/..", "", 400, "invalid_run_id"},
		{"history bad provider", "GET", "/v1/tenants/acme/records/zoho/contact/1/history", "", 400, "invalid_provider"},
		{"history bad type", "GET", "/v1/tenants/acme/records/salesforce/account/001000000000001/history", "", 400, "invalid_record_type"},
		{"history hubspot lead", "GET", "/v1/tenants/acme/records/hubspot/lead/1/history", "", 400, "invalid_record_type"},
		{"history contact with lead id", "GET", "/v1/tenants/acme/records/salesforce/contact/00Q000000000001/history", "", 400, "invalid_record_id"},
		{"history hubspot bad id", "GET", "/v1/tenants/acme/records/hubspot/contact/1a/history", "", 400, "invalid_record_id"},
		{"dlq bad service", "GET", "/v1/tenants/acme/dlq?service=Writer!", "", 400, "invalid_service"},
		{"dlq bad subject", "GET", "/v1/tenants/acme/dlq?subject=crm.>.x", "", 400, "invalid_subject"},
		{"dlq bad subject spaces", "GET", "/v1/tenants/acme/dlq?subject=crm..x", "", 400, "invalid_subject"},
		{"dlq bad limit", "GET", "/v1/tenants/acme/dlq?limit=x", "", 400, "invalid_limit"},
		{"replay empty filter", "POST", "/v1/tenants/acme/dlq/replay", `{}`, 400, "invalid_filter"},
		{"replay zero id", "POST", "/v1/tenants/acme/dlq/replay", `{"ids":[0]}`, 400, "invalid_ids"},
		{"replay negative id", "POST", "/v1/tenants/acme/dlq/replay", `{"ids":[-1]}`, 400, "invalid_body"},
		{"replay bad subject", "POST", "/v1/tenants/acme/dlq/replay", `{"subject":"a.b*"}`, 400, "invalid_subject"},
		{"replay no body", "POST", "/v1/tenants/acme/dlq/replay", "", 400, "invalid_body"},
		{"unknown route", "GET", "/v1/tenants/acme/nothing", "", 404, "not_found"},
		{"wrong method", "PATCH", "/v1/tenants/acme/mappings", "", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, operatorToken, tc.body)
			if r.Status != tc.status || r.errorCode() != tc.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tc.method, tc.path, r.Status, r.Body, tc.status, tc.code)
			}
		})
	}
	if c := e.svc.TakeCalls(); len(c) > 0 {
		t.Errorf("bad input reached the service: %v", c)
	}
	if c := e.dlq.TakeCalls(); len(c) > 0 {
		t.Errorf("bad input reached the DLQ: %v", c)
	}
	// Content-Type other than JSON.
	req, _ := http.NewRequest("PUT", e.srv.URL+"/v1/tenants/acme/mappings/hubspot/u1", strings.NewReader(`{"crm_user_id":"1"}`))
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("text/plain body → %d, want 415", resp.StatusCode)
	}
}

func TestServiceErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		err     error
		status  int
		code    string
		message string
	}{
		{httpapi.NotFound("platform user u7 not found"), 404, "not_found", "platform user u7 not found"},
		{fmt.Errorf("map: %w", httpapi.Conflict("CRM user 9001 is pinned to u3")), 409, "conflict", "CRM user 9001 is pinned to u3"},
		{httpapi.Invalid("the HubSpot owner 9001 is archived"), 400, "invalid", "the HubSpot owner 9001 is archived"},
		{fmt.Errorf("run r9: %w", httpapi.ErrNotFound), 404, "not_found", "run r9: not found"},
		{fmt.Errorf("busy: %w", httpapi.ErrConflict), 409, "conflict", "busy: conflict"},
		{errors.New("mongo: connection reset by 10.0.0.7 (password=hunter2)"), 500, "internal", "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.code+"/"+tc.message, func(t *testing.T) {
			e.svc.SetErr(tc.err)
			r := e.do("PUT", "/v1/tenants/acme/mappings/hubspot/u7", acmeToken, `{"crm_user_id":"9001"}`)
			var b struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := jsonUnmarshal(r.Body, &b); err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || b.Error.Code != tc.code || b.Error.Message != tc.message {
				t.Errorf("= %d %s, want %d %s %q", r.Status, r.Body, tc.status, tc.code, tc.message)
			}
		})
	}
	// The internal error's text is logged for the operator, never returned.
	if !strings.Contains(e.logs.String(), "connection reset") {
		t.Errorf("internal error not logged:\n%s", e.logs.String())
	}
}

// TestEveryRouteIsGuarded walks every registered /v1 route: without a token it answers 401, with
// another tenant's token 403, and nothing reaches the core.
func TestEveryRouteIsGuarded(t *testing.T) {
	e := newEnv(t)
	params := map[string]string{":tenant": "globex", ":provider": "hubspot", ":platformUserId": "u1", ":type": "contact", ":id": "1"}
	n := 0
	for _, r := range e.server.E.Routes() {
		if !strings.HasPrefix(r.Path, "/v1/tenants") {
			continue
		}
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if v, ok := params[s]; ok {
				segs[i] = v
			}
		}
		path := strings.Join(segs, "/")
		body := ""
		if r.Method == "PUT" || r.Method == "POST" {
			body = `{}`
		}
		if got := e.do(r.Method, path, "", body); got.Status != 401 {
			t.Errorf("%s %s without a token = %d, want 401", r.Method, path, got.Status)
		}
		if got := e.do(r.Method, path, acmeToken, body); got.Status != 403 {
			t.Errorf("%s %s with acme's token = %d, want 403", r.Method, path, got.Status)
		}
		n++
	}
	if n < 17 {
		t.Errorf("walked %d routes, want every tenant route", n)
	}
	if c := e.svc.TakeCalls(); len(c) > 0 {
		t.Errorf("refused requests reached the service: %v", c)
	}
	if c := e.dlq.TakeCalls(); len(c) > 0 {
		t.Errorf("refused requests reached the DLQ: %v", c)
	}
}
