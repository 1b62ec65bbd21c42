package sfsim

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/workbench/crmsim"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var fixedNow = time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
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

func boolp(b bool) *bool { return &b }

var baseSeed = Seed{
	Users: []SeedUser{
		{ID: "0055g00000AsDfGAAV", Username: "ada@acme.example", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"},
		{ID: "0055g00000HjKlMAAV", Username: "linus@acme.example", Email: "linus@example.com", FirstName: "Linus", LastName: "Pauling", IsActive: boolp(false)},
		{Username: "integration@acme.example", Email: "integration@acme.example", LastName: "Integration", License: "Salesforce Integration"},
	},
	Queues: []Queue{{ID: "00G5g000003LkJhEAK", Name: "Inbound Leads"}},
	Contacts: []SeedRecord{
		{ID: "0035g00000QwErTAAV", Email: "grace@example.org", FirstName: "Grace", LastName: "Hopper", Owner: "ada@acme.example"},
		{Email: "gone@example.org", LastName: "Gone", Owner: "ada@acme.example", Deleted: true},
	},
	Leads: []SeedRecord{
		{ID: "00Q5g00000ZxCvBEAV", Email: "grace@example.org", LastName: "Hopper", Company: "Navy", Owner: "Inbound Leads"},
	},
}

type env struct {
	org   *Org
	srv   *httptest.Server
	token string
}

func newEnv(t *testing.T, cfg Config, seed Seed) *env {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	if cfg.RunAsUsername == "" {
		cfg.RunAsUsername = "integration@acme.example"
	}
	org, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(seed); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(org)
	org.SetInstanceURL("https://acme.my.salesforce.com")
	t.Cleanup(func() {
		srv.Close()
		_ = org.Close()
	})
	return &env{org: org, srv: srv, token: org.IssueToken("")}
}

func (e *env) do(t *testing.T, method, path string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func queryPath(soql string) string {
	return "/services/data/v62.0/query?q=" + url.QueryEscape(soql)
}

func TestQueryWireShape(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	tests := []struct {
		name   string
		soql   string
		status int
	}{
		{"users", "SELECT Id, Email, IsActive, FirstName, LastName, UserType, Username, Profile.UserLicense.Name FROM User ORDER BY Id", 200},
		{"contact_by_email", "SELECT Id, Email, OwnerId FROM Contact WHERE Email = 'GRACE@example.org'", 200},
		{"lead_in", "SELECT Id, OwnerId, Company FROM Lead WHERE Email IN ('x@y.z', 'grace@example.org') LIMIT 5", 200},
		{"escaped_quote", `SELECT Id FROM User WHERE LastName = 'O\'Brien'`, 200},
		{"malformed", "SELECT FROM User", 400},
		{"unknown_field", "SELECT Id, Nope FROM User", 400},
		{"unknown_object", "SELECT Id FROM Opportunity", 400},
		{"bad_id_filter", "SELECT Id FROM Contact WHERE Id = 'abc'", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, "GET", queryPath(tt.soql), nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Sforce-Limit-Info"); !strings.HasPrefix(got, "api-usage=") {
				t.Errorf("Sforce-Limit-Info = %q", got)
			}
			golden(t, "query_"+tt.name+".json", body)
		})
	}
}

// TestUserLicenseLookup: Profile.UserLicense.Name comes back nested as the REST API nests a
// lookup, null for a user without a profile (the Automated Process user), defaulted from UserType
// when the seed names no licence, and it can be filtered on; a User's GET does not include it.
func TestUserLicenseLookup(t *testing.T) {
	e := newEnv(t, Config{}, Seed{Users: []SeedUser{
		{ID: "0055g00000AsDfGAAV", Username: "ada@acme.example", Email: "ada@example.com", LastName: "Lovelace"},
		{ID: "0055g00000AutoPAAR", Username: "autoproc@00d.example", LastName: "Automated Process", UserType: "AutomatedProcess"},
		{ID: "0055g00000ChatrAAB", Username: "chatter@acme.example", LastName: "Chatter", UserType: "CsnOnly"},
		{ID: "0055g00000IntegAAB", Username: "int@acme.example", LastName: "Integration", License: "Salesforce Integration"},
	}})
	_, body := e.do(t, "GET", queryPath("SELECT Id, Profile.UserLicense.Name FROM User ORDER BY Id"), nil)
	var page struct {
		Records []struct {
			ID      string `json:"Id"`
			Profile *struct {
				Attributes  struct{ Type string } `json:"attributes"`
				UserLicense *struct {
					Attributes struct{ Type string } `json:"attributes"`
					Name       string
				}
			}
		} `json:"records"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	got := map[string]string{}
	for _, r := range page.Records {
		switch {
		case r.Profile == nil:
			got[r.ID] = "<null profile>"
		case r.Profile.Attributes.Type != "Profile" || r.Profile.UserLicense == nil || r.Profile.UserLicense.Attributes.Type != "UserLicense":
			t.Errorf("%s: profile not nested as a lookup: %s", r.ID, body)
		default:
			got[r.ID] = r.Profile.UserLicense.Name
		}
	}
	want := map[string]string{
		"0055g00000AsDfGAAV": "Salesforce", "0055g00000AutoPAAR": "<null profile>",
		"0055g00000ChatrAAB": "Chatter Free", "0055g00000IntegAAB": "Salesforce Integration",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("licences (-want +got):\n%s", diff)
	}
	_, body = e.do(t, "GET", queryPath("SELECT Id FROM User WHERE Profile.UserLicense.Name = 'Salesforce Integration'"), nil)
	if !strings.Contains(string(body), `"totalSize":1,`) || !strings.Contains(string(body), "0055g00000IntegAAB") {
		t.Errorf("filter on the licence: %s", body)
	}
	_, body = e.do(t, "GET", "/services/data/v62.0/sobjects/User/0055g00000IntegAAB", nil)
	if strings.Contains(string(body), "Profile") || !strings.Contains(string(body), `"UserType":"Standard"`) {
		t.Errorf("a User's GET: %s", body)
	}
}

// A query whose URI, or URI and headers, exceed 16,384 bytes is refused as Salesforce refuses it.
func TestQueryURILimit(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	in := func(n int) string {
		var vs []string
		for i := range n {
			vs = append(vs, fmt.Sprintf("'someone.with.a.long.name.%04d@example.org'", i))
		}
		return "SELECT Id, Email, OwnerId FROM Contact WHERE Email IN (" + strings.Join(vs, ", ") + ")"
	}
	if resp, body := e.do(t, "GET", queryPath(in(200)), nil); resp.StatusCode != 200 {
		t.Errorf("200 emails: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "GET", queryPath(in(400)), nil); resp.StatusCode != http.StatusRequestURITooLong {
		t.Errorf("400 emails: %d %s, want 414", resp.StatusCode, body)
	}
	path := queryPath(in(300)) // about 15,500 bytes: the URI alone fits, not with a large header
	if resp, body := e.do(t, "GET", path, nil, "X-Padding", strings.Repeat("x", 2000)); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("URI %d bytes and a 2 KB header: %d %s, want 431", len(path), resp.StatusCode, body)
	}
}

func TestQueryPagingPast2000Users(t *testing.T) {
	var seed Seed
	for i := range 2450 {
		seed.Users = append(seed.Users, SeedUser{Username: fmt.Sprintf("u%04d@acme.example", i), Email: fmt.Sprintf("u%04d@example.com", i), IsActive: boolp(i%7 != 0)})
	}
	e := newEnv(t, Config{}, seed)
	for _, tt := range []struct {
		name      string
		batchSize string
		pages     int
	}{
		{"default", "", 2},
		{"batch500", "batchSize=500", 5},
		{"batch_below_min", "batchSize=10", 13},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := queryPath("SELECT Id, IsActive FROM User ORDER BY Id")
			seen := map[string]bool{}
			pages := 0
			last := ""
			for path != "" {
				resp, body := e.do(t, "GET", path, nil, "Sforce-Query-Options", tt.batchSize)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				var page struct {
					TotalSize      int    `json:"totalSize"`
					Done           bool   `json:"done"`
					NextRecordsURL string `json:"nextRecordsUrl"`
					Records        []struct {
						ID string `json:"Id"`
					} `json:"records"`
				}
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatal(err)
				}
				if page.TotalSize != 2450 {
					t.Fatalf("totalSize %d", page.TotalSize)
				}
				for _, r := range page.Records {
					if seen[r.ID] {
						t.Fatalf("duplicate %s", r.ID)
					}
					if r.ID <= last {
						t.Fatalf("not ordered by Id: %s after %s", r.ID, last)
					}
					last = r.ID
					seen[r.ID] = true
				}
				pages++
				if page.Done != (page.NextRecordsURL == "") {
					t.Fatalf("done=%v but nextRecordsUrl=%q", page.Done, page.NextRecordsURL)
				}
				path = page.NextRecordsURL
				if path != "" && !strings.HasPrefix(path, "/services/data/v62.0/query/01g") {
					t.Fatalf("nextRecordsUrl %q", path)
				}
			}
			if len(seen) != 2450 || pages != tt.pages {
				t.Fatalf("got %d users in %d pages, want 2450 in %d", len(seen), pages, tt.pages)
			}
		})
	}
	resp, body := e.do(t, "GET", "/services/data/v62.0/query/01gnope-2000", nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"errorCode":"INVALID_QUERY_LOCATOR"`) {
		t.Fatalf("bad locator: %d %s", resp.StatusCode, body)
	}
}

func TestPatchOwnerValidation(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	deleted := e.org.Records(ObjectContact)[1].ID
	tests := []struct {
		name   string
		path   string
		owner  any
		status int
		code   string
	}{
		{"active_user", "Contact/0035g00000QwErTAAV", "0055g00000AsDfG", 204, ""},
		{"inactive_user", "Contact/0035g00000QwErTAAV", "0055g00000HjKlMAAV", 400, "INACTIVE_OWNER_OR_USER"},
		{"unknown_user", "Contact/0035g00000QwErTAAV", "005000000000000AAA", 400, "INVALID_CROSS_REFERENCE_KEY"},
		{"queue_into_contact", "Contact/0035g00000QwErTAAV", "00G5g000003LkJhEAK", 400, "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD"},
		{"queue_into_lead", "Lead/00Q5g00000ZxCvBEAV", "00G5g000003LkJhEAK", 204, ""},
		{"null_owner", "Lead/00Q5g00000ZxCvBEAV", nil, 400, "INVALID_EMPTY_KEY_OWNER"},
		{"malformed_owner", "Lead/00Q5g00000ZxCvBEAV", "xyz", 400, "MALFORMED_ID"},
		{"deleted_record", "Contact/" + deleted, "0055g00000AsDfGAAV", 404, "ENTITY_IS_DELETED"},
		{"unknown_record", "Contact/003000000000000AAA", "0055g00000AsDfGAAV", 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, "PATCH", "/services/data/v62.0/sobjects/"+tt.path, map[string]any{"OwnerId": tt.owner})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.code == "" {
				if len(body) != 0 {
					t.Errorf("204 with body %s", body)
				}
				return
			}
			var errs []apiError
			if err := json.Unmarshal(body, &errs); err != nil || len(errs) != 1 || errs[0].ErrorCode != tt.code {
				t.Fatalf("body %s, want errorCode %s", body, tt.code)
			}
		})
	}
	rec, _ := e.org.Record("0035g00000QwErTAAV")
	if rec.OwnerID != "0055g00000AsDfGAAV" || rec.LastModifiedByID != e.org.IntegrationUserID() {
		t.Errorf("record after writes: %+v", rec)
	}
}

func TestCollectionsUpdate(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: "00Q5g00000ZxCvBEAV", Count: 1})
	req := map[string]any{"allOrNone": false, "records": []map[string]any{
		{"attributes": map[string]string{"type": "Contact"}, "id": "0035g00000QwErTAAV", "OwnerId": "0055g00000AsDfGAAV"},
		{"attributes": map[string]string{"type": "Contact"}, "id": "0035g00000QwErTAAV", "OwnerId": "0055g00000HjKlMAAV"},
		{"attributes": map[string]string{"type": "Lead"}, "id": "00Q5g00000ZxCvBEAV", "OwnerId": "00G5g000003LkJhEAK"},
		{"attributes": map[string]string{"type": "Lead"}, "OwnerId": "00G5g000003LkJhEAK"},
	}}
	resp, body := e.do(t, "PATCH", "/services/data/v62.0/composite/sobjects", req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	golden(t, "collections_partial.json", body)

	req["allOrNone"] = true
	req["records"] = req["records"].([]map[string]any)[:2]
	resp, body = e.do(t, "PATCH", "/services/data/v62.0/composite/sobjects", req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	golden(t, "collections_all_or_none.json", body)

	var many []map[string]any
	for range 201 {
		many = append(many, map[string]any{"attributes": map[string]string{"type": "Contact"}, "id": "0035g00000QwErTAAV", "OwnerId": "0055g00000AsDfGAAV"})
	}
	resp, body = e.do(t, "PATCH", "/services/data/v62.0/composite/sobjects", map[string]any{"records": many})
	if resp.StatusCode != 400 || !strings.Contains(string(body), "EXCEEDED_ID_LIMIT") {
		t.Fatalf("201 records: %d %s", resp.StatusCode, body)
	}
	var mixed []map[string]any
	for i := range 11 {
		typ, id := "Contact", "0035g00000QwErTAAV"
		if i%2 == 1 {
			typ, id = "Lead", "00Q5g00000ZxCvBEAV"
		}
		mixed = append(mixed, map[string]any{"attributes": map[string]string{"type": typ}, "id": id, "OwnerId": "0055g00000AsDfGAAV"})
	}
	resp, body = e.do(t, "PATCH", "/services/data/v62.0/composite/sobjects", map[string]any{"records": mixed})
	if resp.StatusCode != 400 || !strings.Contains(string(body), "10 chunks") {
		t.Fatalf("11 chunks: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(t, "PATCH", "/services/data/v62.0/composite/sobjects", map[string]any{"records": mixed[:10]})
	if resp.StatusCode != 200 {
		t.Fatalf("10 chunks: %d %s", resp.StatusCode, body)
	}
}

func TestAuthAndLimits(t *testing.T) {
	e := newEnv(t, Config{DailyLimit: 3}, baseSeed)
	q := queryPath("SELECT Id FROM User LIMIT 1")
	for i := 1; i <= 3; i++ {
		resp, body := e.do(t, "GET", q, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("Sforce-Limit-Info"), fmt.Sprintf("api-usage=%d/3", i); got != want {
			t.Errorf("Sforce-Limit-Info = %q, want %q", got, want)
		}
	}
	resp, body := e.do(t, "GET", q, nil)
	if resp.StatusCode != 403 {
		t.Fatalf("over quota: %d %s", resp.StatusCode, body)
	}
	golden(t, "error_request_limit.json", body)
	if e.org.Log().Counters().RateLimited != 1 {
		t.Errorf("counters %+v", e.org.Log().Counters())
	}
	e.org.SetDailyUsage(0)
	e.org.ExpireTokens()
	resp, body = e.do(t, "GET", q, nil)
	if resp.StatusCode != 401 {
		t.Fatalf("expired token: %d %s", resp.StatusCode, body)
	}
	golden(t, "error_invalid_session.json", body)
}

func TestBurstLimit(t *testing.T) {
	e := newEnv(t, Config{BurstLimit: 2, BurstInterval: time.Hour, Now: time.Now}, baseSeed)
	q := queryPath("SELECT Id FROM User LIMIT 1")
	var codes []int
	for range 3 {
		resp, _ := e.do(t, "GET", q, nil)
		codes = append(codes, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{200, 200, 403}, codes); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestTokenEndpoint(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{ClientID: "cid", ClientSecret: "csecret", JWTPublicKey: &key.PublicKey}, baseSeed)
	post := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(e.srv.URL+"/services/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	assertion := func(method jwt.SigningMethod, signKey any, exp time.Duration, sub string) string {
		tok := jwt.NewWithClaims(method, jwt.MapClaims{"iss": "cid", "sub": sub, "aud": "https://login.salesforce.com", "exp": fixedNow.Add(exp).Unix()})
		s, err := tok.SignedString(signKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name   string
		form   url.Values
		status int
		errKey string
	}{
		{"client_credentials", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {"cid"}, "client_secret": {"csecret"}}, 200, ""},
		{"bad_secret", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {"cid"}, "client_secret": {"x"}}, 400, "invalid_client"},
		{"jwt", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(jwt.SigningMethodRS256, key, 2*time.Minute, "ada@acme.example")}}, 200, ""},
		{"jwt_exp_too_far", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(jwt.SigningMethodRS256, key, 5*time.Minute, "ada@acme.example")}}, 400, "invalid_grant"},
		{"jwt_expired", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(jwt.SigningMethodRS256, key, -time.Minute, "ada@acme.example")}}, 400, "invalid_grant"},
		{"jwt_wrong_key", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(jwt.SigningMethodRS256, other, time.Minute, "ada@acme.example")}}, 400, "invalid_grant"},
		{"jwt_hs256", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(jwt.SigningMethodHS256, []byte("k"), time.Minute, "ada@acme.example")}}, 400, "invalid_grant"},
		{"jwt_inactive_user", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion(jwt.SigningMethodRS256, key, time.Minute, "linus@acme.example")}}, 400, "invalid_grant"},
		{"unsupported", url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.form)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if tt.errKey != "" {
				if body["error"] != tt.errKey {
					t.Fatalf("error %v, want %s", body, tt.errKey)
				}
				return
			}
			for _, k := range []string{"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"} {
				if _, ok := body[k]; !ok {
					t.Errorf("missing %s in %v", k, body)
				}
			}
			if body["instance_url"] != "https://acme.my.salesforce.com" || body["token_type"] != "Bearer" {
				t.Errorf("body %v", body)
			}
			e.token = body["access_token"].(string)
			resp, b := e.do(t, "GET", queryPath("SELECT Id FROM User LIMIT 1"), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("token not accepted: %d %s", resp.StatusCode, b)
			}
		})
	}
}

// omListener is a fake Outbound Message endpoint answering from a script of responses.
type omListener struct {
	mu      sync.Mutex
	script  []func(w http.ResponseWriter)
	bodies  [][]byte
	queries []string
}

const ackBody = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>`

func (l *omListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	n := len(l.bodies)
	l.bodies = append(l.bodies, b)
	l.queries = append(l.queries, r.URL.RawQuery)
	l.mu.Unlock()
	if n < len(l.script) {
		l.script[n](w)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, ackBody)
}

func (l *omListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.bodies)
}

func TestOutboundMessageRedeliveredUntilAck(t *testing.T) {
	l := &omListener{script: []func(http.ResponseWriter){
		func(w http.ResponseWriter) { w.WriteHeader(500) },
		func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"ok":true}`) },
		func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, strings.Replace(ackBody, "<Ack>true</Ack>", "<Ack>false</Ack>", 1))
		},
	}}
	ls := httptest.NewServer(l)
	defer ls.Close()
	e := newEnv(t, Config{Outbound: OutboundConfig{URL: ls.URL + "/sfdc/om", Key: "s3cret", BaseDelay: 5 * time.Millisecond}}, baseSeed)

	resp, body := e.do(t, "PATCH", "/services/data/v62.0/sobjects/Contact/0035g00000QwErTAAV", map[string]string{"OwnerId": "0055g00000AsDfGAAV"})
	if resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if err := e.org.SetOwner("0035g00000QwErTAAV", "0055g00000AsDfGAAV", ""); err != nil {
		t.Fatal(err)
	}
	// The integration's own write fires the message (an echo), as in a real org.
	resp, body = e.do(t, "PATCH", "/services/data/v62.0/sobjects/Lead/00Q5g00000ZxCvBEAV", map[string]string{"OwnerId": "0055g00000AsDfGAAV"})
	if resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	harness.Eventually(t, 5*time.Second, "ack", func() bool { return e.org.OutboundStats().Acked == 1 })
	if got := l.count(); got != 4 {
		t.Fatalf("deliveries %d, want 4 (500, non-SOAP 200, Ack false, Ack true)", got)
	}
	l.mu.Lock()
	first, last := l.bodies[0], l.bodies[3]
	q := l.queries[0]
	l.mu.Unlock()
	if !bytes.Equal(first, last) {
		t.Errorf("redelivery changed the message:\n%s\n%s", first, last)
	}
	if q != "key=s3cret" {
		t.Errorf("query %q", q)
	}
	golden(t, "om_lead.xml", first)
	ds := e.org.Deliveries()
	var attempts []int
	for _, d := range ds {
		attempts = append(attempts, d.Attempt)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4}, attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	for i := 1; i < len(ds); i++ {
		if gap, want := ds[i].Time.Sub(ds[i-1].Time), 5*time.Millisecond<<(i-1); gap < want {
			t.Errorf("gap before attempt %d = %v, want ≥ %v", i+1, gap, want)
		}
	}
}

func TestOutboundBatchesAndUserMessages(t *testing.T) {
	l := &omListener{}
	ls := httptest.NewServer(l)
	defer ls.Close()
	var seed Seed
	seed.Users = baseSeed.Users
	for i := range 150 {
		seed.Contacts = append(seed.Contacts, SeedRecord{Email: fmt.Sprintf("c%d@example.org", i), Owner: "ada@acme.example"})
	}
	e := newEnv(t, Config{Outbound: OutboundConfig{URL: ls.URL, BatchDelay: 50 * time.Millisecond}}, seed)
	for _, c := range e.org.Records(ObjectContact) {
		if err := e.org.SetOwner(c.ID, "0055g00000HjKlMAAV", "0055g00000AsDfGAAV"); err == nil {
			t.Fatal("inactive owner accepted")
		}
	}
	if _, err := e.org.UpdateUser("0055g00000HjKlMAAV", func(u *User) { u.IsActive = true }); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.org.Records(ObjectContact) {
		if err := e.org.SetOwner(c.ID, "0055g00000HjKlMAAV", "0055g00000AsDfGAAV"); err != nil {
			t.Fatal(err)
		}
	}
	e.org.FlushOutbound()
	harness.Eventually(t, 5*time.Second, "acks", func() bool {
		st := e.org.OutboundStats()
		return st.Pending == 0 && st.Queued == 0 && st.Acked >= 3
	})
	counts := map[string]int{}
	for _, d := range e.org.Deliveries() {
		if n := len(d.NotificationIDs); n > MaxNotifications {
			t.Errorf("%s message with %d notifications", d.Object, n)
		}
		counts[d.Object] += len(d.NotificationIDs)
	}
	if diff := cmp.Diff(map[string]int{"Contact": 150, "User": 1}, counts); diff != "" {
		t.Errorf("notifications per object (-want +got):\n%s", diff)
	}
	for _, d := range e.org.Deliveries() {
		if d.Object == "User" {
			golden(t, "om_user.xml", d.Body)
		}
	}
}

func TestOutboundDroppedAfterWindow(t *testing.T) {
	ls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer ls.Close()
	e := newEnv(t, Config{Outbound: OutboundConfig{URL: ls.URL, BaseDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond, Window: 200 * time.Millisecond}}, baseSeed)
	if err := e.org.SetOwner("00Q5g00000ZxCvBEAV", "0055g00000AsDfGAAV", ""); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "drop", func() bool { return e.org.OutboundStats().Dropped == 1 })
	st := e.org.OutboundStats()
	if st.Attempts < 2 || st.Queued != 0 || st.Acked != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOutboundSuppressedUser(t *testing.T) {
	l := &omListener{}
	ls := httptest.NewServer(l)
	defer ls.Close()
	e := newEnv(t, Config{Outbound: OutboundConfig{URL: ls.URL, SuppressUsers: []string{"integration@acme.example"}}}, baseSeed)
	resp, _ := e.do(t, "PATCH", "/services/data/v62.0/sobjects/Lead/00Q5g00000ZxCvBEAV", map[string]string{"OwnerId": "0055g00000AsDfGAAV"})
	if resp.StatusCode != 204 {
		t.Fatal(resp.StatusCode)
	}
	if err := e.org.SetOwner("00Q5g00000ZxCvBEAV", "00G5g000003LkJhEAK", "0055g00000AsDfGAAV"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "ack", func() bool { return e.org.OutboundStats().Acked == 1 })
	if ds := e.org.Deliveries(); len(ds) != 1 || !bytes.Contains(ds[0].Body, []byte("<sf:LastModifiedById>0055g00000AsDfGAAV</sf:LastModifiedById>")) {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestFaultRules(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	q := queryPath("SELECT Id FROM User LIMIT 1")
	e.org.Faults().Add(crmsim.Rule{Method: "GET", Path: "/services/data/*/query", Action: crmsim.ActionStatus, Status: 503, Count: 2})
	var codes []int
	for range 3 {
		resp, _ := e.do(t, "GET", q, nil)
		codes = append(codes, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{503, 503, 200}, codes); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	e.org.Faults().Clear()

	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: "0035g00000QwErTAAV", Count: 1})
	resp, body := e.do(t, "PATCH", "/services/data/v62.0/sobjects/Contact/0035g00000QwErTAAV", map[string]string{"OwnerId": "0055g00000AsDfGAAV"})
	if resp.StatusCode != 400 || !strings.Contains(string(body), "UNABLE_TO_LOCK_ROW") {
		t.Fatalf("lock row: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.do(t, "PATCH", "/services/data/v62.0/sobjects/Contact/0035g00000QwErTAAV", map[string]string{"OwnerId": "0055g00000AsDfGAAV"})
	if resp.StatusCode != 204 {
		t.Fatalf("after count used up: %d", resp.StatusCode)
	}

	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionHang, Path: "/services/data/v62.0/query"})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("GET", e.srv.URL+q, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	start := time.Now()
	if _, err := client.Do(req); err == nil {
		t.Fatal("hang answered")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("client timeout not honoured")
	}
	if got := e.org.Log().Counters().Faulted; got != 4 {
		t.Errorf("faulted = %d, want 4", got)
	}
	if n := len(e.org.Log().Matching("PATCH", "/services/data/v62.0/sobjects/Contact/")); n != 2 {
		t.Errorf("logged PATCHes = %d", n)
	}
}

func TestIDsHaveValidChecksums(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	var ids []string
	for _, u := range e.org.Users() {
		ids = append(ids, u.ID)
	}
	for _, r := range e.org.Records(ObjectContact) {
		ids = append(ids, r.ID)
	}
	for _, id := range ids {
		n, err := sfid.To18(id)
		if err != nil || n != id {
			t.Errorf("id %s: checksum invalid (%s, %v)", id, n, err)
		}
	}
}

func TestOutboundTimeoutIsRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	ls := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		_, _ = io.WriteString(w, ackBody)
	}))
	defer ls.Close()
	defer close(release)
	e := newEnv(t, Config{Outbound: OutboundConfig{URL: ls.URL, Timeout: 50 * time.Millisecond, BaseDelay: time.Millisecond}}, baseSeed)
	if err := e.org.SetOwner("00Q5g00000ZxCvBEAV", "0055g00000AsDfGAAV", ""); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "ack", func() bool { return e.org.OutboundStats().Acked == 1 })
	ds := e.org.Deliveries()
	if len(ds) != 2 || ds[0].Acked || ds[0].Error == "" || !ds[1].Acked {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestAdminAPI(t *testing.T) {
	l := &omListener{}
	ls := httptest.NewServer(l)
	defer ls.Close()
	e := newEnv(t, Config{Outbound: OutboundConfig{URL: ls.URL}}, baseSeed)
	steps := []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/_crmsim/users", map[string]any{"username": "new@acme.example", "email": "new@example.com", "lastName": "New"}, 201},
		{"POST", "/_crmsim/users", map[string]any{"username": "new@acme.example"}, 409},
		{"PATCH", "/_crmsim/users/0055g00000AsDfGAAV", map[string]any{"isActive": false}, 200},
		{"PATCH", "/_crmsim/records/0035g00000QwErTAAV", map[string]any{"ownerId": "0055g00000AsDfGAAV"}, 400},
		{"PATCH", "/_crmsim/records/0035g00000QwErTAAV", map[string]any{"ownerId": "0055g0000000001AAA", "actor": "0055g00000AsDfGAAV"}, 200},
		{"POST", "/_crmsim/leads", map[string]any{"email": "l@example.org", "lastName": "L", "ownerId": "00G5g000003LkJhEAK"}, 201},
		{"DELETE", "/_crmsim/records/00Q5g00000ZxCvBEAV", nil, 204},
		{"POST", "/_crmsim/faults", map[string]any{"action": "status", "status": 503, "count": 1}, 201},
		{"POST", "/_crmsim/limits", map[string]any{"dailyUsed": 41}, 200},
		{"GET", "/_crmsim/state", nil, 200},
		{"POST", "/_crmsim/tokens/expire", nil, 204},
	}
	for _, s := range steps {
		resp, body := e.do(t, s.method, s.path, s.body)
		if resp.StatusCode != s.status {
			t.Fatalf("%s %s: %d, want %d: %s", s.method, s.path, resp.StatusCode, s.status, body)
		}
	}
	if u, _ := e.org.User("0055g00000AsDfGAAV"); u.IsActive {
		t.Error("user still active")
	}
	if r, _ := e.org.Record("00Q5g00000ZxCvBEAV"); !r.IsDeleted {
		t.Error("lead not deleted")
	}
	resp, _ := e.do(t, "GET", queryPath("SELECT Id FROM User"), nil)
	if resp.StatusCode != 503 {
		t.Fatalf("fault from admin API: %d", resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", queryPath("SELECT Id FROM User"), nil)
	if resp.StatusCode != 401 || resp.Header.Get("Sforce-Limit-Info") != "api-usage=41/100000" {
		t.Fatalf("after expire: %d %q", resp.StatusCode, resp.Header.Get("Sforce-Limit-Info"))
	}
	harness.Eventually(t, 5*time.Second, "acks", func() bool {
		st := e.org.OutboundStats()
		return st.Pending == 0 && st.Queued == 0 && st.Acked >= 2
	})
	objs := map[string]int{}
	for _, d := range e.org.Deliveries() {
		objs[d.Object] += len(d.NotificationIDs)
	}
	if diff := cmp.Diff(map[string]int{"User": 2, "Contact": 1}, objs); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
}

var tokenPattern = regexp.MustCompile(`"access_token":"[^"]+"`)

func TestMoreWireShapes(t *testing.T) {
	e := newEnv(t, Config{ClientID: "cid", ClientSecret: "csecret"}, baseSeed)
	resp, err := http.PostForm(e.srv.URL+"/services/oauth2/token", url.Values{"grant_type": {GrantClientCredentials}, "client_id": {"cid"}, "client_secret": {"csecret"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	golden(t, "token_response.json", tokenPattern.ReplaceAll(body, []byte(`"access_token":"<token>"`)))
	for _, tt := range []struct {
		name, path string
		status     int
	}{
		{"versions", "/services/data/", 200},
		{"get_user", "/services/data/v62.0/sobjects/User/0055g00000AsDfG", 200},
		{"get_contact_fields", "/services/data/v62.0/sobjects/Contact/0035g00000QwErTAAV?fields=Id,OwnerId", 200},
		{"get_missing", "/services/data/v62.0/sobjects/Lead/00Q000000000000AAA", 404},
		{"unknown_resource", "/services/data/v62.0/limits/nope", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, "GET", tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			golden(t, tt.name+".json", body)
		})
	}
}

func TestSetOutboundURLAtRunTime(t *testing.T) {
	e := newEnv(t, Config{}, baseSeed)
	if err := e.org.SetOwner("00Q5g00000ZxCvBEAV", "0055g00000AsDfGAAV", ""); err != nil {
		t.Fatal(err)
	}
	if st := e.org.OutboundStats(); st.Pending != 0 || st.Queued != 0 {
		t.Fatalf("queued without a URL: %+v", st)
	}
	l := &omListener{}
	ls := httptest.NewServer(l)
	defer ls.Close()
	e.org.SetOutboundURL(ls.URL+"/om", "k")
	if err := e.org.SetOwner("00Q5g00000ZxCvBEAV", "00G5g000003LkJhEAK", ""); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "ack", func() bool { return e.org.OutboundStats().Acked == 1 })
	if ds := e.org.Deliveries(); ds[0].URL != ls.URL+"/om?key=k" {
		t.Errorf("url %s", ds[0].URL)
	}
}
