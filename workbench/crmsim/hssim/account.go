// Package hssim is an in-memory HubSpot account that speaks the parts of the CRM API ownersync
// uses, in HubSpot's wire formats (docs/crm-protocols.md#hubspot): the Owners API with after-cursor
// paging and the archived pass, contact reads (by id or email), contacts batch update with 200/207
// and single-record PATCH, private-app and OAuth bearer tokens (with the /oauth/v1/token refresh
// grant), the rolling ten-second and daily rate limits with X-HubSpot-RateLimit-* headers and 429
// bodies. It also sends what HubSpot sends when a contact's owner changes: v3-signed
// contact.propertyChange webhooks (§3), retried on failure.
//
// An Account is an http.Handler; Start serves it on a loopback port. Tests drive it through the
// Go methods (CreateOwner, ArchiveOwner, SetContactOwner, …), the admin HTTP API under
// /_crmsim/, fault rules and the request log.
package hssim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ownersync/ownersync/workbench/crmsim"
)

// Rate-limit policies named in 429 bodies (docs/crm-protocols.md#hubspot-rate-limits).
const (
	PolicyTenSecondly = "TEN_SECONDLY_ROLLING"
	PolicyDaily       = "DAILY"
)

// Config configures an Account. The zero value works: portal 4412345, app 3100456, the
// Professional tier's limits (190 requests per 10 s, 625,000 a day), OAuth tokens only.
type Config struct {
	// PortalID is the account (hub) id; AppID the app's id (webhook appId and API sourceId).
	PortalID int64
	AppID    int64
	// AccessTokens are accepted private-app tokens (e.g. "pat-na1-…").
	AccessTokens []string
	// ClientID and ClientSecret identify the OAuth app; ClientSecret also signs webhooks. When
	// ClientID is empty the token endpoint accepts any client.
	ClientID     string
	ClientSecret string
	// RefreshTokens are accepted refresh tokens; when empty any non-empty refresh token works.
	RefreshTokens []string
	// TokenTTL is the OAuth access token lifetime (expires_in; default 30 min).
	TokenTTL time.Duration

	// BurstLimit is the requests allowed per BurstInterval (default 190 per 10 s; negative:
	// unlimited). DailyLimit is the daily quota (default 625,000; negative: unlimited).
	BurstLimit    int
	BurstInterval time.Duration
	DailyLimit    int64
	// TimeZone is the account's time zone; the daily quota resets at its midnight (default UTC).
	TimeZone *time.Location

	// Latency is added to every API request.
	Latency time.Duration

	// AcceptArchivedOwners lets hubspot_owner_id take an archived owner's id
	// (docs/crm-protocols.md#unconfirmed-facts item 15). Default false: rejected with
	// VALIDATION_ERROR like an unknown owner.
	AcceptArchivedOwners bool
	// PartialWithoutTraceID gives 207 partial success even for failed inputs without an
	// objectWriteTraceId (item 16). Default false: such a failure fails the whole batch (400/404)
	// and nothing is written.
	PartialWithoutTraceID bool
	// EndlessOwners makes GET /crm/v3/owners (active owners) an API that pages forever: every
	// page is full of generated owners with ids after the cursor, and always links to a next
	// one (hostile or broken CRMs; issue 13 item 7). Stored owners are not listed then.
	EndlessOwners bool

	// Webhooks configures webhook delivery.
	Webhooks WebhookConfig
	// App configures the public app's install flow and webhooks API (oauthapp.go).
	App AppConfig

	// LogCapacity caps the request log (default crmsim.DefaultLogCapacity).
	LogCapacity int
	// RandSeed seeds fault probabilities and retry jitter.
	RandSeed uint64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HTTPClient sends webhooks (default: a client with WebhookConfig.Timeout).
	HTTPClient *http.Client
	// Logger receives delivery diagnostics (default: discard).
	Logger *slog.Logger
}

type oauthToken struct {
	expires time.Time
	revoked bool
	refresh string   // the refresh token that minted it ("" for IssueToken)
	scopes  []string // granted scopes (nil: the sandbox's defaults)
}

// Account is an in-memory HubSpot account.
type Account struct {
	cfg     Config
	now     func() time.Time
	log     *crmsim.Log
	faults  *crmsim.Faults
	burst   atomic.Pointer[crmsim.Window] // swapped by SetBurstLimit
	endless atomic.Bool                   // Config.EndlessOwners, switched by SetEndlessOwners
	quota   *crmsim.Quota
	logger  *slog.Logger
	handler http.Handler

	mu      sync.RWMutex
	st      *store
	tokens  map[string]*oauthToken
	revoked map[string]bool
	baseURL string

	codes      map[string]*authCode
	refresh    map[string]*refreshGrant
	retired    map[string]bool // rotated-out refresh tokens
	subs       []Subscription
	nextSub    int64
	whSettings *WebhookSettings

	wh *webhooks

	stop     chan struct{}
	stopOnce sync.Once
	srv      *http.Server
	url      string
}

// New returns an account configured by cfg, with no data.
func New(cfg Config) (*Account, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PortalID == 0 {
		cfg.PortalID = 4412345
	}
	if cfg.AppID == 0 {
		cfg.AppID = 3100456
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 30 * time.Minute
	}
	if cfg.BurstLimit == 0 {
		cfg.BurstLimit = 190
	}
	if cfg.BurstInterval <= 0 {
		cfg.BurstInterval = 10 * time.Second
	}
	if cfg.DailyLimit == 0 {
		cfg.DailyLimit = 625_000
	}
	cfg.Webhooks.defaults()
	a := &Account{
		cfg:     cfg,
		now:     cfg.Now,
		log:     crmsim.NewLog(cfg.LogCapacity),
		faults:  crmsim.NewFaults(cfg.RandSeed),
		quota:   crmsim.NewQuota(max(cfg.DailyLimit, 0), cfg.TimeZone),
		logger:  cfg.Logger,
		st:      newStore(),
		tokens:  map[string]*oauthToken{},
		revoked: map[string]bool{},
		codes:   map[string]*authCode{},
		refresh: map[string]*refreshGrant{},
		retired: map[string]bool{},
		nextSub: 1_000_000,
		stop:    make(chan struct{}),
	}
	a.burst.Store(crmsim.NewWindow(cfg.BurstLimit, cfg.BurstInterval))
	a.endless.Store(cfg.EndlessOwners)
	a.wh = newWebhooks(a)
	a.handler = a.log.Record(a.routes(), a.now)
	return a, nil
}

// PortalID is the account id.
func (a *Account) PortalID() int64 { return a.cfg.PortalID }

// AppID is the app id.
func (a *Account) AppID() int64 { return a.cfg.AppID }

// Log is the request log.
func (a *Account) Log() *crmsim.Log { return a.log }

// Faults is the fault-rule set.
func (a *Account) Faults() *crmsim.Faults { return a.faults }

// ServeHTTP serves the account's API, OAuth and admin endpoints.
func (a *Account) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Start serves the account on addr ("" means 127.0.0.1:0) and returns its base URL.
func (a *Account) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("hssim listen %s: %w", addr, err)
	}
	a.url = "http://" + ln.Addr().String()
	a.mu.Lock()
	if a.baseURL == "" {
		a.baseURL = a.url
	}
	a.mu.Unlock()
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a.url, nil
}

// URL is the base URL Start is serving on ("" before Start).
func (a *Account) URL() string { return a.url }

// SetBaseURL sets the origin used in paging links (default: the request's own origin).
func (a *Account) SetBaseURL(u string) {
	a.mu.Lock()
	a.baseURL = strings.TrimRight(u, "/")
	a.mu.Unlock()
}

// Close stops webhook delivery, releases hanging requests and stops the server Start started.
func (a *Account) Close() error {
	a.stopOnce.Do(func() { close(a.stop) })
	a.wh.close()
	if a.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			return a.srv.Close()
		}
	}
	return nil
}

func (a *Account) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /crm/v3/owners", a.handleListOwners)
	api.HandleFunc("GET /crm/v3/owners/", a.handleListOwners)
	api.HandleFunc("GET /crm/v3/owners/{ownerId}", a.handleGetOwner)
	api.HandleFunc("GET /crm/v3/objects/contacts/{contactId}", a.handleGetContact)
	api.HandleFunc("PATCH /crm/v3/objects/contacts/{contactId}", a.handleUpdateContact)
	api.HandleFunc("POST /crm/v3/objects/contacts/batch/update", a.handleBatchUpdate)
	api.HandleFunc("POST /crm/v3/objects/contacts/batch/read", a.handleBatchRead)
	api.HandleFunc("GET /account-info/v3/details", a.handleAccountDetails)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Resource not found", nil)
	})
	guarded := a.guard(api)

	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/v1/token", a.handleToken)
	mux.HandleFunc("GET /oauth/authorize", a.handleAuthorize)
	mux.HandleFunc("POST /oauth/authorize", a.handleAuthorize)
	mux.HandleFunc("GET /oauth/v1/access-tokens/{token}", a.handleTokenInfo)
	mux.HandleFunc("GET /oauth/v1/refresh-tokens/{token}", a.handleRefreshInfo)
	mux.HandleFunc("DELETE /oauth/v1/refresh-tokens/{token}", a.handleRevoke)
	mux.HandleFunc("GET /webhooks/v3/{appId}/subscriptions", a.webhookAPI(a.handleListSubscriptions))
	mux.HandleFunc("POST /webhooks/v3/{appId}/subscriptions", a.webhookAPI(a.handleCreateSubscription))
	mux.HandleFunc("DELETE /webhooks/v3/{appId}/subscriptions/{id}", a.webhookAPI(a.handleDeleteSubscription))
	mux.HandleFunc("GET /webhooks/v3/{appId}/settings", a.webhookAPI(a.handleGetWebhookSettings))
	mux.HandleFunc("PUT /webhooks/v3/{appId}/settings", a.webhookAPI(a.handlePutWebhookSettings))
	mux.Handle("/_crmsim/", a.adminRoutes())
	mux.Handle("/", guarded)
	return mux
}

// handleAccountDetails serves GET /account-info/v3/details: the account's id, time zone (whose
// midnight resets the daily limit) and UTC offset now, currency and hosting.
func (a *Account) handleAccountDetails(w http.ResponseWriter, r *http.Request) {
	loc := a.cfg.TimeZone
	if loc == nil {
		loc = time.UTC
	}
	_, off := a.now().In(loc).Zone()
	sign, abs := "+", off
	if off < 0 {
		sign, abs = "-", -off
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"portalId": a.cfg.PortalID, "accountType": "STANDARD", "timeZone": loc.String(),
		"utcOffset": fmt.Sprintf("%s%02d:%02d", sign, abs/3600, abs%3600/60), "utcOffsetMilliseconds": int64(off) * 1000,
		"companyCurrency": "USD", "additionalCurrencies": []string{}, "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1",
	})
}

// ErrorBody is HubSpot's general error body (docs/crm-protocols.md#hubspot-errors).
type ErrorBody struct {
	Status        string              `json:"status"`
	Message       string              `json:"message"`
	CorrelationID string              `json:"correlationId,omitempty"`
	Category      string              `json:"category,omitempty"`
	SubCategory   string              `json:"subCategory,omitempty"`
	Context       map[string][]string `json:"context,omitempty"`
	Errors        []ErrorDetail       `json:"errors,omitempty"`
	Links         map[string]string   `json:"links,omitempty"`
}

// ErrorDetail is one entry of an error's errors[].
type ErrorDetail struct {
	Message     string              `json:"message"`
	Code        string              `json:"code,omitempty"`
	Context     map[string][]string `json:"context,omitempty"`
	In          string              `json:"in,omitempty"`
	SubCategory string              `json:"subCategory,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (a *Account) writeError(w http.ResponseWriter, status int, category, msg string, ctx map[string][]string, details ...ErrorDetail) {
	writeJSON(w, status, ErrorBody{Status: "error", Message: msg, CorrelationID: uuid.NewString(), Category: category, Context: ctx, Errors: details})
}

// rateLimitBody is the 429 body (§4.5).
type rateLimitBody struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	ErrorType     string `json:"errorType"`
	CorrelationID string `json:"correlationId"`
	PolicyName    string `json:"policyName"`
}

func (a *Account) write429(w http.ResponseWriter, policy string) {
	a.log.CountRateLimited()
	msg := "You have reached your ten_secondly_rolling limit."
	if policy == PolicyDaily {
		msg = "You have reached your daily limit."
	}
	writeJSON(w, http.StatusTooManyRequests, rateLimitBody{Status: "error", Message: msg, ErrorType: "RATE_LIMIT", CorrelationID: uuid.NewString(), PolicyName: policy})
}

type authKind int

const (
	authNone authKind = iota
	authPrivateApp
	authOAuth
)

// authenticate classifies the bearer token; for a failure it returns the 401 category and message.
func (a *Account) authenticate(r *http.Request) (authKind, string, string) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return authNone, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.revoked[tok] {
		return authNone, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
	}
	for _, t := range a.cfg.AccessTokens {
		if t == tok {
			return authPrivateApp, "", ""
		}
	}
	if ot, ok := a.tokens[tok]; ok && !ot.revoked {
		if now := a.now(); !now.Before(ot.expires) {
			return authNone, "EXPIRED_AUTHENTICATION", fmt.Sprintf("The OAuth token used to make this call expired %d second(s) ago.", int(now.Sub(ot.expires).Seconds()))
		}
		return authOAuth, "", ""
	}
	return authNone, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
}

// guard applies latency, request-level faults, auth and rate limits, and sets the rate-limit
// headers, before the API handler runs.
func (a *Account) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Latency > 0 {
			crmsim.Sleep(r.Context(), a.stop, a.cfg.Latency)
		}
		kind, category, msg := a.authenticate(r)
		if kind == authNone {
			a.writeError(w, http.StatusUnauthorized, category, msg, nil)
			return
		}
		if a.injectRequestFault(w, r, kind) {
			return
		}
		now := a.now()
		win := a.burst.Load()
		allowed, remaining := win.Allow(now)
		if !allowed {
			used, limit := a.quota.Usage(now)
			a.setHeaders(w, kind, now, win, 0, limit-used)
			a.write429(w, PolicyTenSecondly)
			return
		}
		ok, used, limit := a.quota.Take(now)
		dailyRemaining := limit - used
		if !ok {
			a.setHeaders(w, kind, now, win, remaining, 0)
			a.write429(w, PolicyDaily)
			return
		}
		a.setHeaders(w, kind, now, win, remaining, dailyRemaining)
		next.ServeHTTP(w, r)
	})
}

// setHeaders writes X-HubSpot-RateLimit-*; the daily pair is not sent on OAuth calls (§4.5).
func (a *Account) setHeaders(w http.ResponseWriter, kind authKind, now time.Time, win *crmsim.Window, remaining int, dailyRemaining int64) {
	_, dailyLimit := a.quota.Usage(now)
	h := w.Header()
	if win.Max() > 0 {
		h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(win.Max()))
		h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(max(remaining, 0)))
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.FormatInt(win.Interval().Milliseconds(), 10))
	}
	if dailyLimit > 0 && kind != authOAuth {
		h.Set("X-HubSpot-RateLimit-Daily", strconv.FormatInt(dailyLimit, 10))
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", strconv.FormatInt(max(dailyRemaining, 0), 10))
	}
}

func (a *Account) injectRequestFault(w http.ResponseWriter, r *http.Request, kind authKind) bool {
	var body []byte
	if r.Body != nil {
		body, _ = peekBody(r)
	}
	rule, ok := a.faults.Request(r.Method, r.URL.Path, body)
	if !ok {
		return false
	}
	a.log.CountFault()
	switch rule.Action {
	case crmsim.ActionLatency:
		crmsim.Sleep(r.Context(), a.stop, rule.Latency)
		return false
	case crmsim.ActionHang:
		crmsim.Hang(r.Context(), a.stop)
		return true
	case crmsim.ActionRateLimit:
		policy := cmpOr(rule.Policy, PolicyTenSecondly)
		now := a.now()
		used, limit := a.quota.Usage(now)
		a.setHeaders(w, kind, now, a.burst.Load(), 0, limit-used)
		if rule.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((rule.RetryAfter+time.Second-1)/time.Second), 10))
		}
		a.write429(w, policy)
		return true
	default:
		status := cmpOr(rule.Status, http.StatusInternalServerError)
		category, msg := "INTERNAL_ERROR", "internal error"
		switch status {
		case http.StatusLocked:
			category, msg = "LOCKED", "Too many requests are modifying the same data. Please wait at least 2 seconds and retry."
		case 477:
			category, msg = "MIGRATION_IN_PROGRESS", "This account is being migrated between data centers."
			w.Header().Set("Retry-After", "30")
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			category, msg = "PROCESSING_LIMIT", "The request hit a processing limit. Pause for a few seconds and retry."
		case http.StatusServiceUnavailable:
			category, msg = "SERVICE_UNAVAILABLE", "Service temporarily unavailable. Please retry."
		}
		a.writeError(w, status, cmpOr(rule.Code, category), cmpOr(rule.Message, msg), nil)
		return true
	}
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// IssueToken mints an OAuth access token as if the refresh grant had been called.
func (a *Account) IssueToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.issueLocked()
}

func (a *Account) issueLocked() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "CN" + hex.EncodeToString(b[:])
	a.tokens[tok] = &oauthToken{expires: a.now().Add(a.cfg.TokenTTL)}
	return tok
}

// ExpireTokens revokes every OAuth token issued so far (private-app tokens stay valid).
func (a *Account) ExpireTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tokens {
		t.expires = a.now().Add(-time.Second)
	}
}

// RevokeToken makes a token (OAuth or private-app) invalid.
func (a *Account) RevokeToken(token string) {
	a.mu.Lock()
	a.revoked[token] = true
	a.mu.Unlock()
}

// SetDailyUsage sets today's usage; SetDailyLimit changes the daily limit.
func (a *Account) SetDailyUsage(used int64) { a.quota.Set(a.now(), used) }

// SetDailyLimit changes the daily limit (≤ 0: unlimited).
func (a *Account) SetDailyLimit(limit int64) { a.quota.SetLimit(max(limit, 0)) }

// ResetBurst forgets the requests in the rolling window.
func (a *Account) ResetBurst() { a.burst.Load().Reset() }

// SetBurstLimit changes the rolling window to max requests per interval (max < 0: unlimited), as
// HubSpot does when an account's tier or a shared app's allowance changes; the new window starts
// empty and the headers report it from the next request on.
func (a *Account) SetBurstLimit(max int, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	a.burst.Store(crmsim.NewWindow(max, interval))
}

// SetEndlessOwners switches Config.EndlessOwners at run time: a running account starts (or stops)
// paging its active owners forever, so a whole-system test can turn one tenant's HubSpot hostile
// and back (issue 13 item 7).
func (a *Account) SetEndlessOwners(on bool) { a.endless.Store(on) }

type tokenResponse struct {
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
}

type oauthError struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
}

// handleToken serves POST /oauth/v1/token with grant_type=refresh_token.
func (a *Account) handleToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status, msg string) {
		writeJSON(w, http.StatusBadRequest, oauthError{Status: status, Message: msg, CorrelationID: uuid.NewString()})
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Status: "error", Message: "method not allowed", CorrelationID: uuid.NewString()})
		return
	}
	if err := r.ParseForm(); err != nil {
		fail("BAD_REQUEST", "malformed form body")
		return
	}
	if a.injectRequestFault(w, r, authOAuth) {
		return
	}
	gt := r.PostForm.Get("grant_type")
	if gt != "refresh_token" && gt != "authorization_code" {
		fail("BAD_GRANT_TYPE", "grant_type must be refresh_token or authorization_code, got "+strconv.Quote(gt))
		return
	}
	if a.cfg.ClientID != "" && r.PostForm.Get("client_id") != a.cfg.ClientID {
		fail("BAD_CLIENT_ID", "missing or invalid client_id")
		return
	}
	if a.cfg.ClientID != "" && r.PostForm.Get("client_secret") != a.cfg.ClientSecret {
		fail("BAD_CLIENT_SECRET", "missing or invalid client_secret")
		return
	}
	if gt == "authorization_code" {
		a.exchangeCode(w, r, fail)
		return
	}
	rt := r.PostForm.Get("refresh_token")
	a.mu.Lock()
	g, known := a.refreshKnownLocked(rt)
	if !known {
		a.mu.Unlock()
		fail("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
		return
	}
	out := rt
	if g != nil && a.cfg.App.RotateRefreshTokens {
		out = "na1-" + randHex(4) + "-" + uuid.NewString()
		a.refresh[out] = &refreshGrant{scopes: g.scopes, user: g.user}
		delete(a.refresh, rt)
		a.retired[rt] = true
	}
	tok := a.issueLocked()
	a.tokens[tok].refresh = out
	if g != nil {
		a.tokens[tok].scopes = g.scopes
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "bearer", RefreshToken: out, AccessToken: tok, ExpiresIn: int(a.cfg.TokenTTL.Seconds())})
}
