package crmwrite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

const (
	sfAda     = "0055g00000AsDfGAAV"
	sfOld     = "0055g00000HjKlMAAV"
	sfQueue   = "00G5g000003LkJhEAK"
	sfC1      = "0035g00000QwErTAAV"
	sfC2      = "0035g00000QwErUAAV"
	sfC3      = "0035g00000QwErVAAV"
	sfDeleted = "0035g00000QwErWAAV"
)

// sfEnv is a sandbox org with users, a queue and contacts, and a real client for it.
type sfEnv struct {
	org     *sfsim.Org
	client  *salesforce.Client
	limiter *ratelimit.Limiter
	mu      sync.Mutex
	notices []ratelimit.Notice
}

func newSFEnv(t *testing.T, orgCfg sfsim.Config) *sfEnv {
	t.Helper()
	org, err := sfsim.New(orgCfg)
	if err != nil {
		t.Fatal(err)
	}
	inactive := false
	err = org.Load(sfsim.Seed{
		Users: []sfsim.SeedUser{
			{ID: sfAda, Username: "ada@acme.test", Email: "ada@example.com", LastName: "Lovelace"},
			{ID: sfOld, Username: "old@acme.test", Email: "old@example.com", LastName: "Old", IsActive: &inactive},
		},
		Queues: []sfsim.Queue{{ID: sfQueue, Name: "Lead queue", SobjectTypes: []string{"Lead"}}},
		Contacts: []sfsim.SeedRecord{
			{ID: sfC1, Email: "c1@example.org", LastName: "One", Owner: sfAda},
			{ID: sfC2, Email: "c2@example.org", LastName: "Two", Owner: sfAda},
			{ID: sfC3, Email: "c3@example.org", LastName: "Three", Owner: sfAda},
			{ID: sfDeleted, Email: "gone@example.org", LastName: "Gone", Owner: sfAda, Deleted: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	url, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	return &sfEnv{org: org, client: mustSFClient(t, url), limiter: ratelimit.New(ratelimit.Config{
		Limits:  func(ratelimit.Key) ratelimit.Limits { return ratelimit.Limits{Rate: 1000, Burst: 100} },
		MaxWait: time.Second,
		// 2 % of the daily quota in reserve.
		QuotaThreshold: 0.02,
		Recheck:        time.Hour,
	})}
}

func newSFClient(url string) (*salesforce.Client, error) {
	return salesforce.New(salesforce.Config{InstanceURL: url, APIVersion: "62.0",
		ClientCredentials: &salesforce.ClientCredentials{ClientID: "writer", ClientSecret: "secret"}, Timeout: 5 * time.Second})
}

func mustSFClient(t *testing.T, url string) *salesforce.Client {
	t.Helper()
	client, err := newSFClient(url)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func (e *sfEnv) adapter(cfg Config) *Salesforce {
	cfg.Limiter = e.limiter
	cfg.OnNotice = func(n ratelimit.Notice) { e.mu.Lock(); e.notices = append(e.notices, n); e.mu.Unlock() }
	cfg.Retry.InitialInterval = 10 * time.Millisecond
	if cfg.RecordRetryWait == 0 {
		cfg.RecordRetryWait = 5 * time.Millisecond
	}
	return NewSalesforce(cfg, func(_ context.Context, tenant string) (SalesforceAPI, error) {
		if tenant != "acme" {
			return nil, errors.New("unknown tenant")
		}
		return e.client, nil
	})
}

func (e *sfEnv) collectionCalls() int {
	return len(e.org.Log().Matching("PATCH", "/services/data/v62.0/composite/sobjects"))
}

func (e *sfEnv) owner(t *testing.T, id string) string {
	t.Helper()
	r, ok := e.org.Record(id)
	if !ok {
		t.Fatalf("record %s not in the org", id)
	}
	return r.OwnerID
}

var contacts = BatchKey{Tenant: "acme", Provider: provider.Salesforce, RecordType: ownership.Contact}

func items(ws ...Write) []batcher.Item[Write] {
	out := make([]batcher.Item[Write], len(ws))
	for i, w := range ws {
		out[i] = batcher.Item[Write]{RecordID: w.RecordID, Value: w}
	}
	return out
}

// outcome is a comparable summary of a result.
type outcome struct {
	Written    Written
	Code       string
	Class      ownership.ErrorClass
	Refresh    bool
	HasRecord  bool
	Superseded bool
}

func summarize(rs []batcher.Result[Written]) []outcome {
	out := make([]outcome, len(rs))
	for i, r := range rs {
		o := outcome{Written: r.Value, Superseded: r.Superseded}
		if e, ok := AsError(r.Err); ok {
			o.Code, o.Class, o.Refresh, o.HasRecord = e.Code, e.Class.Class, e.Class.RefreshUser, e.RecordID != ""
		} else if r.Err != nil {
			o.Code = "not an *Error: " + r.Err.Error()
		}
		out[i] = o
	}
	return out
}

func TestSalesforceFlushPerRecordResults(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{})
	s := e.adapter(Config{})
	res, err := s.Flush(context.Background(), contacts, items(
		Write{RecordID: sfC1, OwnerID: sfOld},      // inactive user
		Write{RecordID: sfC2, OwnerID: sfQueue},    // a queue cannot own a contact
		Write{RecordID: sfDeleted, OwnerID: sfAda}, // in the recycle bin
		Write{RecordID: sfC3, OwnerID: sfOld[:15]}, // 15-character form of the inactive user
	))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want := []outcome{
		{Code: "INACTIVE_OWNER_OR_USER", Class: ownership.Permanent, Refresh: true, HasRecord: true},
		{Code: "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD", Class: ownership.Permanent, HasRecord: true},
		{Code: "ENTITY_IS_DELETED", Class: ownership.Permanent, HasRecord: true},
		{Code: "INACTIVE_OWNER_OR_USER", Class: ownership.Permanent, Refresh: true, HasRecord: true},
	}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	res, err = s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}, Write{RecordID: sfC2, OwnerID: sfAda}))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want = []outcome{{Written: Written{RecordID: sfC1, OwnerID: sfAda}}, {Written: Written{RecordID: sfC2, OwnerID: sfAda}}}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := e.collectionCalls(); got != 2 {
		t.Errorf("%d Collections calls, want one per flush (2)", got)
	}
	for _, id := range []string{sfC1, sfC2, sfC3} {
		if got := e.owner(t, id); got != sfAda {
			t.Errorf("owner of %s = %s, want %s", id, got, sfAda)
		}
	}
}

func TestSalesforceRetriesLockedRecords(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{})
	s := e.adapter(Config{})
	// C2 is locked once: sent again alone, it succeeds within the same flush.
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: sfC2, Code: "UNABLE_TO_LOCK_ROW", Count: 1})
	res, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}, Write{RecordID: sfC2, OwnerID: sfAda}))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want := []outcome{{Written: Written{RecordID: sfC1, OwnerID: sfAda}}, {Written: Written{RecordID: sfC2, OwnerID: sfAda}}}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := e.collectionCalls(); got != 2 {
		t.Errorf("%d Collections calls, want 2 (the batch, then the locked record)", got)
	}

	// C3 stays locked: after 1+RecordRetries calls its transient error is returned.
	e.org.Log().Reset()
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: sfC3, Code: "UNABLE_TO_LOCK_ROW"})
	res, err = s.Flush(context.Background(), contacts, items(Write{RecordID: sfC3, OwnerID: sfAda}))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want = []outcome{{Code: "UNABLE_TO_LOCK_ROW", Class: ownership.Transient, HasRecord: true}}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := e.collectionCalls(); got != 3 {
		t.Errorf("%d Collections calls, want 3", got)
	}
}

func TestSalesforceWholeRequestRetried(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{})
	s := e.adapter(Config{})
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionStatus, Status: 503, Path: "/services/data/v62.0/composite/sobjects", Count: 1})
	res, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}))
	if err != nil {
		t.Fatalf("Flush after one 503: %v", err)
	}
	if res[0].Err != nil {
		t.Errorf("result %+v, want success", res[0])
	}
	if got := e.collectionCalls(); got != 2 {
		t.Errorf("%d Collections calls, want 2", got)
	}

	// Failing every time: a transient error for the whole batch.
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionStatus, Status: 500, Path: "/services/data/v62.0/composite/sobjects"})
	_, err = s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}))
	if be, ok := AsError(err); !ok || be.Class.Class != ownership.Transient || be.HTTPStatus != 500 || be.RecordID != "" {
		t.Errorf("Flush error = %#v, want a transient whole-batch error with status 500", err)
	}
	if _, err := s.Flush(context.Background(), BatchKey{Tenant: "nobody", Provider: provider.Salesforce}, items(Write{RecordID: sfC1})); err == nil {
		t.Error("Flush for a tenant without a client succeeded")
	}
}

func TestSalesforceRequestLimitPausesOnlyThatKey(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{})
	s := e.adapter(Config{RateLimitPause: time.Hour})
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRateLimit, Path: "/services/data/v62.0/composite/sobjects", Count: 1})
	start := time.Now()
	_, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}))
	be, ok := AsError(err)
	if !ok || be.Class.Class != ownership.RateLimited || be.RetryAfter < 59*time.Minute {
		t.Fatalf("Flush error = %v, want rate limited for about an hour", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Flush took %s: a long pause must be handed back, not waited out", el)
	}
	if got := e.collectionCalls(); got != 1 {
		t.Errorf("%d Collections calls, want 1", got)
	}
	if until := e.limiter.PausedUntil(ratelimit.Key{Tenant: "acme", Provider: "salesforce"}); until.IsZero() {
		t.Error("acme/salesforce is not paused")
	}
	if until := e.limiter.PausedUntil(ratelimit.Key{Tenant: "acme", Provider: "hubspot"}); !until.IsZero() {
		t.Error("acme/hubspot is paused too")
	}
}

func TestSalesforceDailyQuotaHolds(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{DailyLimit: 1000})
	s := e.adapter(Config{})
	e.org.SetDailyUsage(985) // 15 left, under 2 %
	if _, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda})); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	e.mu.Lock()
	notices := append([]ratelimit.Notice(nil), e.notices...)
	e.mu.Unlock()
	if len(notices) != 1 || notices[0].Kind != ratelimit.QuotaNearExhaustion || notices[0].Limit != 1000 {
		t.Fatalf("notices %+v, want one near-exhaustion notice", notices)
	}
	calls := e.collectionCalls()
	_, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC2, OwnerID: sfAda}))
	if be, ok := AsError(err); !ok || be.Class.Class != ownership.RateLimited || be.RetryAfter < 59*time.Minute {
		t.Errorf("Flush while held = %v, want rate limited until the re-check", err)
	}
	if got := e.collectionCalls(); got != calls {
		t.Errorf("a held key made %d more calls", got-calls)
	}
}

// TestSalesforceRequestLimitResumesWithinOneCallInterval: a REQUEST_LIMIT_EXCEEDED whose
// Sforce-Limit-Info shows daily quota left is a per-second or concurrency limit; the key pauses one
// call interval of its pace (1 ms at 1,000 calls/s, floored at 10 ms), not a fixed second, and the
// batch is written on the retry (issue 18: a 429 costs what it must).
func TestSalesforceRequestLimitResumesWithinOneCallInterval(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{})
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRateLimit, Path: "/services/data/v62.0/composite/sobjects", Count: 1})
	var pausedFor []time.Duration
	cfg := Config{}
	s := e.adapter(cfg)
	s.cfg.Retry.OnRetry = func(error, time.Duration) {
		if until := e.limiter.PausedUntil(ratelimit.Key{Tenant: "acme", Provider: "salesforce"}); !until.IsZero() {
			pausedFor = append(pausedFor, time.Until(until))
		}
	}
	res, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Flush = %v, %+v; want written on the retry", err, res)
	}
	if len(pausedFor) > 1 || (len(pausedFor) == 1 && pausedFor[0] > 10*time.Millisecond) {
		t.Errorf("the 403 paused the key for %v, want at most one call interval (10 ms floor), not a second", pausedFor)
	}
	if got := e.collectionCalls(); got != 2 {
		t.Errorf("%d Collections calls, want 2 (refused, then written)", got)
	}
}

// TestSalesforceRequestLimitRetriesAfterThePauseNotABackoff: the call REQUEST_LIMIT_EXCEEDED
// refused goes again as soon as the key's pause (one call interval) ends, not after the retry
// policy's backoff as well (200 ms ± 50 % by default: the burst benchmark with one refusal lost
// 0.3-1 s and fell to 0.80-0.89 of the bound; issue 18). The policy's backoff is never consulted.
func TestSalesforceRequestLimitRetriesAfterThePauseNotABackoff(t *testing.T) {
	e := newSFEnv(t, sfsim.Config{})
	e.org.Faults().Add(crmsim.Rule{Action: crmsim.ActionRateLimit, Path: "/services/data/v62.0/composite/sobjects", Count: 1})
	var backoffs []time.Duration
	s := e.adapter(Config{})
	s.cfg.Retry.OnRetry = func(_ error, wait time.Duration) { backoffs = append(backoffs, wait) }
	res, err := s.Flush(context.Background(), contacts, items(Write{RecordID: sfC1, OwnerID: sfAda}))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Flush = %v, %+v; want written on the second call", err, res)
	}
	if len(backoffs) != 0 {
		t.Errorf("the refused call waited the retry backoff %v besides the key's pause", backoffs)
	}
	if got := e.collectionCalls(); got != 2 {
		t.Errorf("%d Collections calls, want 2 (refused, then written)", got)
	}
}
