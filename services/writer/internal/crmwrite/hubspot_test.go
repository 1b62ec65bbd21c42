package crmwrite

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/retry"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// hsServer speaks HubSpot's contacts batch update (docs/crm-protocols.md#hubspot-contacts): 200
// when every input applied, 207 with errors matched by objectWriteTraceId otherwise, rate-limit
// headers on every answer, and scripted whole-request answers (status + body) consumed one per
// call.
type hsServer struct {
	mu      sync.Mutex
	srv     *httptest.Server
	owners  map[string]string    // contact id → hubspot_owner_id
	refuse  map[string][2]string // contact id → category, sub-error code
	lockN   map[string]int       // contact id → how many more times it answers with a lock-free transient miss
	script  []func(http.ResponseWriter) bool
	calls   [][]map[string]any         // inputs per call
	headers func(call int) http.Header // rate-limit headers per call
}

func newHSServer(t *testing.T) *hsServer {
	s := &hsServer{owners: map[string]string{"51234": "1", "51240": "1", "51241": "1"},
		refuse: map[string][2]string{}, lockN: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hsServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/crm/v3/objects/contacts/batch/update" || r.Header.Get("Authorization") != "Bearer pat-test" {
		http.Error(w, `{"status":"error","message":"unexpected request"}`, http.StatusBadRequest)
		return
	}
	var req struct {
		Inputs []map[string]any `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"status":"error","category":"VALIDATION_ERROR","message":"bad json"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, req.Inputs)
	if s.headers != nil {
		for k, v := range s.headers(len(s.calls)) {
			w.Header()[k] = v
		}
	}
	if len(s.script) > 0 {
		next := s.script[0]
		s.script = s.script[1:]
		if next(w) {
			return
		}
	}
	var results, errs []map[string]any
	for _, in := range req.Inputs {
		id, _ := in["id"].(string)
		trace, _ := in["objectWriteTraceId"].(string)
		props, _ := in["properties"].(map[string]any)
		if ref, ok := s.refuse[id]; ok {
			e := map[string]any{"status": "error", "category": ref[0], "message": "Property values were not valid",
				"context": map[string][]string{"objectWriteTraceId": {trace}}, "errors": []map[string]any{}}
			if ref[1] != "" {
				e["errors"] = []map[string]any{{"message": "owner is not valid", "code": ref[1]}}
			}
			errs = append(errs, e)
			continue
		}
		if s.lockN[id] > 0 { // answered in neither results nor errors: the client reports ErrNoResult
			s.lockN[id]--
			continue
		}
		s.owners[id], _ = props["hubspot_owner_id"].(string)
		results = append(results, map[string]any{"id": id, "properties": map[string]string{"hubspot_owner_id": s.owners[id]},
			"createdAt": "2025-05-02T09:00:00.000Z", "updatedAt": "2026-01-01T00:00:05.000Z", "archived": false})
	}
	body := map[string]any{"status": "COMPLETE", "results": results, "requestedAt": "2026-01-01T00:00:04.900Z",
		"startedAt": "2026-01-01T00:00:04.950Z", "completedAt": "2026-01-01T00:00:05.100Z"}
	status := http.StatusOK
	if len(errs) > 0 {
		body["numErrors"], body["errors"], status = len(errs), errs, http.StatusMultiStatus
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (s *hsServer) callCount() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.calls) }

func answer(status int, body string, h ...string) func(http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		for i := 0; i+1 < len(h); i += 2 {
			w.Header().Set(h[i], h[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
		return true
	}
}

type hsEnv struct {
	server  *hsServer
	limiter *ratelimit.Limiter
	adapter *HubSpot
	mu      sync.Mutex
	notices []ratelimit.Notice
}

func newHSEnv(t *testing.T) *hsEnv {
	t.Helper()
	e := &hsEnv{server: newHSServer(t)}
	client, err := hubspot.New(hubspot.Config{BaseURL: e.server.srv.URL, AccessToken: "pat-test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.limiter = ratelimit.New(ratelimit.Config{
		Limits:  func(ratelimit.Key) ratelimit.Limits { return ratelimit.Limits{Rate: 1000, Burst: 100} },
		MaxWait: time.Second,
		// 2 % of the daily quota in reserve.
		QuotaThreshold: 0.02,
	})
	e.adapter = NewHubSpot(Config{
		Limiter:  e.limiter,
		OnNotice: func(n ratelimit.Notice) { e.mu.Lock(); e.notices = append(e.notices, n); e.mu.Unlock() },
		Retry:    retryFast,
	}, func(context.Context, string) (HubSpotAPI, error) { return client, nil })
	e.adapter.cfg.RecordRetryWait = 5 * time.Millisecond // the production floor is HubSpot's 2 s lock
	return e
}

// retryFast keeps whole-request retries quick in tests.
var retryFast = retry.Policy{InitialInterval: 10 * time.Millisecond}

var hsContacts = BatchKey{Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact}

func TestHubSpotFlushPerRecordResults(t *testing.T) {
	e := newHSEnv(t)
	e.server.refuse["51240"] = [2]string{"VALIDATION_ERROR", "INVALID_OWNER_ID"}
	e.server.refuse["51241"] = [2]string{"OBJECT_NOT_FOUND", ""}
	res, err := e.adapter.Flush(context.Background(), hsContacts, items(
		Write{RecordID: "51234", OwnerID: "71234567", TraceID: "ev-1"},
		Write{RecordID: "51240", OwnerID: "99999999", TraceID: "ev-2"},
		Write{RecordID: "51241", OwnerID: "71234567"},
	))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want := []outcome{
		{Written: Written{RecordID: "51234", OwnerID: "71234567"}},
		{Code: "INVALID_OWNER_ID", Class: ownership.Permanent, Refresh: true, HasRecord: true},
		{Code: "OBJECT_NOT_FOUND", Class: ownership.Permanent, HasRecord: true},
	}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	wantInputs := []map[string]any{
		{"id": "51234", "objectWriteTraceId": "ev-1", "properties": map[string]any{"hubspot_owner_id": "71234567"}},
		{"id": "51240", "objectWriteTraceId": "ev-2", "properties": map[string]any{"hubspot_owner_id": "99999999"}},
		{"id": "51241", "objectWriteTraceId": "51241", "properties": map[string]any{"hubspot_owner_id": "71234567"}},
	}
	if diff := cmp.Diff([][]map[string]any{wantInputs}, e.server.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestHubSpotClearAndRecordRetry(t *testing.T) {
	e := newHSEnv(t)
	e.server.lockN["51240"] = 1 // missing from the first answer only
	res, err := e.adapter.Flush(context.Background(), hsContacts, items(
		Write{RecordID: "51234", OwnerID: ""}, Write{RecordID: "51240", OwnerID: "71234567"}))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want := []outcome{{Written: Written{RecordID: "51234"}}, {Written: Written{RecordID: "51240", OwnerID: "71234567"}}}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if e.server.owners["51234"] != "" || e.server.callCount() != 2 {
		t.Errorf("owner of 51234 %q after %d calls; want cleared after 2 calls", e.server.owners["51234"], e.server.callCount())
	}
}

func TestHubSpotRollingLimitResumesAfterOneSlot(t *testing.T) {
	e := newHSEnv(t)
	e.server.script = append(e.server.script, answer(http.StatusTooManyRequests,
		`{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}`,
		"X-HubSpot-RateLimit-Max", "190", "X-HubSpot-RateLimit-Remaining", "0", "X-HubSpot-RateLimit-Interval-Milliseconds", "100"))
	var waits []time.Duration
	e.adapter.cfg.Retry.OnRetry = func(_ error, d time.Duration) { waits = append(waits, d) }
	res, err := e.adapter.Flush(context.Background(), hsContacts, items(Write{RecordID: "51234", OwnerID: "7"}))
	if err != nil || res[0].Err != nil {
		t.Fatalf("Flush = %v, %+v; want success after the window", err, res)
	}
	// A 429 costs what it must (issue 18): the window's first call leaves it after 100 ms / 190, so
	// the retry waits the backoff (10 ms ± 50 %), not the whole 100 ms window.
	if len(waits) != 1 || waits[0] >= 100*time.Millisecond {
		t.Errorf("retry waits %v, want one wait shorter than the 100 ms window", waits)
	}
	if n := e.server.callCount(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestHubSpotDailyLimitHoldsWithOneNotice(t *testing.T) {
	e := newHSEnv(t)
	daily := answer(http.StatusTooManyRequests,
		`{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","policyName":"DAILY"}`)
	e.server.script = append(e.server.script, daily)
	_, err := e.adapter.Flush(context.Background(), hsContacts, items(Write{RecordID: "51234", OwnerID: "7"}))
	be, ok := AsError(err)
	if !ok || be.Class.Class != ownership.RateLimited || be.RetryAfter <= 0 {
		t.Fatalf("Flush error = %v, want rate limited until the reset", err)
	}
	_, err = e.adapter.Flush(context.Background(), hsContacts, items(Write{RecordID: "51240", OwnerID: "7"}))
	if be, ok := AsError(err); !ok || be.Class.Class != ownership.RateLimited {
		t.Errorf("second Flush = %v, want held", err)
	}
	if n := e.server.callCount(); n != 1 {
		t.Errorf("%d calls, want 1: a held account is not called", n)
	}
	if len(e.notices) != 1 || e.notices[0].Kind != ratelimit.QuotaNearExhaustion {
		t.Errorf("notices %+v, want one near-exhaustion notice", e.notices)
	}
}

func TestHubSpotHeadersCorrectLimiter(t *testing.T) {
	e := newHSEnv(t)
	e.server.headers = func(call int) http.Header {
		return http.Header{
			"X-Hubspot-Ratelimit-Max":                   {"190"},
			"X-Hubspot-Ratelimit-Remaining":             {strconv.Itoa(1 - call)}, // spent by the first call
			"X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"},
			"X-Hubspot-Ratelimit-Daily":                 {"250000"},
			"X-Hubspot-Ratelimit-Daily-Remaining":       {"1000"}, // 0.4 % left
		}
	}
	if _, err := e.adapter.Flush(context.Background(), hsContacts, items(Write{RecordID: "51234", OwnerID: "7"})); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	key := ratelimit.Key{Tenant: "acme", Provider: "hubspot"}
	if until := e.limiter.PausedUntil(key); until.IsZero() {
		t.Error("the key is neither paused nor held after Remaining 0 and a near-exhausted daily quota")
	}
	if len(e.notices) != 1 || e.notices[0].Remaining != 1000 || e.notices[0].Limit != 250000 {
		t.Errorf("notices %+v, want one with 1000 of 250000 left", e.notices)
	}
}

func TestHubSpotWholeRequestErrors(t *testing.T) {
	e := newHSEnv(t)
	e.server.script = append(e.server.script, answer(http.StatusBadGateway, `{"status":"error","message":"bad gateway"}`))
	if res, err := e.adapter.Flush(context.Background(), hsContacts, items(Write{RecordID: "51234", OwnerID: "7"})); err != nil || res[0].Err != nil {
		t.Fatalf("Flush after one 502 = %v, %+v; want success", err, res)
	}
	e.server.script = append(e.server.script, answer(http.StatusBadRequest,
		`{"status":"error","category":"VALIDATION_ERROR","message":"Invalid input JSON"}`))
	_, err := e.adapter.Flush(context.Background(), hsContacts, items(Write{RecordID: "51234", OwnerID: "7"}))
	if be, ok := AsError(err); !ok || be.Class.Class != ownership.Permanent || be.HTTPStatus != 400 || be.Code != "VALIDATION_ERROR" {
		t.Errorf("Flush after a 400 = %#v, want a permanent VALIDATION_ERROR", err)
	}
	_, err = e.adapter.Flush(context.Background(), BatchKey{Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Lead}, items(Write{RecordID: "1"}))
	if be, ok := AsError(err); !ok || be.Class.Class != ownership.Permanent {
		t.Errorf("Flush of leads = %v, want a permanent error", err)
	}
}

func TestTraceIDsAreDistinct(t *testing.T) {
	got := traceIDs(items(Write{RecordID: "1", TraceID: "ev"}, Write{RecordID: "2", TraceID: "ev"}, Write{RecordID: "3"}))
	if diff := cmp.Diff([]string{"ev", "ev#1", "3"}, got); diff != "" {
		t.Errorf("traceIDs (-want +got):\n%s", diff)
	}
}
