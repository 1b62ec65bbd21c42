// Package sfsim is an in-memory Salesforce org that speaks the parts of the REST API ownersync
// uses, in Salesforce's wire formats (docs/crm-protocols.md#salesforce): the OAuth token endpoint
// (client credentials and JWT bearer), SOQL queries of User/Contact/Lead with nextRecordsUrl
// paging, single-record and sObject Collections updates of OwnerId with Salesforce's owner
// validation, Sforce-Limit-Info, daily and burst limits. It also sends what a real org sends when
// its data changes: SOAP Outbound Messages (§1) with redelivery until acknowledged.
//
// An Org is an http.Handler; Start serves it on a loopback port. Tests drive it through the Go
// methods (CreateUser, SetOwner, …), the admin HTTP API under /_crmsim/, fault rules and the
// request log.
package sfsim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/workbench/crmsim"
)

// Config configures an Org. The zero value works: a generated org id, any client id/secret,
// JWT assertions accepted without a signature check only if JWTAcceptUnverified is set, 100,000
// API calls a day, no burst limit, no outbound messages.
type Config struct {
	// OrgID is the 18-character organization id (00D…). Generated when empty.
	OrgID string
	// InstanceURL is returned by the token endpoint and used in Outbound Messages. When empty,
	// Start sets it to the listening URL and requests use their own Host.
	InstanceURL string

	// ClientID and ClientSecret are the consumer key and secret. When ClientID is empty any
	// client is accepted (the secret still signs the token response's signature field).
	ClientID     string
	ClientSecret string
	// RunAsUsername is the integration user client-credentials tokens act as. When it names no
	// user, tokens act as a synthetic integration user id that is not in the User table.
	RunAsUsername string
	// JWTPublicKey verifies JWT bearer assertions (RS256 only).
	JWTPublicKey crypto.PublicKey
	// JWTAcceptUnverified accepts assertions without checking the signature (claims still checked).
	JWTAcceptUnverified bool
	// JWTAudiences are the accepted aud values (default login.salesforce.com and test.salesforce.com).
	JWTAudiences []string
	// TokenTTL is how long an access token lives (default 2 h).
	TokenTTL time.Duration

	// DailyLimit is the org's daily API request limit (default 100,000; negative: unlimited).
	DailyLimit int64
	// BurstLimit caps requests per BurstInterval (default interval 1 s; 0: no cap). Over it the org
	// answers 403 REQUEST_LIMIT_EXCEEDED, like Salesforce's concurrent/rate limits.
	BurstLimit    int
	BurstInterval time.Duration

	// Latency is added to every REST request.
	Latency time.Duration

	// Outbound configures Outbound Messages.
	Outbound OutboundConfig
	// WebServer configures the OAuth web-server flow (webflow.go).
	WebServer WebServerConfig

	// LogCapacity caps the request log (default crmsim.DefaultLogCapacity).
	LogCapacity int
	// RandSeed seeds fault probabilities.
	RandSeed uint64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HTTPClient sends Outbound Messages (default: a client with OutboundConfig.Timeout).
	HTTPClient *http.Client
	// Logger receives delivery diagnostics (default: discard).
	Logger *slog.Logger
}

// session is an issued access token.
type session struct {
	userID  string
	refresh string // the refresh token that minted it (web-server flow)
	issued  time.Time
	expires time.Time
	revoked bool
}

// Org is an in-memory Salesforce org.
type Org struct {
	cfg     Config
	now     func() time.Time
	log     *crmsim.Log
	faults  *crmsim.Faults
	quota   *crmsim.Quota
	burst   *crmsim.Window
	logger  *slog.Logger
	handler http.Handler

	mu            sync.RWMutex
	st            *store
	tokens        map[string]*session
	cursors       map[string]*cursor
	webCodes      map[string]*webCode
	webRefresh    map[string]*webRefresh
	instanceURL   string
	integrationID string

	om *outbound

	stop     chan struct{}
	stopOnce sync.Once
	srv      *http.Server
	url      string
}

// New returns an org configured by cfg, with no data. Load or the admin methods add data.
func New(cfg Config) (*Org, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OrgID == "" {
		cfg.OrgID = "00D5g000004XyZaEAK"
	}
	orgID, err := sfid.To18(cfg.OrgID)
	if err != nil || sfid.Prefix(orgID) != sfid.PrefixOrg {
		return nil, fmt.Errorf("sfsim: org id %q is not an 18-character 00D id", cfg.OrgID)
	}
	cfg.OrgID = orgID
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 2 * time.Hour
	}
	if cfg.DailyLimit == 0 {
		cfg.DailyLimit = 100_000
	}
	if cfg.BurstInterval <= 0 {
		cfg.BurstInterval = time.Second
	}
	if len(cfg.JWTAudiences) == 0 {
		cfg.JWTAudiences = []string{"https://login.salesforce.com", "https://test.salesforce.com"}
	}
	cfg.Outbound.defaults()
	o := &Org{
		cfg:         cfg,
		now:         cfg.Now,
		log:         crmsim.NewLog(cfg.LogCapacity),
		faults:      crmsim.NewFaults(cfg.RandSeed),
		quota:       crmsim.NewQuota(max(cfg.DailyLimit, 0), time.UTC),
		burst:       crmsim.NewWindow(cfg.BurstLimit, cfg.BurstInterval),
		logger:      cfg.Logger,
		st:          newStore(orgID),
		tokens:      map[string]*session{},
		webCodes:    map[string]*webCode{},
		webRefresh:  map[string]*webRefresh{},
		cursors:     map[string]*cursor{},
		instanceURL: strings.TrimRight(cfg.InstanceURL, "/"),
		stop:        make(chan struct{}),
	}
	o.integrationID, _ = sfid.To18(sfid.PrefixUser + o.st.pod + "0INTEGRAT")
	o.om = newOutbound(o)
	o.handler = o.log.Record(o.routes(), o.now)
	return o, nil
}

// OrgID is the org's 18-character id.
func (o *Org) OrgID() string { return o.cfg.OrgID }

// Log is the request log.
func (o *Org) Log() *crmsim.Log { return o.log }

// Faults is the fault-rule set; add rules to inject failures.
func (o *Org) Faults() *crmsim.Faults { return o.faults }

// ServeHTTP serves the org's REST, OAuth and admin endpoints.
func (o *Org) ServeHTTP(w http.ResponseWriter, r *http.Request) { o.handler.ServeHTTP(w, r) }

// Start serves the org on addr ("" means 127.0.0.1:0) and returns its base URL. If no
// InstanceURL was configured, the base URL becomes the instance URL.
func (o *Org) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sfsim listen %s: %w", addr, err)
	}
	o.url = "http://" + ln.Addr().String()
	o.mu.Lock()
	if o.instanceURL == "" {
		o.instanceURL = o.url
	}
	o.mu.Unlock()
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = o.srv.Serve(ln) }()
	return o.url, nil
}

// URL is the base URL Start is serving on ("" before Start).
func (o *Org) URL() string { return o.url }

// SetInstanceURL sets the instance URL used in token responses and Outbound Messages, e.g. to an
// httptest server's URL.
func (o *Org) SetInstanceURL(u string) {
	o.mu.Lock()
	o.instanceURL = strings.TrimRight(u, "/")
	o.mu.Unlock()
}

// Close stops outbound delivery, releases hanging requests and stops the server Start started.
func (o *Org) Close() error {
	o.stopOnce.Do(func() { close(o.stop) })
	o.om.close()
	if o.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := o.srv.Shutdown(ctx); err != nil {
			return o.srv.Close()
		}
	}
	return nil
}

var dataPath = regexp.MustCompile(`^/services/data/(v\d{2,3}\.\d)(/.*)?$`)

func (o *Org) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/services/oauth2/token", o.handleToken)
	mux.HandleFunc("/services/oauth2/authorize", o.handleAuthorize)
	mux.HandleFunc("/services/oauth2/revoke", o.handleRevoke)
	mux.HandleFunc("GET /services/oauth2/userinfo", o.handleUserInfo)
	mux.HandleFunc("GET /id/{org}/{user}", o.handleIdentity)
	mux.Handle("/services/data/", limitURI(http.HandlerFunc(o.handleData)))
	mux.Handle("/services/data", limitURI(http.HandlerFunc(o.handleData)))
	mux.Handle("/_crmsim/", o.adminRoutes())
	return mux
}

// MaxURIAndHeaders is Salesforce's limit on a REST request's URI and headers together: a longer
// URI gets 414 URI Too Long, a URI and headers longer together 431 Request Header Fields Too Large
// (a long SOQL query in ?q= is what reaches it).
const MaxURIAndHeaders = 16384

func limitURI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.RequestURI)
		if n > MaxURIAndHeaders {
			writeErr(w, http.StatusRequestURITooLong, "URI_TOO_LONG", "The request URI is too long")
			return
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > MaxURIAndHeaders {
			writeErr(w, http.StatusRequestHeaderFieldsTooLarge, "REQUEST_HEADER_FIELDS_TOO_LARGE", "The request URI and headers are too large")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// baseURL is the instance URL, or the request's own origin when none is known.
func (o *Org) baseURL(r *http.Request) string {
	o.mu.RLock()
	u := o.instanceURL
	o.mu.RUnlock()
	if u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// apiError is one element of a REST error array.
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string, fields ...string) {
	writeJSON(w, status, []apiError{{Message: msg, ErrorCode: code, Fields: fields}})
}

func (o *Org) setLimitInfo(w http.ResponseWriter) {
	used, limit := o.quota.Usage(o.now())
	if limit <= 0 {
		limit = 1 << 31
	}
	w.Header().Set("Sforce-Limit-Info", "api-usage="+strconv.FormatInt(used, 10)+"/"+strconv.FormatInt(limit, 10))
}

// handleData serves /services/data/…: versions list, then the REST resources behind latency,
// faults, auth and limits, in that order.
func (o *Org) handleData(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/services/data" || r.URL.Path == "/services/data/" {
		o.handleVersions(w, r)
		return
	}
	m := dataPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		o.setLimitInfo(w)
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	version, rest := m[1], m[2]
	if o.cfg.Latency > 0 {
		crmsim.Sleep(r.Context(), o.stop, o.cfg.Latency)
	}
	if o.injectRequestFault(w, r) {
		return
	}
	sess, ok := o.authenticate(r)
	if !ok {
		o.setLimitInfo(w)
		writeErr(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	now := o.now()
	if ok, _ := o.burst.Allow(now); !ok {
		o.log.CountRateLimited()
		o.setLimitInfo(w)
		writeErr(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
		return
	}
	if ok, _, _ := o.quota.Take(now); !ok {
		o.log.CountRateLimited()
		o.setLimitInfo(w)
		writeErr(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return
	}
	o.setLimitInfo(w)
	o.serveREST(w, r, version, rest, sess)
}

// injectRequestFault applies a request-level fault rule and reports whether it answered.
func (o *Org) injectRequestFault(w http.ResponseWriter, r *http.Request) bool {
	body, _ := peekBody(r)
	rule, ok := o.faults.Request(r.Method, r.URL.Path, body)
	if !ok {
		return false
	}
	o.log.CountFault()
	switch rule.Action {
	case crmsim.ActionLatency:
		crmsim.Sleep(r.Context(), o.stop, rule.Latency)
		return false
	case crmsim.ActionHang:
		crmsim.Hang(r.Context(), o.stop)
		return true
	case crmsim.ActionRateLimit:
		o.log.CountRateLimited()
		o.setLimitInfo(w)
		writeErr(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", cmpOr(rule.Message, "TotalRequests Limit exceeded."))
		return true
	default:
		status := cmpOr(rule.Status, http.StatusInternalServerError)
		code := cmpOr(rule.Code, "UNKNOWN_EXCEPTION")
		if status == http.StatusServiceUnavailable && rule.Code == "" {
			code = "SERVER_UNAVAILABLE"
		}
		o.setLimitInfo(w)
		writeErr(w, status, code, cmpOr(rule.Message, "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)"))
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

// authenticate checks the bearer token.
func (o *Org) authenticate(r *http.Request) (*session, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "OAuth ")
	}
	if !ok || tok == "" {
		return nil, false
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	s, found := o.tokens[tok]
	if !found || s.revoked || !o.now().Before(s.expires) {
		return nil, false
	}
	return s, true
}

func (o *Org) handleVersions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+r.Method+"' not allowed. Allowed are GET")
		return
	}
	type version struct {
		Label   string `json:"label"`
		URL     string `json:"url"`
		Version string `json:"version"`
	}
	labels := map[int]string{60: "Spring '24", 61: "Summer '24", 62: "Winter '25", 63: "Spring '25", 64: "Summer '25", 65: "Winter '26", 66: "Spring '26", 67: "Summer '26"}
	var out []version
	for v := 60; v <= 67; v++ {
		out = append(out, version{Label: labels[v], URL: fmt.Sprintf("/services/data/v%d.0", v), Version: fmt.Sprintf("%d.0", v)})
	}
	writeJSON(w, http.StatusOK, out)
}

// IssueToken mints an access token acting as userID (the integration user when empty), as if the
// token endpoint had been called. Tests use it to skip OAuth.
func (o *Org) IssueToken(userID string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if userID == "" {
		userID = o.runAsLocked()
	}
	return o.issueLocked(userID)
}

func (o *Org) issueLocked(userID string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
	tok := make([]byte, len(b))
	for i, c := range b {
		tok[i] = alpha[int(c)%len(alpha)]
	}
	t := o.cfg.OrgID[:15] + "!AQ" + string(tok)
	now := o.now()
	o.tokens[t] = &session{userID: userID, issued: now, expires: now.Add(o.cfg.TokenTTL)}
	return t
}

// runAsLocked is the user client-credentials tokens act as; o.mu held.
func (o *Org) runAsLocked() string {
	if id, ok := o.st.usernames[strings.ToLower(o.cfg.RunAsUsername)]; ok && o.cfg.RunAsUsername != "" {
		return id
	}
	return o.integrationID
}

// IntegrationUserID is the id client-credentials tokens act as and writes are attributed to
// (LastModifiedById).
func (o *Org) IntegrationUserID() string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.runAsLocked()
}

// ExpireTokens makes every issued token invalid (the next call gets 401 INVALID_SESSION_ID).
func (o *Org) ExpireTokens() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.tokens {
		s.revoked = true
	}
}

// RevokeToken makes one token invalid; it reports whether the token was known.
func (o *Org) RevokeToken(token string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.tokens[token]
	if ok {
		s.revoked = true
	}
	return ok
}

// SetDailyUsage sets today's API usage, e.g. to the limit to test REQUEST_LIMIT_EXCEEDED.
func (o *Org) SetDailyUsage(used int64) { o.quota.Set(o.now(), used) }

// SetDailyLimit changes the daily API request limit (≤ 0: unlimited).
func (o *Org) SetDailyLimit(limit int64) { o.quota.SetLimit(limit) }

// DailyUsage returns today's API usage and limit.
func (o *Org) DailyUsage() (used, limit int64) { return o.quota.Usage(o.now()) }

// peekBody returns the request body and leaves it readable for the handler.
func peekBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}
