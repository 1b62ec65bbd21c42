// Package salesforce is a client for the parts of one Salesforce org's REST API that ownersync uses
// (docs/crm-protocols.md#salesforce): OAuth 2.0 server-to-server tokens, SOQL queries of User,
// Contact and Lead with nextRecordsUrl paging, single-record owner PATCH and sObject Collections
// updates.
//
// Every call has a timeout and a context, runs inside an OpenTelemetry span (otelhttp), reports the
// org's API usage from Sforce-Limit-Info, and returns errors that Transient classifies. A 401 makes
// the client fetch a new token and repeat the request once; any other retry is the caller's choice,
// e.g. retry.Do(ctx, retry.Policy{Retryable: salesforce.Transient}, …).
package salesforce

import (
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

// Config connects a Client to one org.
type Config struct {
	// InstanceURL is the API host, e.g. https://acme.my.salesforce.com. Empty: use the instance_url
	// of the token response.
	InstanceURL string
	// TokenURL is the OAuth token endpoint. Empty: InstanceURL + /services/oauth2/token (the My
	// Domain, as client credentials needs), or https://login.salesforce.com/services/oauth2/token for
	// JWT bearer without an InstanceURL.
	TokenURL string
	// APIVersion is the pinned REST version, "67.0" or "v67.0". Required.
	APIVersion string

	// Exactly one of ClientCredentials, JWTBearer and TokenSource is set.
	ClientCredentials *ClientCredentials
	JWTBearer         *JWTBearer
	// TokenSource supplies tokens some other way; it must return a new token on each call, since
	// the client caches the token itself and only asks again after a 401.
	TokenSource oauth2.TokenSource

	// HTTPClient's transport is used (wrapped by otelhttp); default http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds each HTTP exchange, body included (default 30s).
	Timeout time.Duration
	// TracerProvider makes the request spans; default noop.
	TracerProvider trace.TracerProvider
	// QueryBatchSize, when set (200…2000), is sent as Sforce-Query-Options: batchSize=N.
	QueryBatchSize int
	// OnLimitInfo, when set, is called with the Sforce-Limit-Info of every response that has one.
	OnLimitInfo func(LimitInfo)
	// Now is the clock for JWT claims (default time.Now).
	Now func() time.Time
	// Metrics, when set, counts and times every call and records the org's quota; Tenant labels
	// them.
	Metrics *crmcall.Metrics
	Tenant  string
}

// DefaultTimeout bounds one HTTP exchange when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Client talks to one org. It is safe for concurrent use.
type Client struct {
	instanceURL string
	version     string // "v67.0"
	hc          *http.Client
	timeout     time.Duration
	batchSize   int
	onLimit     func(LimitInfo)
	tokens      *tokenCache
	metrics     *crmcall.Metrics
	tenant      string

	mu        sync.Mutex
	lastLimit LimitInfo
	hasLimit  bool
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	var problems []error
	version := strings.TrimPrefix(strings.TrimSpace(cfg.APIVersion), "v")
	if version == "" || strings.Trim(version, "0123456789.") != "" || !strings.Contains(version, ".") {
		problems = append(problems, fmt.Errorf("api version %q: want e.g. 67.0", cfg.APIVersion))
	}
	instance := strings.TrimRight(cfg.InstanceURL, "/")
	if instance != "" {
		if u, err := url.Parse(instance); err != nil || u.Scheme == "" || u.Host == "" {
			problems = append(problems, fmt.Errorf("instance url %q is not an absolute URL", cfg.InstanceURL))
		}
	}
	if cfg.QueryBatchSize != 0 && (cfg.QueryBatchSize < 200 || cfg.QueryBatchSize > 2000) {
		problems = append(problems, fmt.Errorf("query batch size %d: want 200…2000", cfg.QueryBatchSize))
	}
	n := 0
	for _, set := range []bool{cfg.ClientCredentials != nil, cfg.JWTBearer != nil, cfg.TokenSource != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		problems = append(problems, errors.New("set exactly one of ClientCredentials, JWTBearer, TokenSource"))
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" && instance != "" {
		tokenURL = instance + tokenPath
	}
	if tokenURL == "" && cfg.JWTBearer != nil {
		tokenURL = defaultLoginHost + tokenPath
	}
	if tokenURL == "" && cfg.TokenSource == nil {
		problems = append(problems, errors.New("token url: set TokenURL or InstanceURL"))
	}
	if cfg.ClientCredentials != nil && (cfg.ClientCredentials.ClientID == "" || cfg.ClientCredentials.ClientSecret == "") {
		problems = append(problems, errors.New("client credentials: client id and secret are required"))
	}
	if jb := cfg.JWTBearer; jb != nil && (jb.ClientID == "" || jb.Username == "" || jb.PrivateKey == nil) {
		problems = append(problems, errors.New("jwt bearer: client id, username and private key are required"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("salesforce config: %w", errors.Join(problems...))
	}

	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	base := http.DefaultTransport
	var jar http.CookieJar
	if cfg.HTTPClient != nil {
		if cfg.HTTPClient.Transport != nil {
			base = cfg.HTTPClient.Transport
		}
		jar = cfg.HTTPClient.Jar
	}
	hc := &http.Client{
		Transport: otelhttp.NewTransport(cfg.Metrics.Transport(base, "salesforce", cfg.Tenant, operation),
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "salesforce " + r.Method }),
		),
		Jar: jar,
		// Never follow a redirect with the bearer token to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	var fetch tokenFetcher
	switch {
	case cfg.ClientCredentials != nil:
		fetch = clientCredentialsFetcher(*cfg.ClientCredentials, tokenURL, hc)
	case cfg.JWTBearer != nil:
		fetch = jwtBearerFetcher(*cfg.JWTBearer, tokenURL, hc, now)
	default:
		ts := cfg.TokenSource
		fetch = func(context.Context) (*oauth2.Token, error) { return ts.Token() }
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{
		instanceURL: instance,
		version:     "v" + version,
		hc:          hc,
		timeout:     timeout,
		batchSize:   cfg.QueryBatchSize,
		onLimit:     cfg.OnLimitInfo,
		tokens:      &tokenCache{fetch: fetch, timeout: timeout},
		metrics:     cfg.Metrics,
		tenant:      cfg.Tenant,
	}, nil
}

// operation names a request for metrics, from a fixed set.
func operation(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, tokenPath):
		return "token"
	case strings.Contains(p, "/composite/sobjects"):
		return "composite_update"
	case strings.Contains(p, "/query"):
		return "query"
	case strings.Contains(p, "/sobjects/") && r.Method == http.MethodPatch:
		return "update"
	case strings.Contains(p, "/sobjects/"):
		return "get"
	}
	return "other"
}

// LimitInfo returns the API usage of the latest response that reported it, and whether any did.
func (c *Client) LimitInfo() (LimitInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastLimit, c.hasLimit
}

// dataPath returns /services/data/vXX.X + p.
func (c *Client) dataPath(p string) string { return "/services/data/" + c.version + p }

// request is one REST call.
type request struct {
	method string
	path   string // absolute path on the instance, e.g. /services/data/v67.0/query
	query  url.Values
	body   any // JSON-encoded when not nil
	header http.Header
}

// do sends r with a bearer token, fetching a new token and sending once more on a 401. It decodes a
// 2xx body into out (when out is not nil and the body is not empty) and returns the status.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return 0, err
		}
		status, err := c.send(ctx, tok, r, body, out)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && ae.HTTPStatus == http.StatusUnauthorized {
			c.tokens.invalidate(tok)
			continue
		}
		return status, err
	}
}

func (c *Client) send(ctx context.Context, tok *oauth2.Token, r request, body []byte, out any) (int, error) {
	base := c.instanceURL
	if base == "" {
		base = instanceURLOf(tok)
	}
	if base == "" {
		return 0, errors.New("salesforce: no instance URL configured and none in the token response")
	}
	u, err := url.Parse(base)
	if err != nil {
		return 0, fmt.Errorf("salesforce instance url: %w", err)
	}
	u.Path = strings.TrimRight(u.Path, "/") + r.path
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("salesforce %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	c.noteLimit(ctx, resp.Header)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("salesforce %s %s: read response: %w", r.method, r.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, parseErrorResponse(resp.StatusCode, resp.Header, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("salesforce %s %s: decode response: %w", r.method, r.path, err)
		}
	}
	return resp.StatusCode, nil
}

func (c *Client) noteLimit(ctx context.Context, h http.Header) {
	info, ok := ParseLimitInfo(h.Get(LimitHeader))
	if !ok {
		return
	}
	c.metrics.Quota(ctx, "salesforce", c.tenant, info.Used, info.Max)
	c.mu.Lock()
	c.lastLimit, c.hasLimit = info, true
	c.mu.Unlock()
	if c.onLimit != nil {
		c.onLimit(info)
	}
}
