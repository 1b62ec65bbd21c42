package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
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
	svc     *fakeService
	dlq     *fakeDLQ
	tenants *tenantstore.Store
	tokens  *auth.Store
	db      *mongo.Database
	logs    *syncBuffer
	server  *echoserver.Server
}

var dbNameRE = regexp.MustCompile(`[^A-Za-z0-9]+`)

// newEnv starts the API on a real HTTP server with the echoserver error handler, a tenant store and
// token store on FerretDB, tenants acme and globex, and fakes for the core and the DLQ.
func newEnv(t *testing.T) *env {
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
	e := &env{t: t, svc: newFakeService(), dlq: &fakeDLQ{}, tenants: ts, tokens: tokens, db: conn.DB, logs: logs, server: s}
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

// fakeService records each call and answers with canned values.
type fakeService struct {
	mu    sync.Mutex
	calls []string
	err   error

	overview   httpapi.Overview
	page       httpapi.MappingPage
	unmappedPU []httpapi.UnmappedUser
	unmappedCU []httpapi.UnmappedUser
	problems   []httpapi.Problem
	run        httpapi.Run
	created    bool
	runs       []httpapi.Run
	history    []httpapi.HistoryEntry
}

var t0 = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

func newFakeService() *fakeService {
	fin := t0.Add(3 * time.Second)
	return &fakeService{
		overview: httpapi.Overview{Tenant: "acme", Providers: []httpapi.ProviderOverview{
			{Provider: "salesforce", Connected: true, PlatformUsers: 12, CRMUsers: 15, Mapped: 10, Manual: 1, Conflicts: 1, Errors: 1, UnmappedPlatform: 1, UnmappedCRM: 4, LastSyncAt: &fin},
			{Provider: "hubspot", Connected: true, PlatformUsers: 12, CRMUsers: 11, Mapped: 11, UnmappedPlatform: 1},
		}, LastSync: &httpapi.Run{ID: "run-1", Tenant: "acme", Trigger: "schedule", State: "succeeded", StartedAt: t0, FinishedAt: &fin}},
		page: httpapi.MappingPage{Total: 7, Items: []httpapi.Mapping{
			{Provider: "salesforce", PlatformUserID: "u1", PlatformUserName: "Ada Lovelace", PlatformUserEmail: "ada@acme.example", CRMUserID: "005000000000001AAA", CRMUserName: "Ada Lovelace", CRMUserEmail: "ada@acme.example", CRMUserActive: true, Status: "synced", MadeBy: "email", CreatedAt: t0, UpdatedAt: t0},
			{Provider: "salesforce", PlatformUserID: "u2", PlatformUserName: "Bob Byte", PlatformUserEmail: "bob@acme.example", CRMUserID: "005000000000002AAA", CRMUserActive: false, Status: "error", MadeBy: "manual", Reason: "the Salesforce user was deactivated", CreatedAt: t0, UpdatedAt: t0},
		}},
		unmappedPU: []httpapi.UnmappedUser{{Provider: "salesforce", ID: "u9", Name: "Nina New", Email: "nina@acme.example", Status: "active", Reason: "no CRM user has this email"}},
		unmappedCU: []httpapi.UnmappedUser{{Provider: "hubspot", ID: "9001", Name: "Olga Owner", Email: "olga@acme.example", Status: "active"}},
		problems: []httpapi.Problem{{Provider: "salesforce", Code: "ambiguous_email", PlatformUserID: "u3", Email: "cy@acme.example",
			CRMUserIDs: []string{"005000000000003AAA", "005000000000004AAA"}, Message: "two active Salesforce users have the email cy@acme.example", Fix: "deactivate one of them or map the user manually"}},
		run:  httpapi.Run{ID: "run-2", Tenant: "acme", Trigger: "api", State: "running", Phase: "pull_salesforce", Pulled: 120, StartedAt: t0},
		runs: []httpapi.Run{{ID: "run-2", Tenant: "acme", Trigger: "api", State: "running", StartedAt: t0}, {ID: "run-1", Tenant: "acme", Trigger: "schedule", State: "succeeded", StartedAt: t0.Add(-time.Hour), FinishedAt: &fin}},
		history: []httpapi.HistoryEntry{{ID: "h1", Tenant: "acme", Provider: "salesforce", RecordType: "contact", RecordID: "003000000000001AAA", At: t0,
			Direction: "crm_to_platform", Outcome: "assigned", OwnerBefore: "", OwnerAfter: "005000000000001AAA", PlatformUserID: "u1", EventID: "sf:00D:1", Reason: ""}},
	}
}

func (f *fakeService) record(format string, a ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	return f.err
}

// takeCalls returns and clears the recorded calls.
func (f *fakeService) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeService) Overview(_ context.Context, t string) (httpapi.Overview, error) {
	return f.overview, f.record("Overview %s", t)
}

func (f *fakeService) ListMappings(_ context.Context, t string, q httpapi.MappingQuery) (httpapi.MappingPage, error) {
	p := f.page
	p.Page, p.PerPage = q.Page, q.PerPage
	return p, f.record("ListMappings %s %+v", t, q)
}

func (f *fakeService) UnmappedPlatformUsers(_ context.Context, t, p string) ([]httpapi.UnmappedUser, error) {
	return f.unmappedPU, f.record("UnmappedPlatformUsers %s %q", t, p)
}

func (f *fakeService) UnmappedCRMUsers(_ context.Context, t, p string) ([]httpapi.UnmappedUser, error) {
	return f.unmappedCU, f.record("UnmappedCRMUsers %s %q", t, p)
}

func (f *fakeService) Errors(_ context.Context, t, p string) ([]httpapi.Problem, error) {
	return f.problems, f.record("Errors %s %q", t, p)
}

func (f *fakeService) MapManually(_ context.Context, t, p, pu, crm, actor string) (httpapi.Mapping, error) {
	m := httpapi.Mapping{Provider: p, PlatformUserID: pu, CRMUserID: crm, Status: "synced", MadeBy: "manual", CreatedAt: t0, UpdatedAt: t0}
	return m, f.record("MapManually %s %s %s %s %s", t, p, pu, crm, actor)
}

func (f *fakeService) Unmap(_ context.Context, t, p, pu, actor string) error {
	return f.record("Unmap %s %s %s %s", t, p, pu, actor)
}

func (f *fakeService) StartSync(_ context.Context, t string, r httpapi.SyncRequest) (httpapi.Run, bool, error) {
	run := f.run
	run.DryRun = r.DryRun
	return run, f.created, f.record("StartSync %s %+v", t, r)
}

func (f *fakeService) Runs(_ context.Context, t string, limit int) ([]httpapi.Run, error) {
	return f.runs, f.record("Runs %s %d", t, limit)
}

func (f *fakeService) Run(_ context.Context, t, id string) (httpapi.Run, error) {
	return f.run, f.record("Run %s %s", t, id)
}

func (f *fakeService) RecordHistory(_ context.Context, t, p, rt, id string) ([]httpapi.HistoryEntry, error) {
	return f.history, f.record("RecordHistory %s %s %s %s", t, p, rt, id)
}

// fakeDLQ records filters; the real JetStream implementation is tested in package dlq.
type fakeDLQ struct {
	mu    sync.Mutex
	calls []string
}

func (d *fakeDLQ) List(_ context.Context, t string, f domain.DLQFilter) ([]domain.DeadLetter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("List %s %+v", t, f))
	return []domain.DeadLetter{{ID: 4, Service: "writer", Subject: "crm.owner.changed." + t + ".salesforce", Stream: "CRM", StreamSequence: 9, Error: "permanent: INVALID_CROSS_REFERENCE_KEY", At: t0, Size: 42}}, nil
}

func (d *fakeDLQ) Replay(_ context.Context, t string, f domain.DLQFilter) (domain.ReplayResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fmt.Sprintf("Replay %s %+v", t, f))
	return domain.ReplayResult{Replayed: []domain.ReplayedLetter{{ID: 4, Subject: "crm.owner.changed." + t + ".salesforce", MsgID: "replay:4"}}}, nil
}

func (d *fakeDLQ) takeCalls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}
