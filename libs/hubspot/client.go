// Package hubspot is a client for the parts of one HubSpot account's CRM APIs that ownersync uses
// (docs/crm-protocols.md#hubspot): the Owners API (both passes, archived and not), contact lookup
// by email and the contacts batch update of hubspot_owner_id.
//
// Every call has a timeout and a context, runs inside an OpenTelemetry span (otelhttp), reports the
// X-HubSpot-RateLimit-* headers, and returns errors that Transient classifies; a 429 says which
// limit was hit (TEN_SECONDLY_ROLLING or DAILY). The client never retries by itself: wrap calls in
// retry.Do(ctx, retry.Policy{Retryable: hubspot.Transient}, …), which honours the errors' RetryAfter.
package hubspot

import (
	"github.com/ownersync/ownersync/libs/redact"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/crmcall"
)

// DefaultBaseURL is HubSpot's API host.
const DefaultBaseURL = "https://api.hubapi.com"

// DefaultTokenURL is the OAuth token endpoint of legacy public apps
// (docs/crm-protocols.md#hubspot-authentication).
const DefaultTokenURL = "https://api.hubapi.com/oauth/v1/token"

// DefaultTimeout bounds one HTTP exchange when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// OAuth is an OAuth 2.0 app installation: the client refreshes the access token with the refresh
// token ahead of its expires_in.
type OAuth struct {
	ClientID     string
	ClientSecret string // never logged
	RefreshToken string // never logged
	// TokenURL defaults to DefaultTokenURL.
	TokenURL string
	// RefreshEarly is how long before expiry a token is replaced (default 5m).
	RefreshEarly time.Duration
}

// Config connects a Client to one account.
type Config struct {
	// BaseURL is the API host (default DefaultBaseURL); sandboxes and tests set their own.
	BaseURL string

	// Exactly one of AccessToken, OAuth and TokenSource is set.
	// AccessToken is a private-app (static) access token; never logged.
	AccessToken string
	OAuth       *OAuth
	TokenSource oauth2.TokenSource

	// HTTPClient's transport is used (wrapped by otelhttp); default http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds each HTTP exchange, body included (default 30s).
	Timeout time.Duration
	// TracerProvider makes the request spans; default noop.
	TracerProvider trace.TracerProvider
	// OwnersPageSize is the Owners API limit parameter (default 100, HubSpot's default; the
	// maximum is not documented).
	OwnersPageSize int
	// OnRateLimit, when set, is called with the rate-limit headers of every response that has them.
	OnRateLimit func(RateLimit)
	// Now is the clock for token expiry (default time.Now).
	Now func() time.Time
	// Metrics, when set, counts and times every call and records the account's limits; Tenant
	// labels them.
	Metrics *crmcall.Metrics
	Tenant  string
}

// Client talks to one account. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	hc        *http.Client
	timeout   time.Duration
	pageSize  int
	onLimit   func(RateLimit)
	token     func(ctx context.Context) (string, error)
	metrics   *crmcall.Metrics
	tenant    string
	mu        sync.Mutex
	lastLimit RateLimit
	hasLimit  bool
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	var problems []error
	baseURL := cfg.BaseURL
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		problems = append(problems, fmt.Errorf("base url %q is not an absolute URL", cfg.BaseURL))
	}
	n := 0
	for _, set := range []bool{cfg.AccessToken != "", cfg.OAuth != nil, cfg.TokenSource != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		problems = append(problems, errors.New("set exactly one of AccessToken, OAuth, TokenSource"))
	}
	if o := cfg.OAuth; o != nil && (o.ClientID == "" || o.ClientSecret == "" || o.RefreshToken == "") {
		problems = append(problems, errors.New("oauth: client id, client secret and refresh token are required"))
	}
	if cfg.OwnersPageSize < 0 {
		problems = append(problems, fmt.Errorf("owners page size %d", cfg.OwnersPageSize))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("hubspot config: %w", errors.Join(problems...))
	}

	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	transport := http.DefaultTransport
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		transport = cfg.HTTPClient.Transport
	}
	hc := &http.Client{
		Transport: otelhttp.NewTransport(cfg.Metrics.Transport(transport, "hubspot", cfg.Tenant, operation),
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "hubspot " + r.Method }),
		),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Client{base: base, hc: hc, timeout: cfg.Timeout, pageSize: cfg.OwnersPageSize, onLimit: cfg.OnRateLimit,
		metrics: cfg.Metrics, tenant: cfg.Tenant}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.pageSize == 0 {
		c.pageSize = 100
	}
	switch {
	case cfg.AccessToken != "":
		tok := cfg.AccessToken
		c.token = func(context.Context) (string, error) { return tok, nil }
	case cfg.OAuth != nil:
		c.token = newRefresher(*cfg.OAuth, hc, c.timeout, now).token
	default:
		ts := cfg.TokenSource
		c.token = func(context.Context) (string, error) {
			t, err := ts.Token()
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		}
	}
	return c, nil
}

// operation names a request for metrics, from a fixed set.
func operation(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/token"):
		return "token"
	case strings.HasSuffix(p, "/batch/update"):
		return "batch_update"
	case p == "/crm/v3/owners" || strings.HasSuffix(p, "/crm/v3/owners/"):
		return "owners_list"
	case strings.Contains(p, "/crm/v3/owners/"):
		return "owner_get"
	case strings.Contains(p, "/crm/v3/objects/"):
		return "object_get"
	}
	return "other"
}

// refresher keeps an OAuth access token fresh with the refresh token, using the caller's context
// for each refresh.
type refresher struct {
	cfg     oauth2.Config
	hc      *http.Client
	timeout time.Duration // bounds each refresh
	early   time.Duration
	now     func() time.Time
	mu      sync.Mutex
	tok     *oauth2.Token
}

func newRefresher(o OAuth, hc *http.Client, timeout time.Duration, now func() time.Time) *refresher {
	tokenURL := o.TokenURL
	if tokenURL == "" {
		tokenURL = DefaultTokenURL
	}
	early := o.RefreshEarly
	if early <= 0 {
		early = 5 * time.Minute
	}
	return &refresher{
		cfg: oauth2.Config{
			ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		hc: hc, timeout: timeout, early: early, now: now,
		tok: &oauth2.Token{RefreshToken: o.RefreshToken},
	}
}

func (r *refresher) token(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tok.AccessToken != "" && (r.tok.Expiry.IsZero() || r.now().Add(r.early).Before(r.tok.Expiry)) {
		return r.tok.AccessToken, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, r.hc)
	// A source over a token without an access token always refreshes.
	t, err := r.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: r.tok.RefreshToken}).Token()
	if err != nil {
		return "", fmt.Errorf("refresh hubspot token: %w", redact.TokenError(err))
	}
	r.tok = t
	return t.AccessToken, nil
}

// RateLimitInfo returns the rate-limit headers of the latest response that had them.
func (c *Client) RateLimitInfo() (RateLimit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastLimit, c.hasLimit
}

// do sends one request and decodes a 2xx JSON body into out. It returns the status. path is
// already escaped (segments through url.PathEscape).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (int, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return 0, err
	}
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return 0, fmt.Errorf("hubspot path %q: %w", path, err)
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	u.Path = strings.TrimRight(u.Path, "/") + unescaped
	u.RawPath = prefix + path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("hubspot %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	limit, hasLimit := ParseRateLimit(resp.Header)
	if hasLimit {
		c.metrics.Window(ctx, "hubspot", c.tenant, limit.Remaining, limit.Max)
		if limit.HasDaily {
			c.metrics.Quota(ctx, "hubspot", c.tenant, limit.Daily-limit.DailyRemaining, limit.Daily)
		}
		c.mu.Lock()
		c.lastLimit, c.hasLimit = limit, true
		c.mu.Unlock()
		if c.onLimit != nil {
			c.onLimit(limit)
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("hubspot %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, parseErrorResponse(resp.StatusCode, resp.Header, data, limit, time.Now())
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("hubspot %s %s: decode response: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
