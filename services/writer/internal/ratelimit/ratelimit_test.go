package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var (
	sf = Key{Tenant: "acme", Provider: "salesforce"}
	hs = Key{Tenant: "acme", Provider: "hubspot"}
)

func newTest(t0 time.Time) (*Limiter, *clock) {
	c := &clock{t: t0}
	l := New(Config{
		Limits: func(k Key) Limits {
			if k.Provider == "salesforce" {
				return Limits{Rate: 25, Burst: 5}
			}
			return Limits{Rate: 18, Burst: 10}
		},
		QuotaThreshold: 0.05,
		Recheck:        10 * time.Minute,
		MaxWait:        time.Minute,
		Location:       func(Key) *time.Location { return time.FixedZone("EST", -5*3600) },
		Now:            c.Now,
	})
	return l, c
}

func reserve(t *testing.T, l *Limiter, k Key) time.Duration {
	t.Helper()
	d, err := l.Reserve(k)
	if err != nil {
		t.Fatalf("Reserve(%s): %v", k, err)
	}
	return d
}

func TestTokenBucket(t *testing.T) {
	l, c := newTest(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	for i := 0; i < 5; i++ {
		if d := reserve(t, l, sf); d != 0 {
			t.Fatalf("burst call %d waits %s, want 0", i, d)
		}
	}
	// The sixth call waits one token at 25/s; the seventh two.
	if d := reserve(t, l, sf); d != 40*time.Millisecond {
		t.Errorf("sixth call waits %s, want 40ms", d)
	}
	if d := reserve(t, l, sf); d != 80*time.Millisecond {
		t.Errorf("seventh call waits %s, want 80ms", d)
	}
	// Other keys are independent.
	if d := reserve(t, l, hs); d != 0 {
		t.Errorf("hubspot waits %s, want 0", d)
	}
	// After a second the bucket is full again, never more than the burst.
	c.Add(10 * time.Second)
	for i := 0; i < 5; i++ {
		reserve(t, l, sf)
	}
	if d := reserve(t, l, sf); d != 40*time.Millisecond {
		t.Errorf("after refill, sixth call waits %s, want 40ms", d)
	}
}

func TestBacklogBeyondMaxWaitIsHeld(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := New(Config{Limits: func(Key) Limits { return Limits{Rate: 1, Burst: 1} }, MaxWait: 2 * time.Second, Now: c.Now})
	reserve(t, l, hs)
	reserve(t, l, hs) // 1 s
	reserve(t, l, hs) // 2 s
	_, err := l.Reserve(hs)
	var held *HeldError
	if !errors.As(err, &held) || !held.Until.Equal(c.Now().Add(3*time.Second)) {
		t.Fatalf("fourth Reserve = %v, want held until +3s", err)
	}
	// Nothing was taken by the refused call.
	c.Add(3 * time.Second)
	if d := reserve(t, l, hs); d != 0 {
		t.Errorf("after 3 s the next call waits %s, want 0", d)
	}
}

func TestPauseIsPerKey(t *testing.T) {
	l, c := newTest(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	now := c.Now()
	l.Pause(hs, now.Add(10*time.Second))
	l.Pause(hs, now.Add(time.Second)) // shorter: ignored
	if d := reserve(t, l, hs); d != 10*time.Second {
		t.Errorf("paused key waits %s, want 10s", d)
	}
	if d := reserve(t, l, sf); d != 0 {
		t.Errorf("another key waits %s, want 0", d)
	}
	if got := l.PausedUntil(hs); !got.Equal(now.Add(10 * time.Second)) {
		t.Errorf("PausedUntil = %s, want +10s", got)
	}
	l.Pause(hs, now.Add(2*time.Minute))
	var held *HeldError
	if _, err := l.Reserve(hs); !errors.As(err, &held) || held.Reason != "paused after a rate-limit answer" {
		t.Errorf("Reserve during a long pause = %v, want a HeldError for the pause", err)
	}
	c.Add(2 * time.Minute)
	if got := l.PausedUntil(hs); !got.IsZero() {
		t.Errorf("PausedUntil after the pause = %s, want zero", got)
	}
}

func hubspotHeaders(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestHubSpotWindowCorrection(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	// Configured too fast (50/s, burst 200) for an account that allows 100 per 10 s.
	l := New(Config{Limits: func(Key) Limits { return Limits{Rate: 50, Burst: 200} }, Now: c.Now})
	n := l.ObserveHubSpot(hs, hubspotHeaders("X-HubSpot-RateLimit-Max", "100", "X-HubSpot-RateLimit-Remaining", "95",
		"X-HubSpot-RateLimit-Interval-Milliseconds", "10000"))
	if n != nil {
		t.Errorf("notice %+v without daily headers, want none", n)
	}
	// Burst is cut to 10 and the rate to (100-10)/10 s = 9/s.
	for i := 0; i < 10; i++ {
		if d := reserve(t, l, hs); d != 0 {
			t.Fatalf("call %d waits %s, want 0", i, d)
		}
	}
	if d := reserve(t, l, hs); d != time.Second/9 {
		t.Errorf("eleventh call waits %s, want %s", d, time.Second/9)
	}
	// An exhausted window leaves no token: the next call waits one token at 9/s.
	c.Add(time.Hour)
	l.ObserveHubSpot(hs, hubspotHeaders("X-HubSpot-RateLimit-Max", "100", "X-HubSpot-RateLimit-Remaining", "0",
		"X-HubSpot-RateLimit-Interval-Milliseconds", "10000"))
	if d := reserve(t, l, hs); d != time.Second/9 {
		t.Errorf("after Remaining 0 the next call waits %s, want %s", d, time.Second/9)
	}
}

// After a period of low limits the bucket goes back to the configured rate and burst once the
// headers allow it again, and never above them (issue 14 item 3: it stayed at one call per 2.5 s
// until a restart).
func TestHubSpotLimiterRecoversTowardTheConfiguredRate(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	configured := ForWindow(190, 10*time.Second, 5) // 18.5/s, burst 5
	l := New(Config{Limits: func(Key) Limits { return configured }, Now: c.Now})
	window := func(max, remaining string) http.Header {
		return hubspotHeaders("X-HubSpot-RateLimit-Max", max, "X-HubSpot-RateLimit-Remaining", remaining,
			"X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
	}
	reserve(t, l, hs)
	l.ObserveHubSpot(hs, window("5", "4"))
	low := Limits{Rate: 0.4, Burst: 1} // (5 − 1) / 10 s: one call per 2.5 s
	if diff := cmp.Diff(low, l.Limits(hs)); diff != "" {
		t.Fatalf("limits under a 5-per-10 s window (-want +got):\n%s", diff)
	}
	c.Add(time.Minute)
	if d := reserve(t, l, hs); d != 0 {
		t.Fatalf("first call after a minute waits %s", d)
	}
	if d := reserve(t, l, hs); d != 2500*time.Millisecond {
		t.Fatalf("second call at the low rate waits %s, want 2.5s", d)
	}

	// The account's window is back to 190: the bucket recovers to what is configured.
	c.Add(time.Minute)
	reserve(t, l, hs)
	l.ObserveHubSpot(hs, window("190", "189"))
	if diff := cmp.Diff(configured, l.Limits(hs)); diff != "" {
		t.Errorf("limits after the window grew again (-want +got):\n%s", diff)
	}
	c.Add(time.Minute)
	for i := range configured.Burst {
		if d := reserve(t, l, hs); d != 0 {
			t.Fatalf("call %d of the recovered burst waits %s, want 0", i, d)
		}
	}
	if d, want := reserve(t, l, hs), time.Duration(float64(time.Second)/configured.Rate); (d - want).Abs() > time.Microsecond {
		t.Errorf("call after the recovered burst waits %s, want %s", d, want)
	}

	// A larger window than configured never raises the bucket above the configuration.
	l.ObserveHubSpot(hs, window("1000", "999"))
	if diff := cmp.Diff(configured, l.Limits(hs)); diff != "" {
		t.Errorf("limits under a larger window than configured (-want +got):\n%s", diff)
	}
}

func TestHubSpotDailyQuota(t *testing.T) {
	// 20:00 UTC is 15:00 in the account's zone (UTC-5): the reset is at 05:00 UTC the next day.
	l, c := newTest(time.Date(2026, 1, 1, 20, 0, 0, 0, time.UTC))
	reset := time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC)
	daily := func(remaining string) http.Header {
		return hubspotHeaders("X-HubSpot-RateLimit-Daily", "250000", "X-HubSpot-RateLimit-Daily-Remaining", remaining)
	}
	if n := l.ObserveHubSpot(hs, daily("20000")); n != nil {
		t.Fatalf("plenty left: notice %+v, want none", n)
	}
	n := l.ObserveHubSpot(hs, daily("12000")) // 4.8 % left, under 5 %
	want := &Notice{Kind: QuotaNearExhaustion, Key: hs, Used: 238000, Limit: 250000, Remaining: 12000, Until: reset}
	if diff := cmp.Diff(want, n, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Fatalf("notice (-want +got):\n%s", diff)
	}
	if n := l.ObserveHubSpot(hs, daily("11000")); n != nil {
		t.Errorf("second reading in the episode: notice %+v, want none (reported once)", n)
	}
	var held *HeldError
	if _, err := l.Reserve(hs); !errors.As(err, &held) || !held.Until.Equal(reset) {
		t.Fatalf("Reserve while held = %v, want held until %s", err, reset)
	}
	if d := reserve(t, l, sf); d != 0 {
		t.Errorf("salesforce of the same tenant waits %s, want 0", d)
	}
	c.Add(reset.Sub(c.Now()))
	if d := reserve(t, l, hs); d != 0 {
		t.Errorf("after the reset the call waits %s, want 0", d)
	}
	if n := l.ObserveHubSpot(hs, daily("249999")); n == nil || n.Kind != QuotaResumed {
		t.Errorf("after the reset: notice %+v, want QuotaResumed", n)
	}
}

func TestSalesforceRollingQuota(t *testing.T) {
	l, c := newTest(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	info := func(v string) http.Header { return http.Header{"Sforce-Limit-Info": {v}} }
	if n := l.ObserveSalesforce(sf, info("api-usage=10018/100000")); n != nil {
		t.Fatalf("plenty left: notice %+v", n)
	}
	n := l.ObserveSalesforce(sf, info("api-usage=96000/100000"))
	if n == nil || n.Kind != QuotaNearExhaustion || n.Remaining != 4000 || !n.Until.Equal(c.Now().Add(10*time.Minute)) {
		t.Fatalf("notice %+v, want near exhaustion with 4000 left until +10m", n)
	}
	if _, err := l.Reserve(sf); err == nil {
		t.Fatal("Reserve while held succeeded")
	}
	// After the re-check interval a probe goes out; still low: held again, not reported again.
	c.Add(10 * time.Minute)
	reserve(t, l, sf)
	if n := l.ObserveSalesforce(sf, info("api-usage=96500/100000")); n != nil {
		t.Errorf("still low: notice %+v, want none", n)
	}
	if got := l.PausedUntil(sf); !got.Equal(c.Now().Add(10 * time.Minute)) {
		t.Errorf("held until %s, want +10m", got)
	}
	c.Add(10 * time.Minute)
	reserve(t, l, sf)
	if n := l.ObserveSalesforce(sf, info("api-usage=80000/100000")); n == nil || n.Kind != QuotaResumed {
		t.Errorf("usage dropped: notice %+v, want QuotaResumed", n)
	}
	if d := reserve(t, l, sf); d != 0 {
		t.Errorf("after resuming the call waits %s", d)
	}
}

func TestExhaustedDaily(t *testing.T) {
	l, c := newTest(time.Date(2026, 1, 1, 20, 0, 0, 0, time.UTC))
	n := l.ExhaustedDaily(hs)
	if n == nil || n.Kind != QuotaNearExhaustion || !n.Until.Equal(time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC)) {
		t.Fatalf("notice %+v, want near exhaustion until the account's midnight", n)
	}
	if n := l.ExhaustedDaily(hs); n != nil {
		t.Errorf("second 429 DAILY: notice %+v, want none", n)
	}
	if n := l.ExhaustedDaily(sf); n == nil || !n.Until.Equal(c.Now().Add(10*time.Minute)) {
		t.Errorf("salesforce: notice %+v, want held for the re-check interval", n)
	}
}

func TestWait(t *testing.T) {
	l := New(Config{Limits: func(Key) Limits { return Limits{Rate: 100, Burst: 1} }, MaxWait: time.Second})
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 4; i++ {
		if err := l.Wait(ctx, hs); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Errorf("4 calls at 100/s with burst 1 took %s, want ≥ 30ms", el)
	}
	l.Pause(hs, time.Now().Add(time.Hour))
	var held *HeldError
	if err := l.Wait(ctx, hs); !errors.As(err, &held) {
		t.Errorf("Wait on a paused key = %v, want *HeldError", err)
	}
	l.Pause(sf, time.Now().Add(500*time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := l.Wait(cctx, sf); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with a short context = %v, want the deadline", err)
	}
}

func TestParseSforceLimitInfo(t *testing.T) {
	tests := []struct {
		in          string
		used, limit int64
		ok          bool
	}{
		{"api-usage=10018/100000", 10018, 100000, true},
		{"per-app-api-usage=17/250(appName=sample-app); api-usage=25/5000", 25, 5000, true},
		{" api-usage = 1 / 2 ;api-bursts=3/4", 1, 2, true},
		{"api-bursts=3/4", 0, 0, false},
		{"api-usage=x/5000", 0, 0, false},
		{"api-usage=5/0", 0, 0, false},
		{"api-usage=5", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		u, l, ok := ParseSforceLimitInfo(tt.in)
		if u != tt.used || l != tt.limit || ok != tt.ok {
			t.Errorf("ParseSforceLimitInfo(%q) = %d, %d, %v; want %d, %d, %v", tt.in, u, l, ok, tt.used, tt.limit, tt.ok)
		}
	}
}

func FuzzParseSforceLimitInfo(f *testing.F) {
	for _, s := range []string{"api-usage=10018/100000", "per-app-api-usage=17/250(appName=sample-app); api-usage=25/5000", "api-usage=/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		used, limit, ok := ParseSforceLimitInfo(s)
		if ok && (used < 0 || limit <= 0) {
			t.Fatalf("ParseSforceLimitInfo(%q) = %d, %d, true: impossible reading", s, used, limit)
		}
	})
}

func TestForWindow(t *testing.T) {
	tests := []struct {
		max    int
		window time.Duration
		burst  int
		want   Limits
	}{
		{25, time.Second, 1, Limits{Rate: 24, Burst: 1}},
		{190, 10 * time.Second, 5, Limits{Rate: 18.5, Burst: 5}},
		{100, 10 * time.Second, 0, Limits{Rate: 9.9, Burst: 1}},
		{10, time.Second, 50, Limits{Rate: 8, Burst: 2}},
	}
	for _, tt := range tests {
		if got := ForWindow(tt.max, tt.window, tt.burst); got != tt.want {
			t.Errorf("ForWindow(%d, %s, %d) = %+v, want %+v", tt.max, tt.window, tt.burst, got, tt.want)
		}
	}
}
