package hubspot_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/retry"
)

func TestRateLimited429(t *testing.T) {
	tests := []struct {
		name           string
		body           string
		interval       string
		retryAfter     string
		wantPolicy     string
		wantDaily      bool
		wantTransient  bool
		wantRetryAfter time.Duration
	}{
		// The first of 190 calls in a 10 s rolling window leaves it after 10 s / 190, not 10 s (issue 18).
		{name: "ten-secondly rolling", body: "rate_limit_ten_secondly.json", interval: "10000", wantPolicy: "TEN_SECONDLY_ROLLING", wantTransient: true, wantRetryAfter: 10 * time.Second / 190},
		{name: "ten-secondly without interval header", body: "rate_limit_ten_secondly.json", wantPolicy: "TEN_SECONDLY_ROLLING", wantTransient: true, wantRetryAfter: 10 * time.Second / 190},
		{name: "ten-secondly with Retry-After", body: "rate_limit_ten_secondly.json", interval: "10000", retryAfter: "1", wantPolicy: "TEN_SECONDLY_ROLLING", wantTransient: true, wantRetryAfter: time.Second},
		{name: "daily", body: "rate_limit_daily.json", interval: "10000", wantPolicy: "DAILY", wantDaily: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t)
			a.limits = http.Header{"X-Hubspot-Ratelimit-Max": {"190"}, "X-Hubspot-Ratelimit-Remaining": {"0"}}
			if tt.interval != "" {
				a.limits.Set("X-Hubspot-Ratelimit-Interval-Milliseconds", tt.interval)
			}
			a.mux.HandleFunc("GET /crm/v3/owners", func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				writeJSON(w, 429, golden(t, tt.body))
			})
			var seen []hubspot.RateLimit
			c := a.client(t, func(cfg *hubspot.Config) { cfg.OnRateLimit = func(rl hubspot.RateLimit) { seen = append(seen, rl) } })
			err := c.ListOwners(context.Background(), false, func([]hubspot.Owner) error { return nil })
			var ae *hubspot.APIError
			if !errors.As(err, &ae) || ae.HTTPStatus != 429 || ae.PolicyName != tt.wantPolicy || ae.ErrorType != "RATE_LIMIT" || ae.CorrelationID == "" {
				t.Fatalf("ListOwners = %#v, want a 429 %s", err, tt.wantPolicy)
			}
			if !errors.Is(err, hubspot.ErrRateLimited) || errors.Is(err, hubspot.ErrDailyLimit) != tt.wantDaily {
				t.Errorf("Is(ErrRateLimited) = %v, Is(ErrDailyLimit) = %v", errors.Is(err, hubspot.ErrRateLimited), errors.Is(err, hubspot.ErrDailyLimit))
			}
			if hubspot.Transient(err) != tt.wantTransient || retry.RetryAfter(err) != tt.wantRetryAfter {
				t.Errorf("Transient = %v, RetryAfter = %v; want %v, %v", hubspot.Transient(err), retry.RetryAfter(err), tt.wantTransient, tt.wantRetryAfter)
			}
			if len(seen) != 1 || seen[0].Remaining != 0 || seen[0].Max != 190 || ae.RateLimit != seen[0] {
				t.Errorf("rate limits seen = %+v, in error %+v", seen, ae.RateLimit)
			}
		})
	}
}

func TestRateLimitHeadersOnEveryResponse(t *testing.T) {
	a := newAccount(t)
	serveOwners(t, a, makeOwners(250, false), nil)
	var seen []hubspot.RateLimit
	c := a.client(t, func(cfg *hubspot.Config) { cfg.OnRateLimit = func(rl hubspot.RateLimit) { seen = append(seen, rl) } })
	if err := c.ListOwners(context.Background(), false, func([]hubspot.Owner) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := hubspot.RateLimit{Max: 190, Remaining: 189, Interval: 10 * time.Second, Daily: 625000, DailyRemaining: 624000, HasDaily: true}
	if len(seen) != 3 {
		t.Fatalf("%d reports, want 3", len(seen))
	}
	for _, rl := range seen {
		if rl != want {
			t.Errorf("rate limit = %+v, want %+v", rl, want)
		}
	}
	if got, ok := c.RateLimitInfo(); !ok || got != want {
		t.Errorf("RateLimitInfo() = %+v, %v", got, ok)
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		name   string
		h      http.Header
		want   hubspot.RateLimit
		wantOK bool
	}{
		{name: "private app", h: http.Header{"X-Hubspot-Ratelimit-Max": {"100"}, "X-Hubspot-Ratelimit-Remaining": {"97"}, "X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"}, "X-Hubspot-Ratelimit-Daily": {"250000"}, "X-Hubspot-Ratelimit-Daily-Remaining": {"249990"}},
			want: hubspot.RateLimit{Max: 100, Remaining: 97, Interval: 10 * time.Second, Daily: 250000, DailyRemaining: 249990, HasDaily: true}, wantOK: true},
		{name: "oauth: no daily headers", h: http.Header{"X-Hubspot-Ratelimit-Max": {"110"}, "X-Hubspot-Ratelimit-Remaining": {"109"}, "X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"}},
			want: hubspot.RateLimit{Max: 110, Remaining: 109, Interval: 10 * time.Second}, wantOK: true},
		{name: "search api: none", h: http.Header{"Content-Type": {"application/json"}}},
		{name: "deprecated secondly only", h: http.Header{"X-Hubspot-Ratelimit-Secondly": {"10"}, "X-Hubspot-Ratelimit-Secondly-Remaining": {"9"}}},
		{name: "garbage ignored", h: http.Header{"X-Hubspot-Ratelimit-Max": {"lots"}, "X-Hubspot-Ratelimit-Remaining": {"-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := hubspot.ParseRateLimit(tt.h)
			if ok != tt.wantOK {
				t.Errorf("ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseRateLimit(f *testing.F) {
	f.Add("190", "189", "10000", "625000", "624000")
	f.Add("", "", "", "", "")
	f.Add("x", "-5", "1e3", " 1", "99999999999999999999")
	f.Fuzz(func(t *testing.T, max, rem, interval, daily, dailyRem string) {
		h := http.Header{}
		for k, v := range map[string]string{hubspot.HeaderMax: max, hubspot.HeaderRemaining: rem, hubspot.HeaderInterval: interval, hubspot.HeaderDaily: daily, hubspot.HeaderDailyRemaining: dailyRem} {
			h.Set(k, v)
		}
		rl, ok := hubspot.ParseRateLimit(h)
		if rl.Max < 0 || rl.Remaining < 0 || rl.Interval < 0 || rl.Daily < 0 || rl.DailyRemaining < 0 {
			t.Fatalf("negative %+v", rl)
		}
		if !ok && rl != (hubspot.RateLimit{}) {
			t.Fatalf("not ok but %+v", rl)
		}
	})
}

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		status         int
		retryAfter     string
		wantTransient  bool
		wantRetryAfter time.Duration
	}{
		{status: 400},
		{status: 401},
		{status: 403},
		{status: 404},
		{status: 414},
		{status: 423, wantTransient: true, wantRetryAfter: 2 * time.Second},
		{status: 423, retryAfter: "5", wantTransient: true, wantRetryAfter: 5 * time.Second},
		{status: 477, retryAfter: "3600", wantTransient: true, wantRetryAfter: time.Hour},
		{status: 500, wantTransient: true},
		{status: 502, wantTransient: true},
		{status: 503, retryAfter: "2", wantTransient: true, wantRetryAfter: 2 * time.Second},
		{status: 504, wantTransient: true},
		{status: 521, wantTransient: true},
		{status: 522},
		{status: 523, wantTransient: true},
		{status: 524, wantTransient: true},
		{status: 525},
		{status: 526},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status)+"/"+tt.retryAfter, func(t *testing.T) {
			a := newAccount(t)
			a.mux.HandleFunc("GET /crm/v3/owners/{id}", func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				writeJSON(w, tt.status, []byte(`{"status":"error","message":"m","correlationId":"c","category":"C"}`))
			})
			_, err := a.client(t).GetOwner(context.Background(), "1", false)
			var ae *hubspot.APIError
			if !errors.As(err, &ae) || ae.HTTPStatus != tt.status {
				t.Fatalf("GetOwner = %v", err)
			}
			if hubspot.Transient(err) != tt.wantTransient || ae.RetryAfter() != tt.wantRetryAfter {
				t.Errorf("Transient = %v, RetryAfter = %v; want %v, %v", hubspot.Transient(err), ae.RetryAfter(), tt.wantTransient, tt.wantRetryAfter)
			}
		})
	}
}

func TestTransientRetriedByCallerPolicy(t *testing.T) {
	a := newAccount(t)
	a.limits.Set("X-Hubspot-Ratelimit-Interval-Milliseconds", "30") // a tiny window keeps the test fast
	answers := []int{503, 429, 502}
	n := 0
	a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/update", func(w http.ResponseWriter, r *http.Request) {
		n++
		switch {
		case n <= len(answers) && answers[n-1] == 429:
			writeJSON(w, 429, golden(t, "rate_limit_ten_secondly.json"))
		case n <= len(answers):
			writeJSON(w, answers[n-1], []byte(`{"status":"error","message":"busy"}`))
		default:
			writeJSON(w, 200, golden(t, "batch_update_200.json"))
		}
	})
	c := a.client(t)
	var waits []time.Duration
	var res hubspot.BatchResult
	err := retry.Do(context.Background(), retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Retryable: hubspot.Transient,
		OnRetry: func(_ error, w time.Duration) { waits = append(waits, w) }},
		func(ctx context.Context) error {
			var err error
			res, err = c.BatchUpdateOwners(ctx, []hubspot.OwnerUpdate{{ContactID: "51234", OwnerID: "71234567", TraceID: "own-task-7f3a"}})
			return err
		})
	if err != nil || n != 4 || len(res.Failed()) != 0 {
		t.Fatalf("retry.Do = %v after %d calls, failed %v", err, n, res.Failed())
	}
	// The 429 waits for one slot of the 30 ms window to free (30 ms / X-HubSpot-RateLimit-Max).
	if slot := 30 * time.Millisecond / time.Duration(mustInt(t, a.limits.Get("X-Hubspot-Ratelimit-Max"))); len(waits) != 3 || waits[1] < slot {
		t.Errorf("waits = %v, want the 429's wait ≥ one slot of the window (%v)", waits, slot)
	}

	// DAILY is not retried.
	b := newAccount(t)
	calls := 0
	b.mux.HandleFunc("GET /crm/v3/owners", func(w http.ResponseWriter, r *http.Request) {
		calls++
		writeJSON(w, 429, golden(t, "rate_limit_daily.json"))
	})
	cb := b.client(t)
	err = retry.Do(context.Background(), retry.Policy{InitialInterval: time.Millisecond, Retryable: hubspot.Transient}, func(ctx context.Context) error {
		return cb.ListOwners(ctx, false, func([]hubspot.Owner) error { return nil })
	})
	if !errors.Is(err, hubspot.ErrDailyLimit) || calls != 1 {
		t.Errorf("retry.Do = %v after %d calls, want ErrDailyLimit after 1", err, calls)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	a := newAccount(t)
	release := make(chan struct{})
	defer close(release)
	a.mux.HandleFunc("GET /crm/v3/owners", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := a.client(t, func(cfg *hubspot.Config) { cfg.Timeout = 50 * time.Millisecond })
	err := c.ListOwners(context.Background(), false, func([]hubspot.Owner) error { return nil })
	if err == nil || !hubspot.Transient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListOwners = %v, want a transient deadline error", err)
	}
}

func TestOAuthRefresh(t *testing.T) {
	a := newAccount(t)
	var forms []url.Values
	a.mux.HandleFunc("POST /oauth/v1/token", func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("token Content-Type = %q", ct)
		}
		r.ParseForm()
		forms = append(forms, r.PostForm)
		body := strings.Replace(string(golden(t, "oauth_token_response.json")), `"access_token": "`, `"access_token": "at`+strconv.Itoa(len(forms))+`-`, 1)
		writeJSON(w, 200, []byte(body))
	})
	a.mux.HandleFunc("GET /crm/v3/owners/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, golden(t, "owner_archived.json"))
	})
	now := time.Now()
	c := a.client(t, func(cfg *hubspot.Config) {
		cfg.AccessToken = ""
		cfg.OAuth = &hubspot.OAuth{ClientID: "client-id-1", ClientSecret: "client-secret-1", RefreshToken: "6f18f21e-a743-4509-b7fd-1a5e632fffa1", TokenURL: a.srv.URL + "/oauth/v1/token"}
		cfg.Now = func() time.Time { return now }
	})
	get := func() {
		t.Helper()
		if _, err := c.GetOwner(context.Background(), "71234568", true); err != nil {
			t.Fatal(err)
		}
	}
	get()
	get() // token still fresh: no refresh
	// oauth2 stamps the expiry from the real clock: expires_in 1800 s, refreshed 5 min early.
	now = now.Add(26 * time.Minute)
	get()
	want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"6f18f21e-a743-4509-b7fd-1a5e632fffa1"}, "client_id": {"client-id-1"}, "client_secret": {"client-secret-1"}}
	if diff := cmp.Diff([]url.Values{want, want}, forms); diff != "" {
		t.Errorf("token forms (-want +got):\n%s", diff)
	}
	var auths []string
	for _, r := range a.recorded() {
		if strings.HasPrefix(r.Path, "/crm/") {
			auths = append(auths, strings.SplitN(r.Auth, "-", 2)[0])
		}
	}
	if diff := cmp.Diff([]string{"Bearer at1", "Bearer at1", "Bearer at2"}, auths); diff != "" {
		t.Errorf("authorization (-want +got):\n%s", diff)
	}
}

func TestOAuthRefreshFailure(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("POST /oauth/v1/token", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, []byte(`{"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token"}`))
	})
	c := a.client(t, func(cfg *hubspot.Config) {
		cfg.AccessToken = ""
		cfg.OAuth = &hubspot.OAuth{ClientID: "id", ClientSecret: "secret", RefreshToken: "rt", TokenURL: a.srv.URL + "/oauth/v1/token"}
	})
	_, err := c.GetOwner(context.Background(), "1", false)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || hubspot.Transient(err) {
		t.Fatalf("GetOwner = %v, want a permanent oauth2.RetrieveError", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func TestSpansOnEveryRequest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	a := newAccount(t)
	serveOwners(t, a, makeOwners(150, false), makeOwners(10, true))
	c := a.client(t, func(cfg *hubspot.Config) { cfg.TracerProvider = tp })
	for _, archived := range []bool{false, true} {
		if err := c.ListOwners(context.Background(), archived, func([]hubspot.Owner) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	if diff := cmp.Diff([]string{"hubspot GET", "hubspot GET", "hubspot GET"}, names); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  hubspot.Config
	}{
		{name: "no auth", cfg: hubspot.Config{}},
		{name: "two auths", cfg: hubspot.Config{AccessToken: "x", OAuth: &hubspot.OAuth{ClientID: "a", ClientSecret: "b", RefreshToken: "c"}}},
		{name: "oauth without refresh token", cfg: hubspot.Config{OAuth: &hubspot.OAuth{ClientID: "a", ClientSecret: "b"}}},
		{name: "relative base url", cfg: hubspot.Config{AccessToken: "x", BaseURL: "api.hubapi.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := hubspot.New(tt.cfg); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func mustInt(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("not a positive number: %q", s)
	}
	return n
}
