package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
	"github.com/ownersync/ownersync/workbench/harness"
)

// Tokens of the tests; the operator reaches every tenant, the others one each.
const (
	operatorToken = "op-token-7f3a9c1e5b2d4f60"
	acmeToken     = "acme-token-2b8e4d6f0a1c3e5g"
	globexToken   = "globex-token-9d1f3b5c7e0a2468"
)

var mongoURI string

// TestMain starts one embedded FerretDB for the package; every test uses its own database.
func TestMain(m *testing.M) { harness.MainWithMongo(m, &mongoURI) }

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *consoletest.Service
	dlq     *consoletest.DeadLetters
	tenants *tenantstore.Store
	tokens  *auth.Store
	db      *mongo.Database
	logs    *syncBuffer
	server  *echoserver.Server
}

var dbNameRE = regexp.MustCompile(`[^A-Za-z0-9]+`)

// newEnv starts the API on a real HTTP server with the echoserver error handler, a tenant store and
// token store on FerretDB, tenants acme and globex, the in-memory core apiDemo and the in-memory DLQ
// (consoletest.DeadLetterSeed).
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, apiDemo())
}

// newEnvWith is newEnv over the core svc.
func newEnvWith(t *testing.T, svc *consoletest.Service) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := dbNameRE.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: mongoURI, Database: "t_" + name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.DB.Drop(context.Background()); _ = conn.Close(context.Background()) })
	if err := mongodb.EnsureIndexes(ctx, conn.DB, append(append([]mongodb.Index{}, tenantstore.Indexes...), auth.Indexes...)); err != nil {
		t.Fatal(err)
	}
	ts := tenantstore.New(conn.DB, nil)
	ts.Policy = &tenant.Policy{Secrets: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: "/run/secrets/ownersync"}}
	for _, tn := range []tenant.Tenant{acmeTenant(), {ID: "globex", Name: "Globex"}} {
		if err := ts.Put(ctx, &tn); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := auth.New(auth.Options{
		OperatorToken: operatorToken,
		TenantTokens:  map[string]string{"acme": acmeToken, "globex": globexToken},
		DB:            conn.DB,
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := echoserver.New(echoserver.Options{Service: "mapper", Logger: log})
	e := &env{t: t, svc: svc, dlq: &consoletest.DeadLetters{Letters: consoletest.DeadLetterSeed()}, tenants: ts, tokens: tokens, db: conn.DB, logs: logs, server: s}
	api := httpapi.New(httpapi.Config{MaxBodyBytes: 4096, RunsLimit: 20, DLQLimit: 100, SalesforceWebhookURL: webhookURL, KeyOverlap: 72 * time.Hour}, e.svc, ts, tokens, e.dlq, log)
	api.Register(s.E)
	e.srv = httptest.NewServer(s.E)
	t.Cleanup(e.srv.Close)
	return e
}

// acmeTenant is a fully connected tenant whose secrets are references to env variables.
func acmeTenant() tenant.Tenant {
	return tenant.Tenant{
		ID: "acme", Name: "Acme Corp", ReportRecipients: []string{"admin@acme.example"}, ReportsEnabled: true,
		Salesforce: &tenant.SFConfig{
			Settings: tenant.Settings{Enabled: true, RemapOnDeactivation: true},
			OrgID:    "00D5g000004XyZaEAK", InstanceURL: "https://acme.my.salesforce.com",
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "acme-client", ClientSecretRef: "env:OWNERSYNC_SECRET_ACME_SF"},
		},
		HubSpot: &tenant.HSConfig{
			Settings: tenant.Settings{Enabled: true}, PortalID: 4412345, AppID: 3100456,
			ClientSecretRef: "env:OWNERSYNC_SECRET_ACME_HS_CLIENT",
			Auth:            tenant.HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_ACME_HS_TOKEN"},
		},
	}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorCode returns the code of an {"error":{"code","message"}} body, or "".
func (r response) errorCode() string {
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

func (e *env) do(method, path, token, body string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// jsonEqual compares a body with the JSON encoding of want, structurally.
func jsonEqual(t *testing.T, got []byte, want any) {
	t.Helper()
	wb, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal(wb, &w); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("body mismatch (-want +got):\n%s", d)
	}
}

var t0 = consoletest.T0

// apiDemo is the core the API tests start with (the console's in-memory core, consoletest):
// platform users u1, u2, u7, user:42@x and u9; Salesforce users 1 (Ada, mapped to u1 by email),
// 2 (inactive, mapped to u2 manually, in error) and 7; HubSpot owner 9001; one problem; a
// partial run and a finished one; three history entries (a Salesforce contact and lead, a
// HubSpot contact).
func apiDemo() *consoletest.Service {
	s := consoletest.NewService()
	for _, u := range []consoletest.User{
		{ID: "u1", Name: "Ada Lovelace", Email: "ada@acme.example", Active: true},
		{ID: "u2", Name: "Bob Byte", Email: "bob@acme.example", Active: true},
		{ID: "u7", Name: "Sam Seven", Email: "sam@acme.example", Active: true},
		{ID: "user:42@x", Name: "Xia Colon", Email: "xia@acme.example", Active: true},
		{ID: "u9", Name: "Nina New", Email: "nina@acme.example", Active: true},
	} {
		s.AddPlatformUser(u)
	}
	for _, u := range []consoletest.User{
		{Provider: "salesforce", ID: "005000000000001AAA", Name: "Ada Lovelace", Email: "ada@acme.example", Active: true},
		{Provider: "salesforce", ID: "005000000000002AAA", Name: "Bob Byte", Email: "bob@acme.example"},
		{Provider: "salesforce", ID: "005000000000007AAA", Name: "Sam Seven", Email: "sam7@acme.example", Active: true},
		{Provider: "hubspot", ID: "9001", Name: "Olga Owner", Email: "olga@acme.example", Active: true},
	} {
		s.AddCRMUser(u)
	}
	s.AddMapping(domain.MappedUsers{Provider: "salesforce", PlatformUserID: "u1", PlatformUserName: "Ada Lovelace", PlatformUserEmail: "ada@acme.example",
		CRMUserID: "005000000000001AAA", CRMUserName: "Ada Lovelace", CRMUserEmail: "ada@acme.example", CRMUserActive: true, Status: "synced", MadeBy: "email", CreatedAt: t0, UpdatedAt: t0})
	s.AddMapping(domain.MappedUsers{Provider: "salesforce", PlatformUserID: "u2", PlatformUserName: "Bob Byte", PlatformUserEmail: "bob@acme.example",
		CRMUserID: "005000000000002AAA", CRMUserActive: false, Status: "error", MadeBy: "manual", Reason: "the Salesforce user was deactivated", CreatedAt: t0, UpdatedAt: t0})
	s.SetProblems([]domain.Problem{{Problem: mapping.Problem{Provider: "salesforce", Code: "ambiguous_email", PlatformUserID: "u3", CRMUserID: "005000000000003AAA",
		Email: "cy@acme.example", Message: "two active Salesforce users have the email cy@acme.example", Fix: "deactivate one of them or map the user manually"}, Since: t0}})
	s.AddRun(domain.SyncRun{ID: "run-0", Tenant: "acme", Trigger: "schedule", Status: domain.RunPartial, Phase: domain.PhaseDone,
		StartedAt: t0.Add(-2 * time.Hour), FinishedAt: t0.Add(-2*time.Hour + time.Second), Providers: []domain.RunProvider{
			{Provider: "salesforce", Phase: domain.PhaseFailed, Outcome: &report.Provider{Provider: "salesforce", Failure: "salesforce: 401 INVALID_SESSION_ID"}},
			{Provider: "hubspot", Phase: domain.PhaseDone, Pulled: 11, Processed: 12, Outcome: &report.Provider{Provider: "hubspot",
				Counts: report.Counts{Pulled: 11, Counts: mapping.Counts{Mapped: 11, UnmappedPlatform: 1}}}},
		}})
	s.AddRun(domain.SyncRun{ID: "run-1", Tenant: "acme", Trigger: "schedule", Status: domain.RunSucceeded, Phase: domain.PhaseDone,
		StartedAt: t0.Add(-time.Hour), FinishedAt: t0.Add(3 * time.Second), Providers: []domain.RunProvider{
			{Provider: "salesforce", Phase: domain.PhaseDone, Pulled: 15, Processed: 12, Outcome: &report.Provider{Provider: "salesforce",
				Counts: report.Counts{Pulled: 15, Counts: mapping.Counts{Mapped: 10, Created: 1, Conflicts: 1, Errors: 1, UnmappedPlatform: 1, UnmappedCRM: 4}},
				Changes: []mapping.Change{{Kind: mapping.ChangeCreated, Provider: "salesforce", PlatformUserID: "u1", CRMUserID: "005000000000001AAA",
					Email: "ada@acme.example", Name: "Ada Lovelace", Status: "synced", MadeBy: "email"}}, ChangesTotal: 3}},
		}})
	for _, h := range []domain.HistoryEntry{
		{ID: "h1", Tenant: "acme", Provider: "salesforce", RecordType: "contact", RecordID: "003000000000001AAA", At: t0,
			Direction: "crm_to_platform", Outcome: "assigned", OwnerAfter: "005000000000001AAA", PlatformUserID: "u1", EventID: "sf:00D:1"},
		{ID: "h2", Tenant: "acme", Provider: "salesforce", RecordType: "lead", RecordID: "00Q000000000001EAA", At: t0,
			Direction: "platform_to_crm", Outcome: "written", OwnerBefore: "005000000000001AAA", OwnerAfter: "005000000000007AAA",
			PlatformUserID: "u7", EventID: "pl:9", PlatformRecordID: "lead-9", OccurredAt: t0.Add(-time.Minute)},
		{ID: "h3", Tenant: "acme", Provider: "hubspot", RecordType: "contact", RecordID: "151", At: t0,
			Direction: "crm_to_platform", Outcome: "unmapped_owner", OwnerAfter: "9001", EventID: "hs:1", Reason: "no mapping for owner 9001"},
	} {
		s.AddHistory(h)
	}
	return s
}
