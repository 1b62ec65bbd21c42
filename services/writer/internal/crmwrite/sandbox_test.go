package crmwrite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/crmsim/hssim"
	"github.com/ownersync/ownersync/libs/crmsim/sfsim"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
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
	f := &Finder{
		Salesforce: func(context.Context, string) (SalesforceFinderAPI, error) { return env.client, nil },
		HubSpot:    func(context.Context, string) (HubSpotFinderAPI, error) { return hsClient, nil },
	}
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
