package crmwrite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// newHSSandbox starts a HubSpot sandbox account with an active and an archived owner and two
// contacts, and returns it with a real client.
func newHSSandbox(t *testing.T, cfg hssim.Config) (*hssim.Account, *hubspot.Client) {
	t.Helper()
	cfg.AccessTokens = []string{"pat-test"}
	acct, err := hssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = acct.Load(hssim.Seed{
		Owners: []hssim.Owner{
			{ID: "7001", Email: "ada@example.com", Type: "PERSON", FirstName: "Ada", UserID: 1},
			{ID: "7002", Email: "old@example.com", Type: "PERSON", FirstName: "Old", UserID: 2, Archived: true},
		},
		Contacts: []hssim.SeedContact{{ID: "101", Email: "a@example.org"}, {ID: "102", Email: "b@example.org"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	url, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	client, err := hubspot.New(hubspot.Config{BaseURL: url, AccessToken: "pat-test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return acct, client
}

func contactOwner(t *testing.T, acct *hssim.Account, id string) string {
	t.Helper()
	c, ok := acct.Contact(id)
	if !ok {
		t.Fatalf("contact %s not in the sandbox", id)
	}
	return c.Properties[hssim.OwnerProperty]
}

func TestHubSpotAgainstSandbox(t *testing.T) {
	acct, client := newHSSandbox(t, hssim.Config{BurstLimit: 2, BurstInterval: 10 * time.Second})
	limiter := ratelimit.New(ratelimit.Config{
		Limits:  func(ratelimit.Key) ratelimit.Limits { return ratelimit.Limits{Rate: 100, Burst: 10} },
		MaxWait: 500 * time.Millisecond,
	})
	// The account's zone is configured, so no call goes to the account info API and the window's
	// two calls are the flushes'.
	h := NewHubSpot(Config{Limiter: limiter, Retry: retryFast, HubSpotZone: func(context.Context, string) (*time.Location, bool) { return time.UTC, true }},
		func(context.Context, string) (HubSpotAPI, error) { return client, nil })
	h.cfg.RecordRetryWait = 5 * time.Millisecond
	ctx := context.Background()
	res, err := h.Flush(ctx, hsContacts, items(
		Write{RecordID: "101", OwnerID: "7001"},
		Write{RecordID: "102", OwnerID: "7002"}, // archived owner
		Write{RecordID: "999", OwnerID: "7001"}, // no such contact
	))
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	want := []outcome{
		{Written: Written{RecordID: "101", OwnerID: "7001"}},
		{Code: "INVALID_OWNER_ID", Class: ownership.Permanent, Refresh: true, HasRecord: true},
		{Code: "OBJECT_NOT_FOUND", Class: ownership.Permanent, HasRecord: true},
	}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := contactOwner(t, acct, "101"); got != "7001" {
		t.Errorf("owner of 101 = %q, want 7001", got)
	}
	if got := contactOwner(t, acct, "102"); got == "7002" {
		t.Error("the archived owner was written")
	}

	// The second call spends the 2-per-10 s window; the limiter, told so by the headers, holds
	// the third instead of provoking a 429.
	if _, err := h.Flush(ctx, hsContacts, items(Write{RecordID: "102", OwnerID: "7001"})); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	_, err = h.Flush(ctx, hsContacts, items(Write{RecordID: "101", OwnerID: ""}))
	if be, ok := AsError(err); !ok || be.Class.Class != ownership.RateLimited || be.RetryAfter <= 0 {
		t.Errorf("third Flush = %v, want held by the limiter", err)
	}
	if got := acct.Log().Counters().RateLimited; got != 0 {
		t.Errorf("%d answers were 429, want none", got)
	}
}

// The HubSpot adapter's limiter follows the sandbox's rolling window down and back up to the
// configured rate (issue 14 item 3: after a period of low limits it stayed at one call per 2.5 s).
func TestHubSpotLimiterRecoversOnSandbox(t *testing.T) {
	acct, client := newHSSandbox(t, hssim.Config{BurstLimit: 5, BurstInterval: 10 * time.Second})
	configured := ratelimit.ForWindow(190, 10*time.Second, 5)
	limiter := ratelimit.New(ratelimit.Config{Limits: func(ratelimit.Key) ratelimit.Limits { return configured }})
	h := NewHubSpot(Config{Limiter: limiter, Retry: retryFast}, func(context.Context, string) (HubSpotAPI, error) { return client, nil })
	key := ratelimit.Key{Tenant: hsContacts.Tenant, Provider: provider.HubSpot}
	ctx := context.Background()
	if _, err := h.Flush(ctx, hsContacts, items(Write{RecordID: "101", OwnerID: "7001"})); err != nil {
		t.Fatalf("Flush under the low window: %v", err)
	}
	if diff := cmp.Diff(ratelimit.Limits{Rate: 0.4, Burst: 1}, limiter.Limits(key)); diff != "" {
		t.Fatalf("limits under a 5-per-10 s window (-want +got):\n%s", diff)
	}
	acct.SetBurstLimit(190, 10*time.Second)
	if _, err := h.Flush(ctx, hsContacts, items(Write{RecordID: "102", OwnerID: "7001"})); err != nil {
		t.Fatalf("Flush after the window grew: %v", err)
	}
	if diff := cmp.Diff(configured, limiter.Limits(key)); diff != "" {
		t.Errorf("limits after the window grew back to 190 (-want +got):\n%s", diff)
	}
	if got := acct.Log().Counters().RateLimited; got != 0 {
		t.Errorf("%d answers were 429, want none", got)
	}
}

// HubSpot's daily limit resets at midnight in the account's time zone (issue 14 item 9): the
// adapter reads the zone from the account info API when it first uses a tenant's client (or takes
// the configured one), and a 429 DAILY holds the key until that midnight, not UTC's.
func TestHubSpotDailyResetAtAccountMidnight(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 10, 20, 0, 0, 0, time.UTC) // 05:00 on the 11th in Tokyo
	tokyoMidnight := time.Date(2026, 3, 12, 0, 0, 0, 0, tokyo)
	for _, tt := range []struct {
		name       string
		configured *time.Location // tenant.HSConfig.TimeZone; nil: read from the API
		want       time.Time
		apiReads   int
	}{
		{name: "read from the account info API", want: tokyoMidnight, apiReads: 1},
		{name: "configured", configured: tokyo, want: tokyoMidnight, apiReads: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			acct, client := newHSSandbox(t, hssim.Config{TimeZone: tokyo, Now: func() time.Time { return now }})
			limiter := ratelimit.New(ratelimit.Config{
				Limits: func(ratelimit.Key) ratelimit.Limits { return ratelimit.ForWindow(190, 10*time.Second, 5) },
				Now:    func() time.Time { return now },
			})
			var notices []ratelimit.Notice
			cfg := Config{Limiter: limiter, Retry: retryFast, Now: func() time.Time { return now },
				OnNotice: func(n ratelimit.Notice) { notices = append(notices, n) }}
			if tt.configured != nil {
				cfg.HubSpotZone = func(context.Context, string) (*time.Location, bool) { return tt.configured, true }
			}
			h := NewHubSpot(cfg, func(context.Context, string) (HubSpotAPI, error) { return client, nil })
			ctx := context.Background()
			if _, err := h.Flush(ctx, hsContacts, items(Write{RecordID: "101", OwnerID: "7001"})); err != nil {
				t.Fatalf("first Flush: %v", err)
			}
			acct.SetDailyLimit(1)
			acct.SetDailyUsage(1)
			if _, err := h.Flush(ctx, hsContacts, items(Write{RecordID: "102", OwnerID: "7001"})); err == nil {
				t.Fatal("Flush over the daily limit succeeded")
			}
			if len(notices) != 1 || notices[0].Kind != ratelimit.QuotaNearExhaustion || !notices[0].Until.Equal(tt.want) {
				t.Fatalf("notices %+v, want one near exhaustion until %s (midnight in Tokyo)", notices, tt.want.UTC())
			}
			if got := limiter.PausedUntil(ratelimit.Key{Tenant: "acme", Provider: "hubspot"}); !got.Equal(tt.want) {
				t.Errorf("held until %s, want %s", got.UTC(), tt.want.UTC())
			}
			if n := len(acct.Log().Matching("GET", "/account-info/v3/details")); n != tt.apiReads {
				t.Errorf("%d account info reads, want %d", n, tt.apiReads)
			}
		})
	}
}

// Record lookups by email are batched and paced like writes (issue 14 item 2: 300 changes naming
// only emails cost 300 HubSpot GET-by-email calls outside the limiter and drew 429s; Salesforce ran
// one SOQL query per record): 400 concurrent lookups cost two Salesforce queries with Email IN (…),
// 300 cost three HubSpot batch reads with idProperty=email, and a 429 on a lookup pauses the
// tenant's HubSpot key for writes too. (Idle and Linger are an hour, so that only full batches go
// and the counts do not depend on how fast the goroutines start.)
func TestLookupsAreBatchedAndRateLimited(t *testing.T) {
	const n = 400
	var sfSeed []sfsim.SeedRecord
	var hsSeed []hssim.SeedContact
	for i := range n {
		sfSeed = append(sfSeed, sfsim.SeedRecord{Email: fmt.Sprintf("contact%03d@example.org", i), LastName: "C", Owner: sfAda})
		hsSeed = append(hsSeed, hssim.SeedContact{ID: strconv.Itoa(1000 + i), Email: fmt.Sprintf("contact%03d@example.org", i)})
	}
	org, err := sfsim.New(sfsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(sfsim.Seed{Users: []sfsim.SeedUser{{ID: sfAda, Username: "ada@acme.test", Email: "ada@example.com", LastName: "Lovelace"}}, Contacts: sfSeed}); err != nil {
		t.Fatal(err)
	}
	sfURL, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	sfClient := mustSFClient(t, sfURL)
	acct, hsClient := newHSSandbox(t, hssim.Config{})
	for _, c := range hsSeed {
		if _, err := acct.CreateContact(hssim.Contact{ID: c.ID, Properties: map[string]string{"email": c.Email}}); err != nil {
			t.Fatal(err)
		}
	}
	limiter := ratelimit.New(ratelimit.Config{
		Limits:  func(ratelimit.Key) ratelimit.Limits { return ratelimit.ForWindow(190, 10*time.Second, 5) },
		MaxWait: 500 * time.Millisecond,
	})
	sf := NewSalesforce(Config{Limiter: limiter, Retry: retryFast}, func(context.Context, string) (SalesforceAPI, error) { return sfClient, nil })
	hs := NewHubSpot(Config{Limiter: limiter, Retry: retryFast, HubSpotZone: func(context.Context, string) (*time.Location, bool) { return time.UTC, true }},
		func(context.Context, string) (HubSpotAPI, error) { return hsClient, nil })
	f := NewFinder(sf, hs, FinderOptions{Idle: time.Hour, Linger: time.Hour})
	t.Cleanup(func() { f.Close(context.Background()) })
	ctx := context.Background()

	for p, n := range map[provider.Provider]int{provider.Salesforce: 400, provider.HubSpot: 300} {
		var wg sync.WaitGroup
		ids := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], _, errs[i] = f.FindRecord(ctx, "acme", p, ownership.Contact, fmt.Sprintf("Contact%03d@example.org", i))
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || ids[i] == "" {
				t.Fatalf("%s lookup %d: %q, %v", p, i, ids[i], errs[i])
			}
		}
		if p == provider.HubSpot && ids[7] != "1007" {
			t.Errorf("hubspot contact007 found as %s, want 1007", ids[7])
		}
	}
	queries := org.Log().Matching("GET", "/services/data/v62.0/query")
	if len(queries) != 2 {
		t.Errorf("%d salesforce queries for 400 lookups, want 2 (200 emails a query)", len(queries))
	}
	if reads := acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/read"); len(reads) != 3 {
		t.Errorf("%d hubspot batch reads for 300 lookups, want 3 (100 a call)", len(reads))
	}
	if gets := acct.Log().Matching("GET", "/crm/v3/objects/contacts/"); len(gets) != 0 {
		t.Errorf("%d hubspot single-contact reads, want none", len(gets))
	}

	// A 429 on a lookup pauses the tenant's HubSpot key: with a Retry-After beyond the limiter's
	// MaxWait the lookup and the next write are held (a shorter one is waited out in place).
	acct.Faults().Add(crmsim.Rule{Method: "POST", Path: "/crm/v3/objects/contacts/batch/read", Action: crmsim.ActionRateLimit, Count: 1, RetryAfter: 5 * time.Second})
	lone := NewFinder(sf, hs, FinderOptions{Idle: 5 * time.Millisecond})
	t.Cleanup(func() { lone.Close(context.Background()) })
	_, _, err = lone.FindRecord(ctx, "acme", provider.HubSpot, ownership.Contact, "contact001@example.org")
	if e, ok := AsError(err); !ok || e.Class.Class != ownership.RateLimited || e.RetryAfter <= 0 {
		t.Fatalf("lookup answered 429: %v, want a rate-limited error with a delay", err)
	}
	if until := limiter.PausedUntil(ratelimit.Key{Tenant: "acme", Provider: "hubspot"}); until.IsZero() {
		t.Error("the 429 did not pause the tenant's hubspot key")
	}
	_, err = hs.Flush(ctx, hsContacts, items(Write{RecordID: "1001", OwnerID: "7001"}))
	if e, ok := AsError(err); !ok || e.Class.Class != ownership.RateLimited {
		t.Errorf("write during the pause: %v, want held by the limiter", err)
	}
	if got := acct.Log().Counters().RateLimited; got != 1 {
		t.Errorf("%d answers were 429, want only the injected one", got)
	}
}

func TestFinderAgainstSandboxes(t *testing.T) {
	org, err := sfsim.New(sfsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = org.Load(sfsim.Seed{
		Users: []sfsim.SeedUser{{ID: sfAda, Username: "ada@acme.test", Email: "ada@example.com", LastName: "Lovelace"}},
		Contacts: []sfsim.SeedRecord{
			{ID: sfC1, Email: "one@example.org", LastName: "One", Owner: sfAda},
			{ID: sfC2, Email: "twice@example.org", LastName: "Two", Owner: sfAda},
			{ID: sfC3, Email: "twice@example.org", LastName: "Three", Owner: sfAda},
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
	env := &sfEnv{org: org}
	env.client = mustSFClient(t, url)
	_, hsClient := newHSSandbox(t, hssim.Config{})
	limiter := ratelimit.New(ratelimit.Config{Limits: func(ratelimit.Key) ratelimit.Limits { return ratelimit.Limits{Rate: 100, Burst: 10} }})
	f := NewFinder(
		NewSalesforce(Config{Limiter: limiter, Retry: retryFast}, func(context.Context, string) (SalesforceAPI, error) { return env.client, nil }),
		NewHubSpot(Config{Limiter: limiter, Retry: retryFast}, func(context.Context, string) (HubSpotAPI, error) { return hsClient, nil }),
		FinderOptions{Idle: 5 * time.Millisecond})
	t.Cleanup(func() { f.Close(context.Background()) })
	ctx := context.Background()
	tests := []struct {
		name  string
		p     provider.Provider
		email string
		id    string
		found bool
		err   error
	}{
		{"salesforce one", provider.Salesforce, "one@example.org", sfC1, true, nil},
		{"salesforce none", provider.Salesforce, "nobody@example.org", "", false, nil},
		{"salesforce several", provider.Salesforce, "twice@example.org", "", false, ErrAmbiguousEmail},
		{"hubspot one", provider.HubSpot, "b@example.org", "102", true, nil},
		{"hubspot none", provider.HubSpot, "nobody@example.org", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, found, err := f.FindRecord(ctx, "acme", tt.p, ownership.Contact, tt.email)
			if id != tt.id || found != tt.found || !errors.Is(err, tt.err) {
				t.Errorf("FindRecord = %q, %v, %v; want %q, %v, %v", id, found, err, tt.id, tt.found, tt.err)
			}
		})
	}
}

// TestHubSpot429WithShortRetryAfter: the sandbox answers one batch update with a 429 carrying
// Retry-After: 1 (issue 18, a 429 costs what it must). The writer pauses the tenant's HubSpot key
// until then, not for the 10 s window, waits that second in place and writes; the other tenant's
// key is not paused, and only the injected answer was a 429.
func TestHubSpot429WithShortRetryAfter(t *testing.T) {
	acct, client := newHSSandbox(t, hssim.Config{})
	acct.Faults().Add(crmsim.Rule{Method: "POST", Path: "/crm/v3/objects/contacts/batch/update", Action: crmsim.ActionRateLimit, Count: 1, RetryAfter: time.Second})
	limiter := ratelimit.New(ratelimit.Config{
		Limits:  func(ratelimit.Key) ratelimit.Limits { return ratelimit.ForWindow(190, 10*time.Second, 5) },
		MaxWait: 5 * time.Second,
	})
	var mu sync.Mutex
	var pausedFor []time.Duration
	var waits []time.Duration
	policy := retryFast
	policy.OnRetry = func(_ error, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		// The pause the 429 set, read before the retry waits it out.
		if until := limiter.PausedUntil(ratelimit.Key{Tenant: "acme", Provider: provider.HubSpot}); !until.IsZero() {
			pausedFor = append(pausedFor, time.Until(until))
		}
	}
	hs := NewHubSpot(Config{Limiter: limiter, Retry: policy, HubSpotZone: func(context.Context, string) (*time.Location, bool) { return time.UTC, true }},
		func(context.Context, string) (HubSpotAPI, error) { return client, nil })
	res, err := hs.Flush(context.Background(), hsContacts, items(Write{RecordID: "101", OwnerID: "7001"}))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Flush = %v, %+v; want written after the Retry-After", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 1 || waits[0] != time.Second {
		t.Errorf("retry waits %v, want one of exactly the 1 s Retry-After", waits)
	}
	if len(pausedFor) != 1 || pausedFor[0] > time.Second {
		t.Errorf("the 429 paused the key for %v, want at most the 1 s Retry-After (not the 10 s window)", pausedFor)
	}
	if until := limiter.PausedUntil(ratelimit.Key{Tenant: "other", Provider: provider.HubSpot}); !until.IsZero() {
		t.Error("another tenant's key is paused too")
	}
	if got := acct.Log().Counters().RateLimited; got != 1 {
		t.Errorf("%d answers were 429, want only the injected one", got)
	}
	if c, ok := acct.Contact("101"); !ok || c.Properties["hubspot_owner_id"] != "7001" {
		t.Errorf("contact 101 after the write: %+v (found %v)", c, ok)
	}
}
