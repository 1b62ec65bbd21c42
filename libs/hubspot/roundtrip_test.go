package hubspot_test

// Round trips of the real client against the real HubSpot sandbox (workbench/crmsim/hssim) served over
// HTTP: every call of the client, with the sandbox's paging, validation, faults, rate limits and
// OAuth (issue 4, "Tests").

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/retry"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
)

var updateRoundtrip = flag.Bool("roundtrip.update", false, "rewrite testdata/roundtrip golden files")

const (
	rtToken        = "pat-na1-roundtrip-0000-1111"
	rtClientID     = "hs-roundtrip-client"
	rtClientSecret = "hs-roundtrip-secret"
	rtRefresh      = "rt-roundtrip-refresh"
	rtBatchPath    = "/crm/v3/objects/contacts/batch/update"
)

// rtClock is a settable clock shared by the sandbox and the client.
type rtClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *rtClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *rtClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// rtSeed: two active owners, one archived owner, a queue, and contacts (one unowned).
func rtSeed() hssim.Seed {
	return hssim.Seed{
		Owners: []hssim.Owner{
			{ID: "7001", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", UserID: 9001},
			{ID: "7002", Email: "bob@example.com", FirstName: "Bob", LastName: "Builder", UserID: 9002},
			{ID: "7003", Email: "old@example.com", FirstName: "Old", LastName: "Timer", UserID: 9003, Archived: true},
			{ID: "7004", Email: "queue@example.com", FirstName: "Inbound", Type: hssim.OwnerQueue},
		},
		Contacts: []hssim.SeedContact{
			{ID: "101", Email: "grace@example.org", FirstName: "Grace", Owner: "7001"},
			{ID: "102", Email: "Linus@Example.org", Owner: "7002"},
			{ID: "103", Email: "nobody-owns@example.org"},
			{ID: "104", Email: "four@example.org", Owner: "7001"},
			{ID: "105", Email: "five@example.org", Owner: "7001"},
		},
	}
}

// rtSandbox serves a sandbox account over httptest with the private-app token and OAuth app.
func rtSandbox(t *testing.T, cfg hssim.Config, seed hssim.Seed) (*hssim.Account, string) {
	t.Helper()
	cfg.AccessTokens = append(cfg.AccessTokens, rtToken)
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = rtClientID, rtClientSecret
	}
	a, err := hssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Load(seed); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	return a, srv.URL
}

// rtClient is a private-app client of the sandbox at base.
func rtClient(t *testing.T, base string, mod ...func(*hubspot.Config)) *hubspot.Client {
	t.Helper()
	cfg := hubspot.Config{BaseURL: base, AccessToken: rtToken, Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := hubspot.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rtAPIError(t *testing.T, err error) *hubspot.APIError {
	t.Helper()
	var ae *hubspot.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return ae
}

// rtGolden compares got (JSON) with testdata/roundtrip/name as JSON values, rewriting the file
// (indented) under -roundtrip.update.
func rtGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "roundtrip", name)
	if *updateRoundtrip {
		var buf bytes.Buffer
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('\n')
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -roundtrip.update to create): %v", err)
	}
	sameJSON(t, want, got)
}

func TestRoundTripListOwnersManyPagesBothPasses(t *testing.T) {
	var seed hssim.Seed
	for i := range 730 {
		o := hssim.Owner{ID: strconv.Itoa(100000 + i), Email: fmt.Sprintf("active%03d@example.com", i), FirstName: "Active", LastName: strconv.Itoa(i), UserID: int64(500000 + i)}
		if i%73 == 0 {
			o = hssim.Owner{ID: strconv.Itoa(100000 + i), Email: fmt.Sprintf("queue%03d@example.com", i), FirstName: "Queue", Type: hssim.OwnerQueue}
		}
		seed.Owners = append(seed.Owners, o)
	}
	for i := range 260 {
		seed.Owners = append(seed.Owners, hssim.Owner{ID: strconv.Itoa(200000 + i), Email: fmt.Sprintf("gone%03d@example.com", i),
			FirstName: "Gone", LastName: strconv.Itoa(i), UserID: int64(600000 + i), Archived: true})
	}
	a, base := rtSandbox(t, hssim.Config{}, seed)

	tests := []struct {
		name     string
		pageSize int
		archived bool
		pages    []int
	}{
		{"active, default limit", 0, false, []int{100, 100, 100, 100, 100, 100, 100, 30}},
		{"archived, default limit", 0, true, []int{100, 100, 60}},
		{"active, limit 500", 500, false, []int{500, 230}},
		{"archived, limit 500", 500, true, []int{260}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.Log().Reset()
			c := rtClient(t, base, func(cfg *hubspot.Config) { cfg.OwnersPageSize = tt.pageSize })
			var pages []int
			got := map[string]hubspot.Owner{}
			err := c.ListOwners(context.Background(), tt.archived, func(page []hubspot.Owner) error {
				pages = append(pages, len(page))
				for _, o := range page {
					if _, dup := got[o.ID]; dup {
						t.Errorf("owner %s listed twice", o.ID)
					}
					got[o.ID] = o
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.pages, pages); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			queues := 0
			for _, so := range a.Owners() {
				o, listed := got[so.ID]
				if listed != (so.Archived == tt.archived) {
					t.Errorf("owner %s (archived %v) listed %v in the archived=%v pass", so.ID, so.Archived, listed, tt.archived)
					continue
				}
				if !listed {
					continue
				}
				want := hubspot.Owner{ID: so.ID, Email: so.Email, FirstName: so.FirstName, LastName: so.LastName, Type: so.Type,
					Archived: so.Archived, UserIDIncludingInactive: so.UserID}
				if so.UserID != 0 && !so.Archived {
					want.UserID = int64p(so.UserID)
				}
				if so.Type == hubspot.OwnerQueue {
					queues++
				}
				if diff := cmp.Diff(want, o, cmp.FilterPath(func(p cmp.Path) bool {
					f := p.Last().String()
					return f == ".CreatedAt" || f == ".UpdatedAt" || f == ".Teams"
				}, cmp.Ignore())); diff != "" {
					t.Errorf("owner %s (-want +got):\n%s", so.ID, diff)
				}
			}
			if !tt.archived && queues != 10 {
				t.Errorf("%d queues listed, want 10", queues)
			}
			reqs := a.Log().Matching(http.MethodGet, "/crm/v3/owners")
			if len(reqs) != len(tt.pages) {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.pages))
			}
			for i, r := range reqs {
				q, _ := url.ParseQuery(r.Query)
				if q.Get("archived") != strconv.FormatBool(tt.archived) || (i == 0) != (q.Get("after") == "") {
					t.Errorf("request %d query %q", i, r.Query)
				}
				if tt.pageSize != 0 && q.Get("limit") != strconv.Itoa(tt.pageSize) {
					t.Errorf("request %d limit %q", i, q.Get("limit"))
				}
			}
		})
	}
}

func TestRoundTripGetOwner(t *testing.T) {
	_, base := rtSandbox(t, hssim.Config{}, rtSeed())
	c := rtClient(t, base)
	tests := []struct {
		name     string
		id       string
		archived bool
		want     hubspot.Owner
		err      error
	}{
		{"active", "7001", false, hubspot.Owner{ID: "7001", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", Type: "PERSON", UserID: int64p(9001), UserIDIncludingInactive: 9001}, nil},
		{"archived", "7003", true, hubspot.Owner{ID: "7003", Email: "old@example.com", FirstName: "Old", LastName: "Timer", Type: "PERSON", UserIDIncludingInactive: 9003, Archived: true}, nil},
		{"queue", "7004", false, hubspot.Owner{ID: "7004", Email: "queue@example.com", FirstName: "Inbound", Type: "QUEUE"}, nil},
		{"archived without archived=true", "7003", false, hubspot.Owner{}, hubspot.ErrNotFound},
		{"active with archived=true", "7001", true, hubspot.Owner{}, hubspot.ErrNotFound},
		{"unknown", "999999", false, hubspot.Owner{}, hubspot.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.GetOwner(context.Background(), tt.id, tt.archived)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil && hubspot.Transient(err) {
				t.Errorf("%v classified transient", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.FilterPath(func(p cmp.Path) bool {
				f := p.Last().String()
				return f == ".CreatedAt" || f == ".UpdatedAt"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("owner (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripFindContactByEmail(t *testing.T) {
	a, base := rtSandbox(t, hssim.Config{}, rtSeed())
	c := rtClient(t, base)
	tests := []struct {
		email string
		want  hubspot.Contact
		err   error
	}{
		{"grace@example.org", hubspot.Contact{ID: "101", Email: "grace@example.org", OwnerID: "7001"}, nil},
		{"linus@example.org", hubspot.Contact{ID: "102", Email: "Linus@Example.org", OwnerID: "7002"}, nil},
		{"nobody-owns@example.org", hubspot.Contact{ID: "103", Email: "nobody-owns@example.org"}, nil},
		{"missing@example.org", hubspot.Contact{}, hubspot.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			got, err := c.FindContactByEmail(context.Background(), tt.email)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil {
				sc, _ := a.Contact(tt.want.ID)
				if !got.CreatedAt.Equal(sc.CreatedAt.Truncate(time.Millisecond)) || got.UpdatedAt.IsZero() {
					t.Errorf("times %v %v, sandbox created %v", got.CreatedAt, got.UpdatedAt, sc.CreatedAt)
				}
			}
			got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("contact (-want +got):\n%s", diff)
			}
		})
	}
	reqs := a.Log().Matching(http.MethodGet, "/crm/v3/objects/contacts/")
	if q, _ := url.ParseQuery(reqs[0].Query); q.Get("idProperty") != "email" {
		t.Errorf("lookup query %q, want idProperty=email", reqs[0].Query)
	}
}

func rtOwnerOf(t *testing.T, a *hssim.Account, id string) string {
	t.Helper()
	c, ok := a.Contact(id)
	if !ok {
		t.Fatalf("contact %s missing", id)
	}
	return c.Properties[hssim.OwnerProperty]
}

func TestRoundTripBatchUpdateOwners200(t *testing.T) {
	a, base := rtSandbox(t, hssim.Config{}, rtSeed())
	c := rtClient(t, base)
	res, err := c.BatchUpdateOwners(context.Background(), []hubspot.OwnerUpdate{
		{ContactID: "101", OwnerID: "7002", TraceID: "task-1"},
		{ContactID: "103", OwnerID: "7001", TraceID: "task-2"},
		{ContactID: "104", OwnerID: "", TraceID: "task-3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Failed(); len(f) != 0 || len(res.Items) != 3 {
		t.Errorf("items %+v, failed %+v", res.Items, f)
	}
	if len(res.Responses) != 1 || res.Responses[0].HTTPStatus != http.StatusOK || res.Responses[0].Status != "COMPLETE" || res.Responses[0].NumErrors != 0 {
		t.Errorf("responses = %+v, want one 200 COMPLETE", res.Responses)
	}
	got := map[string]string{"101": rtOwnerOf(t, a, "101"), "103": rtOwnerOf(t, a, "103"), "104": rtOwnerOf(t, a, "104")}
	if diff := cmp.Diff(map[string]string{"101": "7002", "103": "7001", "104": ""}, got); diff != "" {
		t.Errorf("owners (-want +got):\n%s", diff)
	}
	reqs := a.Log().Matching(http.MethodPost, rtBatchPath)
	if len(reqs) != 1 {
		t.Fatalf("%d batch requests", len(reqs))
	}
	rtGolden(t, "batch_update_200_request.json", reqs[0].Body)
}

func TestRoundTripBatchUpdateOwners207(t *testing.T) {
	clock := &rtClock{now: time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)}
	a, base := rtSandbox(t, hssim.Config{Now: clock.Now}, rtSeed())
	a.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: "104", Code: "CONFLICT", Count: 1})
	c := rtClient(t, base)
	// 130 inputs: two requests (100 + 30); the failures sit in both.
	var updates []hubspot.OwnerUpdate
	updates = append(updates,
		hubspot.OwnerUpdate{ContactID: "101", OwnerID: "7002", TraceID: "task-ok"},
		hubspot.OwnerUpdate{ContactID: "102", OwnerID: "7003", TraceID: "task-archived"},
		hubspot.OwnerUpdate{ContactID: "104", OwnerID: "7002", TraceID: "task-locked"},
	)
	for i := range 97 {
		updates = append(updates, hubspot.OwnerUpdate{ContactID: strconv.Itoa(1000 + i), OwnerID: "7001", TraceID: fmt.Sprintf("task-new-%d", i)})
	}
	for i := range 27 {
		updates = append(updates, hubspot.OwnerUpdate{ContactID: strconv.Itoa(2000 + i), OwnerID: "7002", TraceID: fmt.Sprintf("task-more-%d", i)})
	}
	updates = append(updates,
		hubspot.OwnerUpdate{ContactID: "103", OwnerID: "424242", TraceID: "task-unknown-owner"},
		hubspot.OwnerUpdate{ContactID: "999999", OwnerID: "7001", TraceID: "task-no-contact"},
		hubspot.OwnerUpdate{ContactID: "105", OwnerID: "7004", TraceID: "task-queue"},
	)
	for i := range 97 {
		if _, err := a.CreateContact(hssim.Contact{ID: strconv.Itoa(1000 + i), Properties: map[string]string{"email": fmt.Sprintf("n%d@example.org", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 27 {
		if _, err := a.CreateContact(hssim.Contact{ID: strconv.Itoa(2000 + i), Properties: map[string]string{"email": fmt.Sprintf("m%d@example.org", i)}}); err != nil {
			t.Fatal(err)
		}
	}

	res, err := c.BatchUpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	type failure struct {
		Trace, Category, Code string
		Status                int
	}
	var got []failure
	for _, it := range res.Failed() {
		ae := rtAPIError(t, it.Err)
		f := failure{Trace: it.TraceID, Category: ae.Category, Status: ae.HTTPStatus}
		if len(ae.Errors) > 0 {
			f.Code = ae.Errors[0].Code
		}
		if !slices.Contains(ae.TraceIDs(), it.TraceID) {
			t.Errorf("%s: error names traces %v", it.TraceID, ae.TraceIDs())
		}
		if hubspot.Transient(it.Err) {
			t.Errorf("%s: %v classified transient", it.TraceID, it.Err)
		}
		got = append(got, f)
	}
	want := []failure{
		{"task-archived", "VALIDATION_ERROR", "INVALID_OWNER_ID", 207},
		{"task-locked", "CONFLICT", "", 207},
		{"task-unknown-owner", "VALIDATION_ERROR", "INVALID_OWNER_ID", 207},
		{"task-no-contact", "OBJECT_NOT_FOUND", "", 207},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures matched by trace id (-want +got):\n%s", diff)
	}
	if len(res.Items) != len(updates) {
		t.Fatalf("%d items for %d updates", len(res.Items), len(updates))
	}
	for i, it := range res.Items {
		if it.OwnerUpdate != updates[i] {
			t.Fatalf("item %d is %+v, want input order", i, it.OwnerUpdate)
		}
	}
	var statuses []int
	for _, r := range res.Responses {
		statuses = append(statuses, r.HTTPStatus)
	}
	if diff := cmp.Diff([]int{207, 207}, statuses); diff != "" {
		t.Errorf("response statuses (-want +got):\n%s", diff)
	}
	owners := map[string]string{}
	for _, id := range []string{"101", "102", "103", "104", "105", "1000", "2026"} {
		owners[id] = rtOwnerOf(t, a, id)
	}
	if diff := cmp.Diff(map[string]string{"101": "7002", "102": "7002", "103": "", "104": "7001", "105": "7004", "1000": "7001", "2026": "7002"}, owners); diff != "" {
		t.Errorf("owners in the sandbox (-want +got):\n%s", diff)
	}
	reqs := a.Log().Matching(http.MethodPost, rtBatchPath)
	if len(reqs) != 2 {
		t.Fatalf("%d batch requests, want 2", len(reqs))
	}
	// The second request on the wire, and the sandbox's 207 answer to it (its clock is fixed).
	rtGolden(t, "batch_update_207_request.json", reqs[1].Body)

	a.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: "2000"})
	resp, err := http.DefaultClient.Do(rtRequest(t, base, reqs[1].Body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("replay status %d", resp.StatusCode)
	}
	rtGolden(t, "batch_update_207_response.json", body.Bytes())
}

func rtRequest(t *testing.T, base string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+rtBatchPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rtToken)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// rtRetry retries with the client's classification; backoff is short, so the waits come from
// the errors' RetryAfter.
func rtRetry(onRetry func(error, time.Duration)) retry.Policy {
	return retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxAttempts: 10,
		MaxElapsed: 10 * time.Second, Retryable: hubspot.Transient, OnRetry: onRetry}
}

func TestRoundTripRateLimitStormThenRecovery(t *testing.T) {
	const window = 80 * time.Millisecond
	a, base := rtSandbox(t, hssim.Config{BurstInterval: window}, rtSeed())
	c := rtClient(t, base)
	a.Faults().Add(crmsim.Rule{Path: "/crm/v3/", Action: crmsim.ActionRateLimit, Count: 3})

	var waits []time.Duration
	var retried []error
	var owner hubspot.Owner
	err := retry.Do(context.Background(), rtRetry(func(err error, d time.Duration) {
		retried = append(retried, err)
		waits = append(waits, d)
	}), func(ctx context.Context) error {
		var err error
		owner, err = c.GetOwner(ctx, "7001", false)
		return err
	})
	if err != nil {
		t.Fatalf("after the storm: %v", err)
	}
	if owner.ID != "7001" || len(retried) != 3 {
		t.Fatalf("owner %+v after %d retries, want 3", owner, len(retried))
	}
	for i, err := range retried {
		ae := rtAPIError(t, err)
		if ae.HTTPStatus != 429 || ae.PolicyName != hubspot.PolicyTenSecondlyRolling || !errors.Is(err, hubspot.ErrRateLimited) ||
			errors.Is(err, hubspot.ErrDailyLimit) || !hubspot.Transient(err) {
			t.Errorf("retry %d: %v (policy %q)", i, err, ae.PolicyName)
		}
		if ae.RateLimit.Interval != window || ae.RateLimit.Remaining != 0 {
			t.Errorf("retry %d: rate-limit headers %+v", i, ae.RateLimit)
		}
		// One slot of the rolling window, not the whole window (issue 18: a 429 costs what it must).
		if slot := window / time.Duration(ae.RateLimit.Max); waits[i] < slot || waits[i] >= window {
			t.Errorf("retry %d waited %v, want one slot of the window (%v), less than the %v window", i, waits[i], slot, window)
		}
	}
	if got := a.Log().Counters().RateLimited; got != 3 {
		t.Errorf("sandbox answered %d 429s, want 3", got)
	}

	// A real burst: 4 requests per window. Fifteen calls in a row all succeed, the refused ones
	// after waiting out the window.
	a2, base2 := rtSandbox(t, hssim.Config{BurstLimit: 4, BurstInterval: window}, rtSeed())
	c2 := rtClient(t, base2)
	for i := range 15 {
		err := retry.Do(context.Background(), rtRetry(nil), func(ctx context.Context) error {
			_, err := c2.FindContactByEmail(ctx, "grace@example.org")
			return err
		})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := a2.Log().Counters().RateLimited; got == 0 {
		t.Error("the burst limit never answered 429")
	}
}

func TestRoundTripDailyLimit(t *testing.T) {
	a, base := rtSandbox(t, hssim.Config{DailyLimit: 1000}, rtSeed())
	c := rtClient(t, base)
	if _, err := c.GetOwner(context.Background(), "7001", false); err != nil {
		t.Fatal(err)
	}
	a.SetDailyUsage(1000)
	attempts := 0
	err := retry.Do(context.Background(), rtRetry(nil), func(ctx context.Context) error {
		attempts++
		_, err := c.BatchUpdateOwners(ctx, []hubspot.OwnerUpdate{{ContactID: "101", OwnerID: "7002", TraceID: "t1"}})
		return err
	})
	ae := rtAPIError(t, err)
	if ae.HTTPStatus != 429 || ae.PolicyName != hubspot.PolicyDaily || !errors.Is(err, hubspot.ErrDailyLimit) || !errors.Is(err, hubspot.ErrRateLimited) {
		t.Errorf("error %v (policy %q), want a DAILY 429", err, ae.PolicyName)
	}
	if hubspot.Transient(err) || attempts != 1 {
		t.Errorf("DAILY 429 retried: %d attempts, transient %v", attempts, hubspot.Transient(err))
	}
	if rl, ok := c.RateLimitInfo(); !ok || !rl.HasDaily || rl.Daily != 1000 || rl.DailyRemaining != 0 {
		t.Errorf("RateLimitInfo = %+v, %v", rl, ok)
	}
	if got := rtOwnerOf(t, a, "101"); got != "7001" {
		t.Errorf("owner written over the daily limit: %s", got)
	}
}

func TestRoundTripRateLimitHeaders(t *testing.T) {
	a, base := rtSandbox(t, hssim.Config{DailyLimit: 500000}, rtSeed())
	a.SetDailyUsage(1234)
	var mu sync.Mutex
	var seen []hubspot.RateLimit
	c := rtClient(t, base, func(cfg *hubspot.Config) {
		cfg.OnRateLimit = func(rl hubspot.RateLimit) {
			mu.Lock()
			seen = append(seen, rl)
			mu.Unlock()
		}
	})
	if _, ok := c.RateLimitInfo(); ok {
		t.Error("RateLimitInfo before any call")
	}
	ctx := context.Background()
	if _, err := c.GetOwner(ctx, "7001", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindContactByEmail(ctx, "missing@example.org"); !errors.Is(err, hubspot.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := c.BatchUpdateOwners(ctx, []hubspot.OwnerUpdate{{ContactID: "101", OwnerID: "7002", TraceID: "t1"}}); err != nil {
		t.Fatal(err)
	}
	want := []hubspot.RateLimit{
		{Max: 190, Remaining: 189, Interval: 10 * time.Second, Daily: 500000, DailyRemaining: 500000 - 1235, HasDaily: true},
		{Max: 190, Remaining: 188, Interval: 10 * time.Second, Daily: 500000, DailyRemaining: 500000 - 1236, HasDaily: true},
		{Max: 190, Remaining: 187, Interval: 10 * time.Second, Daily: 500000, DailyRemaining: 500000 - 1237, HasDaily: true},
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("OnRateLimit calls (-want +got):\n%s", diff)
	}
	if got, ok := c.RateLimitInfo(); !ok || got != want[2] {
		t.Errorf("RateLimitInfo = %+v, %v", got, ok)
	}
}

func TestRoundTripOAuthRefreshAndExpiry(t *testing.T) {
	// x/oauth2 stamps a token's expiry from the wall clock, so the shared clock starts there.
	clock := &rtClock{now: time.Now()}
	a, base := rtSandbox(t, hssim.Config{RefreshTokens: []string{rtRefresh}, TokenTTL: 30 * time.Minute, Now: clock.Now}, rtSeed())
	oauthClient := func(refresh string) *hubspot.Client {
		return rtClient(t, base, func(cfg *hubspot.Config) {
			cfg.AccessToken = ""
			cfg.OAuth = &hubspot.OAuth{ClientID: rtClientID, ClientSecret: rtClientSecret, RefreshToken: refresh, TokenURL: base + "/oauth/v1/token"}
			cfg.Now = clock.Now
		})
	}
	c := oauthClient(rtRefresh)
	ctx := context.Background()
	bearers := func() []string {
		var out []string
		for _, e := range a.Log().Matching(http.MethodGet, "/crm/v3/") {
			out = append(out, e.Header.Get("Authorization"))
		}
		return out
	}
	tokenCalls := func() int { return len(a.Log().Matching(http.MethodPost, "/oauth/v1/token")) }

	for range 2 {
		if _, err := c.GetOwner(ctx, "7001", false); err != nil {
			t.Fatal(err)
		}
	}
	if n := tokenCalls(); n != 1 {
		t.Fatalf("%d token requests for two calls, want 1", n)
	}
	form, _ := url.ParseQuery(string(a.Log().Matching(http.MethodPost, "/oauth/v1/token")[0].Body))
	wantForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rtRefresh}, "client_id": {rtClientID}, "client_secret": {rtClientSecret}}
	if diff := cmp.Diff(wantForm, form); diff != "" {
		t.Errorf("refresh form (-want +got):\n%s", diff)
	}
	// OAuth-authorized calls carry no daily headers.
	if rl, ok := c.RateLimitInfo(); !ok || rl.HasDaily || rl.Max != 190 {
		t.Errorf("RateLimitInfo on OAuth = %+v, %v", rl, ok)
	}

	// 26 minutes on, the token is within RefreshEarly (5 min) of its expiry: refreshed first.
	clock.Add(26 * time.Minute)
	if _, err := c.GetOwner(ctx, "7001", false); err != nil {
		t.Fatal(err)
	}
	if n := tokenCalls(); n != 2 {
		t.Errorf("%d token requests after 26 minutes, want 2", n)
	}
	b := bearers()
	if len(b) != 3 || b[0] != b[1] || b[1] == b[2] {
		t.Errorf("bearer tokens %q: want the first twice, then the refreshed one", b)
	}

	// Tokens the sandbox expires early are refused with EXPIRED_AUTHENTICATION (401, permanent):
	// HubSpot says a 401 is no reliable sign, so the client refreshes by expires_in only. (A client
	// on the wall clock: with the shifted clock above every call would refresh from now on.)
	c2 := rtClient(t, base, func(cfg *hubspot.Config) {
		cfg.AccessToken = ""
		cfg.OAuth = &hubspot.OAuth{ClientID: rtClientID, ClientSecret: rtClientSecret, RefreshToken: rtRefresh, TokenURL: base + "/oauth/v1/token"}
	})
	if _, err := c2.GetOwner(ctx, "7001", false); err != nil {
		t.Fatal(err)
	}
	a.ExpireTokens()
	_, err := c2.GetOwner(ctx, "7001", false)
	if ae := rtAPIError(t, err); ae.HTTPStatus != 401 || ae.Category != "EXPIRED_AUTHENTICATION" || hubspot.Transient(err) {
		t.Errorf("expired token: %v (category %q, transient %v)", err, ae.Category, hubspot.Transient(err))
	}

	// An unknown refresh token gets no access token: permanent, and nothing reaches the API.
	before := len(a.Log().Matching("", "/crm/"))
	_, err = oauthClient("rt-unknown").GetOwner(ctx, "7001", false)
	if err == nil || hubspot.Transient(err) {
		t.Errorf("unknown refresh token: %v (transient %v)", err, hubspot.Transient(err))
	}
	if strings.Contains(fmt.Sprint(err), rtClientSecret) {
		t.Errorf("error %q shows the client secret", err)
	}
	if after := len(a.Log().Matching("", "/crm/")); after != before {
		t.Errorf("%d API requests without a token", after-before)
	}
}
