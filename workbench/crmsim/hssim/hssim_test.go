package hssim

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/workbench/crmsim"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var fixedNow = time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)

var correlation = regexp.MustCompile(`"correlationId":"[0-9a-f-]{36}"`)

// golden compares got (with correlation ids blanked) with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = correlation.ReplaceAll(got, []byte(`"correlationId":"<uuid>"`))
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func TestSignatureVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/signature_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Name, Version, Secret, Method, URI, Timestamp, Body, Want string
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			var got string
			switch v.Version {
			case "v1":
				got = SignV1(v.Secret, []byte(v.Body))
			case "v2":
				got = SignV2(v.Secret, v.Method, v.URI, []byte(v.Body))
			case "v3":
				got = SignV3(v.Secret, v.Method, v.URI, []byte(v.Body), v.Timestamp)
			}
			if got != v.Want {
				t.Errorf("%s = %s, want %s", v.Version, got, v.Want)
			}
		})
	}
}

func TestDecodeV3URI(t *testing.T) {
	got := DecodeV3URI("https://h.example/a%3Ab%2Fc?x=%40%21%24%27%28%29%2A%2C%3B%20%2f")
	if want := "https://h.example/a:b/c?x=@!$'()*,;%20/"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

const pat = "pat-na1-11111111-2222-3333-4444-555555555555"

var baseSeed = Seed{
	Owners: []Owner{
		{ID: "71234567", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", UserID: 9988776,
			CreatedAt: time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 15, 8, 30, 0, 0, time.UTC),
			Teams: []Team{{ID: "368389", Name: "EMEA Sales", Primary: true}}},
		{ID: "71234568", Email: "linus@example.com", UserID: 9988777, Archived: true},
		{ID: "71234569", Email: "linus@example.com", FirstName: "Linus", LastName: "Pauling", UserID: 9988778},
		{ID: "71234570", Type: OwnerQueue, FirstName: "Inbound", LastName: "Queue"},
	},
	Contacts: []SeedContact{
		{ID: "51234", Email: "grace@example.org", FirstName: "Grace", LastName: "Hopper", Owner: "ada@example.com"},
		{ID: "51240", Email: "alan@example.org", LastName: "Turing", Owner: "71234568"},
	},
}

type env struct {
	acct  *Account
	srv   *httptest.Server
	token string
}

func newEnv(t *testing.T, cfg Config, seed Seed) *env {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	if cfg.AccessTokens == nil {
		cfg.AccessTokens = []string{pat}
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "test-client-secret"
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Load(seed); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	a.SetBaseURL("https://api.hubapi.com")
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	return &env{acct: a, srv: srv, token: pat}
}

func (e *env) do(t *testing.T, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestWireShapes(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
	}{
		{"owners", "GET", "/crm/v3/owners?limit=2", nil, 200},
		{"owners_archived", "GET", "/crm/v3/owners?archived=true", nil, 200},
		{"owners_email", "GET", "/crm/v3/owners?email=LINUS@example.com", nil, 200},
		{"owners_limit_too_big", "GET", "/crm/v3/owners?limit=501", nil, 400},
		{"owner_by_user_id", "GET", "/crm/v3/owners/9988776?idProperty=userId", nil, 200},
		{"owner_archived_hidden", "GET", "/crm/v3/owners/71234568", nil, 404},
		{"owner_archived", "GET", "/crm/v3/owners/71234568?archived=true", nil, 200},
		{"contact", "GET", "/crm/v3/objects/contacts/51234", nil, 200},
		{"contact_by_email", "GET", "/crm/v3/objects/contacts/GRACE@example.org?idProperty=email&properties=hubspot_owner_id,email", nil, 200},
		{"contact_missing", "GET", "/crm/v3/objects/contacts/999", nil, 404},
		{"batch_ok", "POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": "51234", "objectWriteTraceId": "own-task-7f3a", "properties": map[string]string{"hubspot_owner_id": "71234569"}},
		}}, 200},
		{"batch_partial", "POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": "51234", "objectWriteTraceId": "own-task-7f3a", "properties": map[string]string{"hubspot_owner_id": "71234567"}},
			{"id": "51240", "objectWriteTraceId": "own-task-7f3b", "properties": map[string]string{"hubspot_owner_id": "99999999"}},
			{"id": "ALAN@example.org", "idProperty": "email", "objectWriteTraceId": "own-task-7f3c", "properties": map[string]string{"hubspot_owner_id": "71234568"}},
			{"id": "777", "objectWriteTraceId": "own-task-7f3d", "properties": map[string]string{"hubspot_owner_id": "71234567"}},
		}}, 207},
		{"batch_untraced_failure", "POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": "51234", "properties": map[string]string{"hubspot_owner_id": "71234568"}},
		}}, 400},
		{"batch_unknown_property", "POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
			{"id": "51234", "properties": map[string]string{"nope": "x"}},
		}}, 400},
		{"patch_contact", "PATCH", "/crm/v3/objects/contacts/51240", map[string]any{"properties": map[string]string{"hubspot_owner_id": "71234570"}}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			golden(t, tt.name+".json", body)
		})
	}
	if c, _ := e.acct.Contact("51240"); c.Properties[OwnerProperty] != "71234570" {
		t.Errorf("51240 owner = %q", c.Properties[OwnerProperty])
	}
	if c, _ := e.acct.Contact("51234"); c.Properties[OwnerProperty] != "71234567" {
		t.Errorf("51234 owner = %q (the untraced failed batch must write nothing)", c.Properties[OwnerProperty])
	}
}

func TestUnconfirmedItemSwitches(t *testing.T) {
	e := newEnv(t, Config{AcceptArchivedOwners: true, PartialWithoutTraceID: true}, baseSeed)
	resp, body := e.do(t, "POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
		{"id": "51234", "properties": map[string]string{"hubspot_owner_id": "71234568"}},
		{"id": "51240", "properties": map[string]string{"hubspot_owner_id": "5"}},
	}})
	if resp.StatusCode != 207 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var br BatchResponse
	if err := json.Unmarshal(body, &br); err != nil {
		t.Fatal(err)
	}
	if br.NumErrors != 1 || len(br.Results) != 1 || br.Errors[0].Context["ids"][0] != "51240" {
		t.Fatalf("response %s", body)
	}
}

func TestOwnersPaging(t *testing.T) {
	var seed Seed
	for i := range 1234 {
		seed.Owners = append(seed.Owners, Owner{Email: fmt.Sprintf("o%04d@example.com", i), Archived: i%10 == 0})
	}
	e := newEnv(t, Config{BurstLimit: -1}, seed)
	for _, tt := range []struct {
		archived string
		limit    string
		want     int
		pages    int
	}{
		{"false", "", 1110, 12},
		{"true", "", 124, 2},
		{"false", "500", 1110, 3},
		{"true", "7", 124, 18},
	} {
		t.Run(tt.archived+"_"+tt.limit, func(t *testing.T) {
			q := url.Values{"archived": {tt.archived}}
			if tt.limit != "" {
				q.Set("limit", tt.limit)
			}
			seen := map[string]bool{}
			pages := 0
			for {
				resp, body := e.do(t, "GET", "/crm/v3/owners?"+q.Encode(), nil)
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				var page ownersPage
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatal(err)
				}
				pages++
				for _, o := range page.Results {
					if seen[o.ID] || o.Archived != (tt.archived == "true") || (o.UserID == nil) != o.Archived || o.UserIDIncludingInactive == nil {
						t.Fatalf("bad owner %+v", o)
					}
					seen[o.ID] = true
				}
				if page.Paging == nil {
					break
				}
				if !strings.Contains(page.Paging.Next.Link, "after="+page.Paging.Next.After) {
					t.Fatalf("link %q", page.Paging.Next.Link)
				}
				q.Set("after", page.Paging.Next.After)
			}
			if len(seen) != tt.want || pages != tt.pages {
				t.Fatalf("got %d owners in %d pages, want %d in %d", len(seen), pages, tt.want, tt.pages)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, Config{ClientID: "cid", RefreshTokens: []string{"rt-1"}, TokenTTL: time.Minute}, baseSeed)
	resp, body := e.do(t, "GET", "/crm/v3/owners", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-HubSpot-RateLimit-Daily") != "625000" || resp.Header.Get("X-HubSpot-RateLimit-Daily-Remaining") != "624999" {
		t.Fatalf("private app: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	e.token = "wrong"
	resp, body = e.do(t, "GET", "/crm/v3/owners", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("bad token: %d", resp.StatusCode)
	}
	golden(t, "error_unauthorized.json", body)

	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"cid"}, "client_secret": {"test-client-secret"}, "refresh_token": {"rt-1"}}
	r, err := http.PostForm(e.srv.URL+"/oauth/v1/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok tokenResponse
	_ = json.NewDecoder(r.Body).Decode(&tok)
	r.Body.Close()
	if r.StatusCode != 200 || tok.AccessToken == "" || tok.ExpiresIn != 60 || tok.TokenType != "bearer" || tok.RefreshToken != "rt-1" {
		t.Fatalf("token: %d %+v", r.StatusCode, tok)
	}
	e.token = tok.AccessToken
	resp, _ = e.do(t, "GET", "/crm/v3/owners", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-HubSpot-RateLimit-Daily") != "" || resp.Header.Get("X-HubSpot-RateLimit-Max") != "190" {
		t.Fatalf("oauth: %d %v", resp.StatusCode, resp.Header)
	}
	e.acct.ExpireTokens()
	resp, body = e.do(t, "GET", "/crm/v3/owners", nil)
	if resp.StatusCode != 401 || !strings.Contains(string(body), "EXPIRED_AUTHENTICATION") {
		t.Fatalf("expired: %d %s", resp.StatusCode, body)
	}
	form.Set("refresh_token", "nope")
	r, _ = http.PostForm(e.srv.URL+"/oauth/v1/token", form)
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 400 || !strings.Contains(string(b), "BAD_REFRESH_TOKEN") {
		t.Fatalf("bad refresh: %d %s", r.StatusCode, b)
	}
}

func TestRateLimits(t *testing.T) {
	clock := fixedNow
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	e := newEnv(t, Config{BurstLimit: 3, DailyLimit: 5, Now: now}, baseSeed)
	type hdr struct{ Status, Remaining, Daily string }
	var got []hdr
	for i := range 6 {
		if i == 4 {
			mu.Lock()
			clock = clock.Add(10 * time.Second)
			mu.Unlock()
		}
		resp, body := e.do(t, "GET", "/crm/v3/owners", nil)
		got = append(got, hdr{fmt.Sprint(resp.StatusCode), resp.Header.Get("X-HubSpot-RateLimit-Remaining"), resp.Header.Get("X-HubSpot-RateLimit-Daily-Remaining")})
		switch i {
		case 3:
			golden(t, "rate_limit_ten_secondly.json", body)
		}
		if resp.Header.Get("X-HubSpot-RateLimit-Interval-Milliseconds") != "10000" || resp.Header.Get("X-HubSpot-RateLimit-Max") != "3" {
			t.Errorf("headers %v", resp.Header)
		}
	}
	want := []hdr{{"200", "2", "4"}, {"200", "1", "3"}, {"200", "0", "2"}, {"429", "0", "2"}, {"200", "2", "1"}, {"200", "1", "0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	resp, body := e.do(t, "GET", "/crm/v3/owners", nil)
	if resp.StatusCode != 429 || resp.Header.Get("X-HubSpot-RateLimit-Daily-Remaining") != "0" {
		t.Fatalf("daily exhausted: %d %v", resp.StatusCode, resp.Header)
	}
	golden(t, "rate_limit_daily.json", body)
	if c := e.acct.Log().Counters(); c.RateLimited != 2 || c.Requests != 7 {
		t.Errorf("counters %+v", c)
	}
}

// The rolling window can change while the account runs (admin API and SetBurstLimit); the
// headers report the new window from the next request on.
func TestBurstLimitChangesAtRunTime(t *testing.T) {
	e := newEnv(t, Config{BurstLimit: 2}, baseSeed)
	maxOf := func() (int, string, string) {
		resp, _ := e.do(t, "GET", "/crm/v3/owners", nil)
		return resp.StatusCode, resp.Header.Get("X-HubSpot-RateLimit-Max"), resp.Header.Get("X-HubSpot-RateLimit-Interval-Milliseconds")
	}
	for range 2 {
		maxOf()
	}
	if status, max, _ := maxOf(); status != 429 || max != "2" {
		t.Fatalf("third call in a 2-per-10 s window: %d, max %s; want 429, max 2", status, max)
	}
	resp, body := e.do(t, "POST", "/_crmsim/limits", map[string]any{"burstLimit": 100, "burstIntervalMs": 1000})
	if resp.StatusCode != 200 {
		t.Fatalf("POST /_crmsim/limits: %d %s", resp.StatusCode, body)
	}
	if status, max, interval := maxOf(); status != 200 || max != "100" || interval != "1000" {
		t.Errorf("after raising the window: %d, max %s, interval %s ms; want 200, 100, 1000", status, max, interval)
	}
	e.acct.SetBurstLimit(-1, 0)
	if status, max, _ := maxOf(); status != 200 || max != "" {
		t.Errorf("unlimited window: %d, max %q; want 200 and no window headers", status, max)
	}
}

// The account info API reports the account's time zone and its UTC offset now.
func TestAccountDetails(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{TimeZone: ny}, baseSeed) // fixedNow is in January: EST
	resp, body := e.do(t, "GET", "/account-info/v3/details", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /account-info/v3/details: %d %s", resp.StatusCode, body)
	}
	var got struct {
		PortalID    int64  `json:"portalId"`
		TimeZone    string `json:"timeZone"`
		UTCOffset   string `json:"utcOffset"`
		UTCOffsetMs int64  `json:"utcOffsetMilliseconds"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.PortalID != 4412345 || got.TimeZone != "America/New_York" || got.UTCOffset != "-05:00" || got.UTCOffsetMs != -18000000 {
		t.Errorf("details %+v", got)
	}
	if resp.Header.Get("X-HubSpot-RateLimit-Max") == "" {
		t.Error("the account info API is not rate limited like the others")
	}
}

// Batch read finds contacts by email or by id, 100 inputs at most, and names the ones it did not
// find in a 207.
func TestBatchRead(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	var emails []map[string]string
	for _, c := range e.acct.Contacts() {
		emails = append(emails, map[string]string{"id": strings.ToUpper(c.Properties["email"])})
	}
	emails = append(emails, map[string]string{"id": "nobody@example.org"})
	resp, body := e.do(t, "POST", "/crm/v3/objects/contacts/batch/read",
		map[string]any{"idProperty": "email", "properties": []string{"email", OwnerProperty}, "inputs": emails})
	var got BatchResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMultiStatus || len(got.Results) != len(emails)-1 || got.NumErrors != 1 ||
		got.Errors[0].Category != "OBJECT_NOT_FOUND" || !slices.Equal(got.Errors[0].Context["ids"], []string{"nobody@example.org"}) {
		t.Fatalf("by email: %d %s", resp.StatusCode, body)
	}
	first := e.acct.Contacts()[0]
	if r := got.Results[0]; r.ID != first.ID || r.Properties["email"] == nil || *r.Properties["email"] != first.Properties["email"] {
		t.Errorf("first result %+v, want contact %s with its email", r, first.ID)
	}
	resp, body = e.do(t, "POST", "/crm/v3/objects/contacts/batch/read", map[string]any{"inputs": []map[string]string{{"id": first.ID}}})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"`+first.ID+`"`) {
		t.Errorf("by id: %d %s", resp.StatusCode, body)
	}
	many := make([]map[string]string, 101)
	for i := range many {
		many[i] = map[string]string{"id": strconv.Itoa(i)}
	}
	if resp, body := e.do(t, "POST", "/crm/v3/objects/contacts/batch/read", map[string]any{"inputs": many}); resp.StatusCode != 400 {
		t.Errorf("101 inputs: %d %s, want 400", resp.StatusCode, body)
	}
}

// hookReceiver records webhook requests and answers from a script of statuses (then 204).
type hookReceiver struct {
	mu     sync.Mutex
	script []int
	reqs   []*http.Request
	bodies [][]byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	n := len(h.reqs)
	h.reqs = append(h.reqs, r)
	h.bodies = append(h.bodies, b)
	h.mu.Unlock()
	if n < len(h.script) {
		w.WriteHeader(h.script[n])
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookRetryThenSuccess(t *testing.T) {
	h := &hookReceiver{script: []int{500, 401}}
	hs := httptest.NewServer(h)
	defer hs.Close()
	target := hs.URL + "/hubspot/webhooks?tenant=acme"
	e := newEnv(t, Config{Webhooks: WebhookConfig{TargetURL: target, BaseDelay: 5 * time.Millisecond}}, baseSeed)
	resp, body := e.do(t, "POST", "/crm/v3/objects/contacts/batch/update", map[string]any{"inputs": []map[string]any{
		{"id": "51234", "objectWriteTraceId": "t1", "properties": map[string]string{"hubspot_owner_id": "71234569"}},
	}})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	harness.Eventually(t, 5*time.Second, "delivery", func() bool { return e.acct.WebhookStats().Delivered == 1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) != 3 {
		t.Fatalf("requests %d, want 3", len(h.reqs))
	}
	for i, r := range h.reqs {
		var events []Event
		if err := json.Unmarshal(h.bodies[i], &events); err != nil {
			t.Fatal(err)
		}
		want := []Event{{EventID: events[0].EventID, SubscriptionID: 2730011, PortalID: 4412345, AppID: 3100456,
			OccurredAt: fixedNow.UnixMilli(), SubscriptionType: "contact.propertyChange", AttemptNumber: i, ObjectID: 51234,
			PropertyName: "hubspot_owner_id", PropertyValue: "71234569", ChangeSource: "API", SourceID: "3100456"}}
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("attempt %d events (-want +got):\n%s", i, diff)
		}
		ts := r.Header.Get("X-HubSpot-Request-Timestamp")
		if got, want := r.Header.Get("X-HubSpot-Signature-v3"), SignV3("test-client-secret", "POST", target, h.bodies[i], ts); got != want || ts != fmt.Sprint(fixedNow.UnixMilli()) {
			t.Errorf("v3 %s (ts %s), want %s", got, ts, want)
		}
		if r.Header.Get("X-HubSpot-Signature") != SignV1("test-client-secret", h.bodies[i]) || r.Header.Get("X-HubSpot-Signature-Version") != "v1" {
			t.Errorf("v1 headers %v", r.Header)
		}
		if r.URL.RawQuery != "tenant=acme" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
	}
}

func TestWebhookGivesUpAfterMaxRetries(t *testing.T) {
	var n int
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.WriteHeader(503)
	}))
	defer hs.Close()
	e := newEnv(t, Config{Webhooks: WebhookConfig{TargetURL: hs.URL, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}}, baseSeed)
	if err := e.acct.SetContactOwner("51234", "71234569", 9988776); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "give up", func() bool { return e.acct.WebhookStats().Failed == 1 })
	mu.Lock()
	defer mu.Unlock()
	if n != 11 {
		t.Errorf("attempts %d, want 11 (first try + 10 retries)", n)
	}
	ds := e.acct.WebhookDeliveries()
	if !ds[len(ds)-1].GaveUp || !bytes.Contains(ds[0].Body, []byte(`"changeSource":"CRM_UI","sourceId":"userId:9988776"`)) {
		t.Errorf("deliveries: last %+v, first body %s", ds[len(ds)-1], ds[0].Body)
	}
}

func TestWebhookBatching(t *testing.T) {
	h := &hookReceiver{}
	hs := httptest.NewServer(h)
	defer hs.Close()
	seed := Seed{Owners: baseSeed.Owners}
	for i := range 250 {
		seed.Contacts = append(seed.Contacts, SeedContact{Email: fmt.Sprintf("c%d@example.org", i), Owner: "71234567"})
	}
	e := newEnv(t, Config{Webhooks: WebhookConfig{TargetURL: hs.URL, BatchDelay: time.Hour}}, seed)
	for _, c := range e.acct.Contacts() {
		if err := e.acct.SetContactOwner(c.ID, "71234569", 1); err != nil {
			t.Fatal(err)
		}
	}
	e.acct.FlushWebhooks()
	harness.Eventually(t, 5*time.Second, "deliveries", func() bool { return e.acct.WebhookStats().Delivered == 3 })
	var sizes []int
	total := 0
	h.mu.Lock()
	for _, b := range h.bodies {
		var evs []Event
		_ = json.Unmarshal(b, &evs)
		sizes = append(sizes, len(evs))
		total += len(evs)
	}
	h.mu.Unlock()
	for _, s := range sizes {
		if s > MaxEventsPerRequest {
			t.Errorf("batch of %d", s)
		}
	}
	if total != 250 {
		t.Errorf("events %d (batches %v)", total, sizes)
	}
}

func TestFaultRules(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	f := e.acct.Faults()
	f.Add(crmsim.Rule{Path: "/crm/v3/objects/contacts/batch/update", Action: crmsim.ActionStatus, Status: 423, Count: 1})
	f.Add(crmsim.Rule{Path: "/crm/v3/owners", Action: crmsim.ActionRateLimit, Count: 2})
	f.Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: "51240", Code: "CONFLICT", Count: 1})
	batch := map[string]any{"inputs": []map[string]any{
		{"id": "51234", "objectWriteTraceId": "a", "properties": map[string]string{"hubspot_owner_id": "71234569"}},
		{"id": "51240", "objectWriteTraceId": "b", "properties": map[string]string{"hubspot_owner_id": "71234569"}},
	}}
	var codes []int
	for range 2 {
		resp, body := e.do(t, "POST", "/crm/v3/objects/contacts/batch/update", batch)
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 423 {
			golden(t, "error_locked.json", body)
		}
	}
	for range 3 {
		resp, body := e.do(t, "GET", "/crm/v3/owners", nil)
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && !strings.Contains(string(body), `"policyName":"TEN_SECONDLY_ROLLING"`) {
			t.Errorf("429 body %s", body)
		}
	}
	if diff := cmp.Diff([]int{423, 207, 429, 429, 200}, codes); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	f.Clear()
	f.Add(crmsim.Rule{Action: crmsim.ActionHang, Method: "GET"})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("GET", e.srv.URL+"/crm/v3/owners", nil)
	req.Header.Set("Authorization", "Bearer "+pat)
	if _, err := client.Do(req); err == nil {
		t.Fatal("hang answered")
	}
	if c := e.acct.Log().Counters(); c.Faulted != 5 || c.RateLimited != 2 {
		t.Errorf("counters %+v", c)
	}
	if got := len(e.acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update")); got != 2 {
		t.Errorf("logged batch posts %d", got)
	}
}

func TestWebhookTimeoutCountsAsFailure(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(200)
	}))
	defer hs.Close()
	defer close(release)
	e := newEnv(t, Config{Webhooks: WebhookConfig{TargetURL: hs.URL, Timeout: 50 * time.Millisecond, BaseDelay: time.Millisecond}}, baseSeed)
	if err := e.acct.SetContactOwner("51234", "71234569", 1); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "delivery", func() bool { return e.acct.WebhookStats().Delivered == 1 })
	ds := e.acct.WebhookDeliveries()
	if len(ds) != 2 || ds[0].Delivered || ds[0].Error == "" || !ds[1].Delivered || ds[1].AttemptNumber != 1 {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestAdminAPI(t *testing.T) {
	h := &hookReceiver{}
	hs := httptest.NewServer(h)
	defer hs.Close()
	e := newEnv(t, Config{Webhooks: WebhookConfig{TargetURL: hs.URL}}, baseSeed)
	e.token = ""
	steps := []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/_crmsim/owners", map[string]any{"email": "new@example.com", "firstName": "New"}, 201},
		{"PATCH", "/_crmsim/owners/71234569", map[string]any{"archived": true}, 200},
		{"PATCH", "/_crmsim/contacts/51234", map[string]any{"ownerId": "71234569", "actorUserId": 7}, 400},
		{"PATCH", "/_crmsim/contacts/51234", map[string]any{"ownerId": "71234570", "actorUserId": 7}, 200},
		{"POST", "/_crmsim/contacts", map[string]any{"properties": map[string]string{"email": "x@example.org"}}, 201},
		{"POST", "/_crmsim/faults", map[string]any{"action": "status", "status": 502, "path": "/crm/v3/owners", "count": 1}, 201},
		{"POST", "/_crmsim/limits", map[string]any{"dailyUsed": 10}, 200},
		{"GET", "/_crmsim/state", nil, 200},
		{"DELETE", "/_crmsim/contacts/51240", nil, 204},
	}
	for _, s := range steps {
		resp, body := e.do(t, s.method, s.path, s.body)
		if resp.StatusCode != s.status {
			t.Fatalf("%s %s: %d, want %d: %s", s.method, s.path, resp.StatusCode, s.status, body)
		}
	}
	if o, _ := e.acct.Owner("71234569"); !o.Archived || o.UserID != 9988778 {
		t.Errorf("owner %+v", o)
	}
	e.token = pat
	resp, _ := e.do(t, "GET", "/crm/v3/owners", nil)
	if resp.StatusCode != 502 {
		t.Fatalf("fault from admin API: %d", resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", "/crm/v3/owners", nil)
	if got := resp.Header.Get("X-HubSpot-RateLimit-Daily-Remaining"); got != "624989" {
		t.Errorf("daily remaining %q after dailyUsed=10", got)
	}
	harness.Eventually(t, 5*time.Second, "webhook", func() bool { return e.acct.WebhookStats().Delivered == 1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if !bytes.Contains(h.bodies[0], []byte(`"propertyValue":"71234570","changeSource":"CRM_UI","sourceId":"userId:7"`)) {
		t.Errorf("webhook body %s", h.bodies[0])
	}
}

func TestTokenResponseShape(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	r, err := http.PostForm(e.srv.URL+"/oauth/v1/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"any"}, "client_secret": {"x"}, "refresh_token": {"rt"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	golden(t, "token_response.json", regexp.MustCompile(`"access_token":"[^"]+"`).ReplaceAll(b, []byte(`"access_token":"<token>"`)))
}

func TestSetWebhookTargetAtRunTime(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	if err := e.acct.SetContactOwner("51234", "71234569", 1); err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{}
	hs := httptest.NewServer(h)
	defer hs.Close()
	e.acct.SetWebhookTarget(hs.URL + "/hooks")
	if err := e.acct.SetContactOwner("51234", "71234567", 1); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "delivery", func() bool { return e.acct.WebhookStats().Delivered == 1 })
	if st := e.acct.WebhookStats(); st.Attempts != 1 {
		t.Errorf("stats %+v (the change before the target was set must not be sent)", st)
	}
}

// TestEndlessOwners: with EndlessOwners the active owners list pages forever with new ids.
func TestEndlessOwners(t *testing.T) {
	e := newEnv(t, Config{BurstLimit: -1, EndlessOwners: true}, Seed{})
	pageForever(t, e)
}

// TestSetEndlessOwners: a running account turns endless and back; the stored owners are listed
// again, on one page, afterwards.
func TestSetEndlessOwners(t *testing.T) {
	e := newEnv(t, Config{BurstLimit: -1}, Seed{Owners: []Owner{{ID: "101", Email: "a@x.example", Type: OwnerPerson}}})
	e.acct.SetEndlessOwners(true)
	pageForever(t, e)
	e.acct.SetEndlessOwners(false)
	resp, body := e.do(t, "GET", "/crm/v3/owners?limit=50", nil)
	var page ownersPage
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(page.Results) != 1 || page.Results[0].ID != "101" || page.Paging != nil {
		t.Errorf("after SetEndlessOwners(false): %s", body)
	}
}

// pageForever reads 30 pages of active owners and checks each is full, new and links to a next.
func pageForever(t *testing.T, e *env) {
	t.Helper()
	q := url.Values{"limit": {"50"}}
	seen := map[string]bool{}
	for range 30 {
		resp, body := e.do(t, "GET", "/crm/v3/owners?"+q.Encode(), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var page ownersPage
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Results) != 50 || page.Paging == nil {
			t.Fatalf("page of %d, paging %v", len(page.Results), page.Paging)
		}
		for _, o := range page.Results {
			if seen[o.ID] {
				t.Fatalf("owner %s listed twice", o.ID)
			}
			seen[o.ID] = true
		}
		q.Set("after", page.Paging.Next.After)
	}
}
