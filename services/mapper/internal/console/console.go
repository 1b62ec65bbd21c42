// Package console is mapper's admin web console (issue 9): server-rendered pages under /admin/ over
// the same core as the admin API (domain.Admin, the tenant store, domain.DeadLetters) and the same tokens.
//
// An operator or tenant token is exchanged once for a session cookie. Sessions live in MongoDB
// (Config.Sessions, auth.Sessions: only the SHA-256 of the cookie is stored), so a cookie works
// on every mapper replica and survives a restart, and signing out on one replica ends the session
// on all (issue 15). Each request also checks the session's token again, so a revoked, expired or
// rotated-out token ends its sessions. No server key has to be configured or rotated. The cookie is HttpOnly, SameSite=Strict, Secure when the request came
// over TLS (or Config.Secure), scoped to /admin/ and expires with the session.
//
// Every form carries a CSRF token: the session's random token once signed in, and a
// double-submit cookie on the sign-in form. Pages work without JavaScript; the small embedded
// script only polls a running Sync Users run and asks for confirmations in place of the
// server-rendered confirmation pages. Everything coming from the CRMs is escaped by html/template.
//
// Wiring (mapper.Run, next to httpapi.New):
//
//	console.New(console.Config{Sessions: auth.NewSessions(db)}, svc, tenants, tokens, dlq.New(base.Bus.JS), base.Log).Register(base.HTTP.E)
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/labstack/echo/v4"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names.
const (
	SessionCookie = "ownersync_console"
	// signinCookie carries the double-submit CSRF token of the sign-in form.
	signinCookie = "ownersync_console_signin"
	cookiePath   = "/admin/"
)

// DefaultSessionTTL is how long a session lasts when Config.SessionTTL is zero.
const DefaultSessionTTL = 8 * time.Hour

// Config tunes the console.
type Config struct {
	// Secure marks cookies Secure even when the request did not arrive over TLS (TLS ends at a proxy).
	Secure bool
	// SessionTTL is a session's lifetime from sign-in (DefaultSessionTTL when zero).
	SessionTTL time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	// PlatformUserURL is where an admin fixes a platform user: "{tenant}" and "{id}" are replaced
	// by the path-escaped tenant and user id. Empty means "#" (no platform admin known).
	PlatformUserURL string
	// RunsShown is how many recent runs the Sync Users page lists (10 when zero).
	RunsShown int
	// PollInterval is how often the run page refreshes while a run is running (1 s when zero).
	PollInterval time.Duration
	// Sessions stores the sessions (auth.Sessions on mapper's database); required.
	Sessions SessionStore
	// SignInsPerSecond and SignInBurst are the global ceiling on sign-in attempts across all
	// clients (50/s, burst 500 when zero): tokens cannot be guessed, but each attempt may cost a
	// MongoDB lookup. Keep it far above one client's limit, so no single client can reach it.
	SignInsPerSecond float64
	SignInBurst      int
	// ClientSignInsPerMinute and ClientSignInBurst limit attempts per client address (10 per
	// minute, burst 10 when zero). The address is the request's RealIP: configure the trusted
	// proxies (echoserver.Options.TrustedProxies) or every client behind a proxy shares one limit.
	ClientSignInsPerMinute float64
	ClientSignInBurst      int
	// FailedTokenTries is how often one failed token may be tried (from any address) within 15
	// minutes before it is refused without a lookup (5 when zero).
	FailedTokenTries int
}

// SessionStore keeps console sessions where every replica sees them (auth.Sessions implements it).
type SessionStore interface {
	Create(ctx context.Context, s auth.Session, now time.Time) error
	// Get answers auth.ErrNoSession for an unknown, expired or signed-out id.
	Get(ctx context.Context, id string, now time.Time) (*auth.Session, error)
	Delete(ctx context.Context, id string) error
	Count(ctx context.Context, now time.Time) (int, error)
}

var _ SessionStore = (*auth.Sessions)(nil)

// TenantStore keeps tenant configurations (libs/tenantstore.Store implements it).
type TenantStore interface {
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
	List(ctx context.Context) ([]tenant.Tenant, error)
	Put(ctx context.Context, t *tenant.Tenant) error
}

// Authenticator checks admin tokens and manages tenant tokens (auth.Store implements it).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
	// AuthenticateHash checks a session's token again on every request, so that revoking,
	// expiring or rotating out a token ends the sessions opened with it.
	AuthenticateHash(ctx context.Context, h [sha256.Size]byte) (auth.Principal, error)
	MintTenantToken(ctx context.Context, tenant, createdBy string, o auth.MintOptions) (string, error)
	List(ctx context.Context, tenant string) ([]auth.TokenInfo, error)
	Revoke(ctx context.Context, tenant, id string) error
}

var _ Authenticator = (*auth.Store)(nil)

// Console serves the admin web console.
type Console struct {
	cfg     Config
	svc     domain.Admin
	tenants TenantStore
	tokens  Authenticator
	dlq     domain.DeadLetters
	log     *slog.Logger
	// pages are the parsed pages, never executed: each time zone gets its own clones (zoned).
	pages  map[string]*template.Template
	zoned  sync.Map // time zone name + "|" + page name → *template.Template
	static http.Handler

	signins  *signinLimits
	conns    Connections // the Connections page (connections.go)
	sessions SessionStore
}

type session struct {
	principal auth.Principal
	csrf      string
	expires   time.Time
	// token is the SHA-256 of the token the session was opened with (never the token).
	token [sha256.Size]byte
}

// New parses the embedded templates; it panics only if they are broken (a build defect).
func New(cfg Config, svc domain.Admin, tenants TenantStore, tokens Authenticator, dlq domain.DeadLetters, logger *slog.Logger) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RunsShown <= 0 {
		cfg.RunsShown = 10
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.SignInsPerSecond <= 0 {
		cfg.SignInsPerSecond = defaultGlobalPerSecond
	}
	if cfg.SignInBurst <= 0 {
		cfg.SignInBurst = defaultGlobalBurst
	}
	if cfg.ClientSignInsPerMinute <= 0 {
		cfg.ClientSignInsPerMinute = defaultClientPerMinute
	}
	if cfg.ClientSignInBurst <= 0 {
		cfg.ClientSignInBurst = defaultClientBurst
	}
	if cfg.FailedTokenTries <= 0 {
		cfg.FailedTokenTries = defaultFailedTokenTries
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sessions == nil {
		panic("console.New: Config.Sessions is required")
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	return &Console{
		cfg: cfg, svc: svc, tenants: tenants, tokens: tokens, dlq: dlq, log: logger,
		pages:    parsePages(),
		static:   http.StripPrefix("/admin/static/", http.FileServer(http.FS(sub))),
		sessions: cfg.Sessions,
		signins:  newSigninLimits(cfg),
	}
}

var funcs = template.FuncMap{
	"firstName":    func(n string) string { f, _, _ := strings.Cut(strings.TrimSpace(n), " "); return f },
	"lastName":     func(n string) string { _, l, _ := strings.Cut(strings.TrimSpace(n), " "); return strings.TrimSpace(l) },
	"when":         whenIn(time.UTC), // replaced per time zone (Console.page)
	"providerName": providerName,
	"crmUser":      crmUserLink,
	"crmRecord":    crmRecordLink,
	"statusIcon":   statusIcon,
	"statusWord":   statusWord,
	"join":         strings.Join,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	},
	"has": func(list []string, v string) bool {
		for _, s := range list {
			if s == v {
				return true
			}
		}
		return false
	},
}

// whenIn shows a time in loc as a <time> element whose datetime and title give it in UTC, so
// that hovering shows UTC; zero times read "—", a nil *time.Time "never".
func whenIn(loc *time.Location) func(t any) template.HTML {
	return func(t any) template.HTML {
		var v time.Time
		switch x := t.(type) {
		case time.Time:
			if x.IsZero() {
				return "—"
			}
			v = x
		case *time.Time:
			if x == nil || x.IsZero() {
				return "never"
			}
			v = *x
		default:
			return ""
		}
		u := v.UTC()
		return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `" title="` + u.Format("2006-01-02 15:04:05 UTC") + `">` +
			template.HTMLEscapeString(v.In(loc).Format("2006-01-02 15:04:05 MST")) + `</time>`)
	}
}

// page returns the named page whose times show in loc: a clone of the parsed page with its own
// "when", made once per time zone (html/template escapes a clone when it first runs).
func (c *Console) page(name string, loc *time.Location) (*template.Template, error) {
	key := loc.String() + "|" + name
	if t, ok := c.zoned.Load(key); ok {
		return t.(*template.Template), nil
	}
	base, ok := c.pages[name]
	if !ok {
		return nil, fmt.Errorf("no template %q", name)
	}
	t, err := base.Clone()
	if err != nil {
		return nil, fmt.Errorf("clone template %q: %w", name, err)
	}
	t.Funcs(template.FuncMap{"when": whenIn(loc)})
	actual, _ := c.zoned.LoadOrStore(key, t)
	return actual.(*template.Template), nil
}

func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		out[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return out
}

// providerName names a provider for people; templates pass it view fields (strings) and a tenant's
// connected providers (provider.Provider).
func providerName(p any) string {
	name := fmt.Sprint(p)
	switch provider.Provider(name) {
	case mapping.Salesforce:
		return "Salesforce"
	case mapping.HubSpot:
		return "HubSpot"
	}
	return name
}

func statusIcon(s string) string {
	switch s {
	case "synced":
		return "✓"
	case "conflict":
		return "⚠"
	case "error":
		return "✕"
	case "pending_team":
		return "…"
	}
	return "•"
}

func statusWord(s string) string {
	if s == "pending_team" {
		return "pending team"
	}
	return s
}

// Register mounts the console under /admin/ on e.
func (c *Console) Register(e *echo.Echo) {
	e.GET("/admin", func(ec echo.Context) error { return ec.Redirect(http.StatusFound, "/admin/") })
	g := e.Group("/admin", c.headers)
	g.GET("/static/*", func(ec echo.Context) error {
		if strings.HasSuffix(ec.Request().URL.Path, "/") { // no directory listings
			return c.handle(func(*req) error { return pageError(http.StatusNotFound, "There is no such page.") })(ec)
		}
		c.static.ServeHTTP(ec.Response(), ec.Request())
		return nil
	})
	g.GET("/signin", c.handle(c.signinForm))
	g.POST("/signin", c.handle(c.signin))
	g.POST("/signout", c.handle(c.signed(c.signout)))
	g.GET("/", c.handle(c.signed(c.home)))
	tg := "/t/:tenant"
	pg := tg + "/p/:provider"
	for _, r := range []struct {
		method, path string
		h            handler
	}{
		{http.MethodGet, tg + "/", c.overview},
		{http.MethodGet, pg + "/mappings", c.mappings},
		{http.MethodGet, pg + "/unmapped-platform", c.unmappedPlatform},
		{http.MethodGet, pg + "/unmapped-crm", c.unmappedCRM},
		{http.MethodGet, pg + "/errors", c.problems},
		{http.MethodGet, pg + "/errors.csv", c.problemsCSV},
		{http.MethodGet, pg + "/map", c.mapForm},
		{http.MethodPost, pg + "/map", c.mapPost},
		{http.MethodPost, pg + "/unmap", c.unmapPost},
		{http.MethodGet, tg + "/sync", c.syncPage},
		{http.MethodPost, tg + "/sync", c.syncPost},
		{http.MethodGet, tg + "/runs/:run", c.runPage},
		{http.MethodGet, tg + "/runs/:run/progress", c.runProgress},
		{http.MethodGet, tg + "/settings", c.settingsPage},
		{http.MethodPost, tg + "/settings", c.settingsPost},
		{http.MethodGet, tg + "/history", c.historyPage},
		{http.MethodGet, tg + "/dlq", c.dlqPage},
		{http.MethodGet, tg + "/failed-writes", c.failedWrites},
		{http.MethodPost, tg + "/dlq/replay", c.dlqReplay},
		{http.MethodGet, tg + "/tokens", c.operatorOnly(c.tokensPage)},
		{http.MethodPost, tg + "/tokens/mint", c.operatorOnly(c.tokensMint)},
		{http.MethodPost, tg + "/tokens/revoke", c.operatorOnly(c.tokensRevoke)},
	} {
		g.Add(r.method, r.path, c.handle(c.signed(c.inTenant(r.h))))
	}
	// Provider-less links (e.g. /admin/t/acme/mappings?provider=hubspot in report emails) lead to
	// the provider's page.
	for _, view := range []string{"mappings", "unmapped-platform", "unmapped-crm", "errors", "map"} {
		g.GET(tg+"/"+view, c.handle(c.signed(c.inTenant(c.providerRedirect(view)))))
	}
	c.registerConnections(g, tg)
	g.Any("/*", c.handle(func(r *req) error { return pageError(http.StatusNotFound, "There is no such page.") }))
}

// headers sets the security headers of every console response.
func (c *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		h := ec.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(ec.Request().URL.Path, "/admin/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(ec)
	}
}

// req is one console request: the Echo context plus the signed-in session and tenant.
type req struct {
	ec       echo.Context
	ctx      context.Context
	sess     *session
	sid      string
	tenant   *tenant.Tenant
	provider provider.Provider
}

type handler func(r *req) error

// pageErr is an error page with a status and a message safe to show.
type pageErr struct {
	status int
	msg    string
}

func (e *pageErr) Error() string { return e.msg }

func pageError(status int, format string, a ...any) error {
	return &pageErr{status: status, msg: fmt.Sprintf(format, a...)}
}

// handle turns a handler into an Echo handler that renders failures as HTML error pages.
func (c *Console) handle(h handler) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := &req{ec: ec, ctx: ec.Request().Context()}
		err := h(r)
		if err == nil {
			return nil
		}
		status, msg := http.StatusInternalServerError, "Something went wrong on our side. The error was logged; try again in a moment."
		var pe *pageErr
		switch {
		case errors.As(err, &pe):
			status, msg = pe.status, pe.msg
		case errors.Is(err, tenant.ErrNotFound):
			status, msg = http.StatusNotFound, "Not found."
		case domain.ErrorCode(err) != "":
			status = domain.HTTPStatus(domain.ErrorCode(err))
			msg = publicMessage(err, defaultMessages[status])
		default:
			c.log.ErrorContext(r.ctx, "console request failed", "path", ec.Request().URL.Path, "error", err)
		}
		return c.render(r, status, "error", "Error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
	}
}

// defaultMessages are the texts of coded errors that carry no message for the admin.
var defaultMessages = map[int]string{
	http.StatusNotFound:           "Not found.",
	http.StatusConflict:           "That conflicts with the current state.",
	http.StatusBadRequest:         "The request was not valid.",
	http.StatusServiceUnavailable: "Busy; try again in a moment.",
}

// publicMessage returns the message of a coded error made for the admin (domain.Errorf), or def when the
// error only wraps a sentinel (its text may hold internals).
func publicMessage(err error, def string) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if isPublic(e) {
			return e.Error()
		}
	}
	return def
}

// isPublic reports whether e is a coded error whose message is meant for admins.
func isPublic(e error) bool {
	u := errors.Unwrap(e)
	if u != domain.ErrNotFound && u != domain.ErrConflict && u != domain.ErrInvalid {
		return false
	}
	// domain.Errorf returns a type whose Error is exactly the message; wrapping with
	// fmt.Errorf would yield "context: not found" instead, which ends in the sentinel's text.
	return !strings.HasSuffix(e.Error(), ": "+u.Error())
}

// signed requires a live session; without one a GET goes to the sign-in page.
func (c *Console) signed(h handler) handler {
	return func(r *req) error {
		ck, err := r.ec.Cookie(SessionCookie)
		if err == nil {
			r.sid = ck.Value
			if r.sess, err = c.lookup(r.ctx, ck.Value); err != nil {
				return err
			}
		}
		if r.sess != nil {
			// The token must still be valid: revoked, expired or rotated out ends the session.
			p, err := c.tokens.AuthenticateHash(r.ctx, r.sess.token)
			switch {
			case errors.Is(err, auth.ErrUnauthenticated):
				if err := c.endSession(r.ctx, r.sid); err != nil {
					return err
				}
				r.sess = nil
			case err != nil:
				return err
			default:
				r.sess.principal = p
			}
		}
		if r.sess == nil {
			if r.ec.Request().Method == http.MethodGet {
				next := r.ec.Request().URL.RequestURI()
				return r.ec.Redirect(http.StatusSeeOther, "/admin/signin?next="+url.QueryEscape(next))
			}
			return pageError(http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		if r.ec.Request().Method == http.MethodPost {
			// Only from the form body: a token in the query string leaks through logs and Referer.
			got := r.ec.Request().PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(r.sess.csrf)) != 1 {
				return pageError(http.StatusForbidden, "The form had expired or did not come from this console. Go back, reload the page and try again.")
			}
		}
		return h(r)
	}
}

// inTenant loads the tenant of the path after checking the principal may see it.
func (c *Console) inTenant(h handler) handler {
	return func(r *req) error {
		id := r.ec.Param("tenant")
		if !r.sess.principal.CanAccess(id) {
			return pageError(http.StatusForbidden, "You cannot see this tenant with the token you signed in with.")
		}
		t, err := c.tenants.Get(r.ctx, id)
		if errors.Is(err, tenant.ErrNotFound) {
			return pageError(http.StatusNotFound, "There is no tenant %q.", id)
		}
		if err != nil {
			return err
		}
		r.tenant = t
		if name := r.ec.Param("provider"); name != "" || strings.Contains(r.ec.Path(), ":provider") {
			p, ok := provider.Parse(name)
			if !ok {
				return pageError(http.StatusNotFound, "Unknown provider %q.", name)
			}
			if _, ok := t.ProviderSettings(p); !ok {
				return pageError(http.StatusNotFound, "%s is not connected for this tenant.", providerName(p))
			}
			r.provider = p
		}
		return h(r)
	}
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// lookup returns the live session of id, nil when there is none.
func (c *Console) lookup(ctx context.Context, id string) (*session, error) {
	if id == "" {
		return nil, nil
	}
	s, err := c.sessions.Get(ctx, id, c.cfg.Now())
	if errors.Is(err, auth.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &session{principal: s.Principal, csrf: s.CSRF, expires: s.Expires, token: s.TokenHash}, nil
}

func (c *Console) newSession(ctx context.Context, p auth.Principal, token [sha256.Size]byte) (string, error) {
	id := randomToken()
	s := auth.Session{ID: id, Principal: p, TokenHash: token, CSRF: randomToken(), Expires: c.cfg.Now().Add(c.cfg.SessionTTL)}
	if err := c.sessions.Create(ctx, s, c.cfg.Now()); err != nil {
		return "", err
	}
	return id, nil
}

func (c *Console) endSession(ctx context.Context, id string) error {
	return c.sessions.Delete(ctx, id)
}

// SessionCount is the number of live sessions (tests and metrics).
func (c *Console) SessionCount() int {
	n, err := c.sessions.Count(context.Background(), c.cfg.Now())
	if err != nil {
		return -1
	}
	return n
}

func (c *Console) secure(ec echo.Context) bool {
	return c.cfg.Secure || ec.Request().TLS != nil || ec.Scheme() == "https"
}

func (c *Console) setCookie(ec echo.Context, name, value string, maxAge int) {
	ec.SetCookie(&http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(ec), SameSite: http.SameSiteStrictMode})
}

// page is what every template receives.
type page struct {
	Title     string
	Principal auth.Principal
	Signed    bool
	CSRF      string
	Tenant    *tenant.Tenant
	Provider  provider.Provider
	Providers []provider.Provider
	Nav       string
	LastSync  *runView
	Running   *runView
	Flash     string
	Refresh   int
	Data      any
}

func (c *Console) render(r *req, status int, name, title string, data any) error {
	loc := time.UTC
	if r.tenant != nil {
		loc = r.tenant.Location()
	}
	t, err := c.page(name, loc)
	if err != nil {
		return err
	}
	p := page{Title: title, Data: data, Provider: r.provider, Tenant: r.tenant, Nav: name}
	if r.sess != nil {
		p.Principal, p.Signed, p.CSRF = r.sess.principal, true, r.sess.csrf
	}
	if r.tenant != nil {
		for _, pr := range mapping.Providers {
			if _, ok := r.tenant.ProviderSettings(pr); ok {
				p.Providers = append(p.Providers, pr)
			}
		}
		// The last sync time is on every tenant page; a failure here must not hide the page.
		if rs, err := c.svc.Runs(r.ctx, r.tenant.ID, 10); err == nil {
			runs := runViews(rs)
			for i := range runs {
				if runs[i].State == "running" && p.Running == nil {
					p.Running = &runs[i]
				}
				if runs[i].FinishedAt != nil && p.LastSync == nil {
					p.LastSync = &runs[i]
				}
			}
		} else {
			c.log.WarnContext(r.ctx, "console: list runs for header", "tenant", r.tenant.ID, "error", err)
		}
	}
	if f, ok := flashes[r.ec.QueryParam("done")]; ok {
		p.Flash = f
	}
	if m, ok := data.(map[string]any); ok {
		if v, ok := m["Refresh"].(int); ok {
			p.Refresh = v
		}
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return r.ec.HTML(status, b.String())
}

// flashes are the fixed confirmations a redirect may ask for (?done=…); never free text.
var flashes = map[string]string{
	"mapped":    "The users are now mapped.",
	"unmapped":  "The mapping was removed.",
	"saved":     "Settings saved.",
	"replayed":  "The dead letters were replayed.",
	"signedout": "You are signed out.",
	"already":   "A Sync Users run was already running; this is that run.",
	"revoked":   "The token was revoked; sessions opened with it have ended.",
}
