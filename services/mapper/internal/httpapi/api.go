package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	mapperapi "github.com/ownersync/ownersync/services/mapper/api"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Config tunes the API; zero values take the defaults.
type Config struct {
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	// RunsLimit is the number of runs listed when the request names none (at most 100).
	RunsLimit int
	// DLQLimit is the number of dead letters listed when the request names none (at most 1000).
	DLQLimit int
	// SalesforceWebhookURL is ingress's public Outbound Message endpoint
	// (OWNERSYNC_INGRESS_URL + /webhooks/salesforce); a generated key is shown with it.
	SalesforceWebhookURL string
	// KeyOverlap is how long a rotated-out Outbound Message key stays valid when the request
	// names no overlap (OWNERSYNC_SHARED_KEY_OVERLAP, 72h).
	KeyOverlap time.Duration
}

// maxKeyOverlap bounds a rotation's overlap: the old key must not live on indefinitely.
const maxKeyOverlap = 30 * 24 * time.Hour

// API is mapper's admin API.
type API struct {
	cfg     Config
	svc     coreService
	tenants TenantStore
	tokens  TokenStore
	dlq     DeadLetters
	log     *slog.Logger
}

// New builds the API over the mapper core (app.Service implements domain.Admin; the API converts
// its domain types to the JSON shapes of this package). Every dependency is required, and cfg is
// used as it is (config.Load holds the defaults); logger may be nil (discard).
func New(cfg Config, core domain.Admin, tenants TenantStore, tokens TokenStore, dlq DeadLetters, logger *slog.Logger) *API {
	if core == nil || tenants == nil || tokens == nil || dlq == nil {
		panic("httpapi.New: service, tenant store, token store and dead letters are required")
	}
	if cfg.MaxBodyBytes <= 0 || cfg.RunsLimit <= 0 || cfg.DLQLimit <= 0 || cfg.KeyOverlap <= 0 || cfg.KeyOverlap > maxKeyOverlap {
		panic(fmt.Sprintf("httpapi.New: limits out of range (take them from config.Load): %+v", cfg))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, svc: coreService{core}, tenants: tenants, tokens: tokens, dlq: dlq, log: logger}
}

// Limits of list parameters.
const (
	maxRunsLimit = 100
	maxDLQLimit  = 1000
	maxQLen      = 200
	maxIDLen     = 128
)

// Register adds every admin route to e. Errors are *echoserver.APIError values, rendered by the
// echoserver error handler as {"error":{"code","message"}}. Routes are added one by one (no Echo
// group) so that no catch-all route under /v1 shadows other services' routes.
func (a *API) Register(e *echo.Echo) {
	e.GET("/v1/openapi.yaml", a.openAPI)
	for _, r := range a.routes() {
		mw := []echo.MiddlewareFunc{a.logRequests, a.authenticate}
		if r.operator {
			mw = append(mw, a.operatorOnly)
		}
		if strings.HasPrefix(r.path, "/v1/tenants/:tenant") {
			mw = append(mw, a.tenantScope)
		}
		e.Add(r.method, r.path, r.h, mw...)
	}
}

type route struct {
	method, path string
	h            echo.HandlerFunc
	operator     bool
}

func (a *API) routes() []route {
	const t = "/v1/tenants/:tenant"
	return []route{
		{http.MethodGet, "/v1/tenants", a.listTenants, true},
		{http.MethodGet, t, a.getTenant, false},
		{http.MethodPut, t, a.putTenant, false},
		{http.MethodPatch, t, a.patchTenant, false},
		{http.MethodPost, t + "/tokens", a.mintToken, true},
		{http.MethodPost, t + "/salesforce/shared-key", a.rotateSharedKey, false},
		{http.MethodGet, t + "/tokens", a.listTokens, true},
		{http.MethodDelete, t + "/tokens/:id", a.revokeToken, true},
		{http.MethodGet, t + "/users/overview", a.overview, false},
		{http.MethodGet, t + "/mappings", a.listMappings, false},
		{http.MethodPut, t + "/mappings/:provider/:platformUserId", a.mapManually, false},
		{http.MethodDelete, t + "/mappings/:provider/:platformUserId", a.unmap, false},
		{http.MethodGet, t + "/unmapped/platform-users", a.unmappedPlatform, false},
		{http.MethodGet, t + "/unmapped/crm-users", a.unmappedCRM, false},
		{http.MethodGet, t + "/errors", a.errors, false},
		{http.MethodPost, t + "/sync-users", a.startSync, false},
		{http.MethodGet, t + "/sync-runs", a.listRuns, false},
		{http.MethodGet, t + "/sync-runs/:id", a.getRun, false},
		{http.MethodGet, t + "/records/:provider/:type/:id/history", a.recordHistory, false},
		{http.MethodGet, t + "/dlq", a.listDLQ, false},
		{http.MethodPost, t + "/dlq/replay", a.replayDLQ, false},
	}
}

const principalKey = "ownersync.principal"

func principal(c echo.Context) auth.Principal {
	p, _ := c.Get(principalKey).(auth.Principal)
	return p
}

// logRequests logs one line per request: method, route, status, duration and the token id — never
// the Authorization header, bodies or query values that could carry secrets.
func (a *API) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		var ae *echoserver.APIError
		var he *echo.HTTPError
		switch {
		case errors.As(err, &ae):
			status = ae.Status
		case errors.As(err, &he):
			status = he.Code
		case err != nil:
			status = http.StatusInternalServerError
		}
		p := principal(c)
		// client is RealIP: the connection's address, or X-Forwarded-For from a trusted proxy only
		// (echoserver.ClientIP).
		attrs := []any{"method", c.Request().Method, "route", c.Path(), "status", status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "client", c.RealIP()}
		if p.TokenID != "" {
			attrs = append(attrs, "actor", p.Actor())
		}
		if tn := c.Param("tenant"); tn != "" && tenant.ValidID(tn) {
			attrs = append(attrs, "tenant", tn)
		}
		a.log.InfoContext(c.Request().Context(), "admin request", attrs...)
		return err
	}
}

func (a *API) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := auth.BearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="ownersync"`)
			return echoserver.Errorf(http.StatusUnauthorized, "unauthenticated", "missing bearer token")
		}
		p, err := a.tokens.Authenticate(c.Request().Context(), tok)
		if errors.Is(err, auth.ErrUnauthenticated) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="ownersync", error="invalid_token"`)
			return echoserver.Errorf(http.StatusUnauthorized, "unauthenticated", "invalid bearer token")
		}
		if err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

func (a *API) operatorOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principal(c).Operator {
			return echoserver.Errorf(http.StatusForbidden, "forbidden", "this route needs the operator token")
		}
		return next(c)
	}
}

// tenantScope validates the tenant id and checks that the principal may act on it.
func (a *API) tenantScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		t := c.Param("tenant")
		if !tenant.ValidID(t) {
			return echoserver.Errorf(http.StatusBadRequest, "invalid_tenant", "tenant id must match [a-z0-9][a-z0-9_-]{0,62}")
		}
		if !principal(c).CanAccess(t) {
			return echoserver.Errorf(http.StatusForbidden, "forbidden", "this token may not access tenant %s", t)
		}
		return next(c)
	}
}

// requireTenant returns 404 when the route's tenant is not configured.
func (a *API) requireTenant(c echo.Context) (string, error) {
	t := c.Param("tenant")
	if _, err := a.tenants.Get(c.Request().Context(), t); err != nil {
		return "", a.fail(err)
	}
	return t, nil
}

// fail turns a service error into an API error; unknown errors become 500s (logged by echoserver).
func (a *API) fail(err error) error {
	var ve *tenant.ValidationError
	var sc *tenant.SourceClaimedError
	switch {
	case errors.As(err, &sc):
		// The holder is logged for the operator, never named in the answer.
		a.log.Warn("tenant configuration refused: source connected to another tenant", "source", sc.Source, "holder", sc.Holder)
		return echoserver.Errorf(http.StatusConflict, "source_claimed", "%s is already connected to another tenant; "+
			"one org or portal serves one tenant (its webhooks are routed by it)", sc.Source)
	case errors.As(err, &ve):
		return echoserver.Errorf(http.StatusBadRequest, "invalid_tenant_config", "%s", strings.Join(ve.Problems, "; "))
	case errors.Is(err, tenant.ErrNotFound):
		return echoserver.Errorf(http.StatusNotFound, "tenant_not_found", "tenant not found")
	case errors.Is(err, context.DeadlineExceeded):
		return echoserver.Errorf(http.StatusGatewayTimeout, "timeout", "the request took too long")
	}
	if code := domain.ErrorCode(err); code != "" {
		return echoserver.Errorf(domain.HTTPStatus(code), string(code), "%s", PublicMessage(err))
	}
	return err
}

// PublicMessage is the admin-facing text of a coded error: the message of the first domain.Error
// made for the admin (Invalid, NotFound, Conflict, domain.Errorf), or, when err only wraps a
// sentinel, err's whole text.
func PublicMessage(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if de, ok := e.(*domain.Error); ok {
			if !domain.IsSentinel(de) {
				return de.Message
			}
			break
		}
	}
	return err.Error()
}

func badRequest(code, format string, a ...any) error {
	return echoserver.Errorf(http.StatusBadRequest, code, format, a...)
}

// decodeBody reads a JSON body strictly: size-capped, known fields only, one value.
func (a *API) decodeBody(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct = strings.ToLower(ct); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) && !strings.HasPrefix(ct, mimeMergePatch) {
		return echoserver.Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
	}
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, a.cfg.MaxBodyBytes+1))
	if err != nil {
		return badRequest("invalid_body", "cannot read the body")
	}
	if int64(len(b)) > a.cfg.MaxBodyBytes {
		return echoserver.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds %d bytes", a.cfg.MaxBodyBytes)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return badRequest("invalid_body", "a JSON body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid_body", "invalid JSON body: %s", jsonProblem(err))
	}
	if dec.More() {
		return badRequest("invalid_body", "the body must hold one JSON value")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the values of the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return "malformed"
}

// --- parameter validation ---

func providerParam(v string, optional bool) (provider.Provider, error) {
	if p, ok := provider.Parse(v); ok {
		return p, nil
	}
	switch v {
	case "":
		if optional {
			return "", nil
		}
	}
	return "", badRequest("invalid_provider", "provider must be salesforce or hubspot")
}

var safeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]*$`)

// platformUserIDParam accepts the platform's opaque ids: printable, no spaces, ≤128 characters.
func platformUserIDParam(v string) (string, error) {
	if v == "" || len(v) > maxIDLen || !safeIDRE.MatchString(v) {
		return "", badRequest("invalid_platform_user_id", "platform user id must be 1-%d characters of letters, digits and ._:@+-", maxIDLen)
	}
	return v, nil
}

var digitsRE = regexp.MustCompile(`^[0-9]{1,20}$`)

// crmIDParam validates a CRM id of the given Salesforce key prefixes (normalised to 18
// characters) or a HubSpot numeric id.
func crmIDParam(provider provider.Provider, v, what string, prefixes ...string) (string, error) {
	switch provider {
	case mapping.Salesforce:
		id, err := sfid.To18(v)
		ok := err == nil
		if ok {
			ok = false
			for _, p := range prefixes {
				ok = ok || sfid.Prefix(id) == p
			}
		}
		if !ok {
			return "", badRequest("invalid_"+strings.ReplaceAll(what, " ", "_"), "%s must be a 15- or 18-character Salesforce id starting with %s", what, strings.Join(prefixes, " or "))
		}
		return id, nil
	default:
		if !digitsRE.MatchString(v) {
			return "", badRequest("invalid_"+strings.ReplaceAll(what, " ", "_"), "%s must be a numeric HubSpot id", what)
		}
		return v, nil
	}
}

func intParam(c echo.Context, name string, def, min, max int, capMax bool) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		return 0, badRequest("invalid_"+name, "%s must be an integer ≥ %d", name, min)
	}
	if n > max {
		if !capMax {
			return 0, badRequest("invalid_"+name, "%s must be at most %d", name, max)
		}
		n = max
	}
	return n, nil
}

func boolParam(c echo.Context, name string) (bool, error) {
	s := c.QueryParam(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("invalid_"+name, "%s must be true or false", name)
	}
	return b, nil
}

// --- handlers ---

func (a *API) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", mapperapi.OpenAPI)
}

// tenantList is GET /v1/tenants.
type tenantList struct {
	Items []tenant.Tenant `json:"items"`
}

func (a *API) listTenants(c echo.Context) error {
	ts, err := a.tenants.List(c.Request().Context())
	if err != nil {
		return a.fail(err)
	}
	if ts == nil {
		ts = []tenant.Tenant{}
	}
	for i := range ts {
		ts[i].MarkKeyMissing()
	}
	return c.JSON(http.StatusOK, tenantList{Items: ts})
}

func (a *API) getTenant(c echo.Context) error {
	t, err := a.tenants.Get(c.Request().Context(), c.Param("tenant"))
	if err != nil {
		return a.fail(err)
	}
	// An enabled Salesforce connection without an Outbound Message key is flagged
	// (salesforce.shared_key_missing): ingress refuses its messages; rotate to generate one.
	cp := *t
	if t.Salesforce != nil {
		sf := *t.Salesforce
		cp.Salesforce = &sf
	}
	cp.MarkKeyMissing()
	return c.JSON(http.StatusOK, &cp)
}

// putTenant creates (operator only) or replaces a tenant's configuration. Secrets must be
// references (env:NAME, file:/path); tenant.Validate refuses literal values. A replacement that
// omits a connected provider is refused (409 connection_removal): a PUT {} must not disconnect
// both CRMs by accident; PATCH {"salesforce": null} removes a connection explicitly.
func (a *API) putTenant(c echo.Context) error {
	id := c.Param("tenant")
	var t tenant.Tenant
	if err := a.decodeBody(c, &t); err != nil {
		return err
	}
	if t.ID == "" {
		t.ID = id
	}
	if t.ID != id {
		return badRequest("id_mismatch", "the body's id must equal the tenant in the path")
	}
	ctx := c.Request().Context()
	prev, err := a.tenants.Get(ctx, id)
	if errors.Is(err, tenant.ErrNotFound) {
		if !principal(c).Operator {
			return echoserver.Errorf(http.StatusForbidden, "forbidden", "only the operator may create a tenant")
		}
		return a.saveTenant(c, nil, &t, http.StatusCreated)
	} else if err != nil {
		return a.fail(err)
	}
	t.Normalize()
	if err := a.mayChange(c, prev, &t); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return a.fail(err) // every problem first; then whether it drops a connection
	}
	if gone := tenant.RemovedConnections(prev, &t); len(gone) > 0 {
		return echoserver.Errorf(http.StatusConflict, "connection_removal",
			"this PUT omits %s, which tenant %s has connected; send the whole configuration (GET it first), change part of it with PATCH, "+
				"or remove a connection explicitly with PATCH {\"%s\":null} and the operator token", strings.Join(gone, " and "), id, gone[0])
	}
	return a.saveTenant(c, prev, &t, http.StatusOK)
}

// mimeMergePatch is the media type of a JSON merge patch (RFC 7396), accepted besides
// application/json by PATCH.
const mimeMergePatch = "application/merge-patch+json"

// patchTenant changes part of a tenant's configuration: the body is a JSON merge patch (RFC 7396)
// of the configuration GET returns — members replace, objects merge, null removes (a provider
// section set to null removes that connection, operator only).
func (a *API) patchTenant(c echo.Context) error {
	id := c.Param("tenant")
	var patch any
	if err := a.decodeBody(c, &patch); err != nil {
		return err
	}
	obj, ok := patch.(map[string]any)
	if !ok {
		return badRequest("invalid_body", "a PATCH body must be a JSON object (a merge patch of the tenant configuration)")
	}
	if v, ok := obj["id"]; ok && v != id {
		return badRequest("id_mismatch", "the body's id must equal the tenant in the path")
	}
	ctx := c.Request().Context()
	prev, err := a.tenants.Get(ctx, id)
	if err != nil {
		return a.fail(err)
	}
	b, err := json.Marshal(prev)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	merged, err := json.Marshal(mergePatch(doc, obj))
	if err != nil {
		return err
	}
	var t tenant.Tenant
	dec := json.NewDecoder(strings.NewReader(string(merged)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return badRequest("invalid_body", "invalid patch: %s", jsonProblem(err))
	}
	t.ID = id
	t.Normalize()
	if err := a.mayChange(c, prev, &t); err != nil {
		return err
	}
	return a.saveTenant(c, prev, &t, http.StatusOK)
}

// mergePatch applies a JSON merge patch (RFC 7396) to doc and returns the result.
func mergePatch(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = mergePatch(d[k], v)
	}
	return d
}

// mayChange refuses a tenant token's change of a connection field (issue 13 item 1): the ids that
// route webhooks, the URLs ownersync calls, the auth and the secret references are the operator's.
func (a *API) mayChange(c echo.Context, prev, next *tenant.Tenant) error {
	if principal(c).Operator {
		return nil
	}
	if fields := tenant.ConnectionChanges(prev, next); len(fields) > 0 {
		return echoserver.Errorf(http.StatusForbidden, "connection_fields",
			"a tenant token may change only behaviour settings (%s); %s need the operator token",
			tenant.BehaviourFields, strings.Join(fields, ", "))
	}
	return nil
}

// savedTenant is the answer of a save: the configuration, and the Outbound Message key when the
// save generated one (shown this once; only its digest is stored).
type savedTenant struct {
	*tenant.Tenant
	SharedKey *sharedKey `json:"salesforce_shared_key,omitempty"`
}

// sharedKey is a generated Outbound Message key with the endpoint URL that carries it.
type sharedKey struct {
	Key        string `json:"key"`
	WebhookURL string `json:"webhook_url"`
	// PreviousValidUntil is when the key it replaced stops being accepted (rotation only).
	PreviousValidUntil *time.Time `json:"previous_key_valid_until,omitempty"`
}

// needsKey reports whether a save must generate the Salesforce connection's Outbound Message key
// (issue 13 item 3): an enabled connection without one that is new or newly enabled. An enabled
// connection saved without its key keeps the stored one (keepKey): a key changes only by rotation,
// which keeps the old one valid for an overlap. A connection stored without a key before keys were
// generated keeps none until it is rotated (ingress refuses its messages while
// OWNERSYNC_REQUIRE_SHARED_KEY is on).
func needsKey(prev, next *tenant.Tenant) bool {
	sf := next.Salesforce
	if sf == nil || !sf.Enabled || sf.SharedKeyRef != "" {
		return false
	}
	return prev == nil || prev.Salesforce == nil || !prev.Salesforce.Enabled
}

// keepKey carries the stored keys into an enabled connection saved without any.
func keepKey(prev, next *tenant.Tenant) {
	if prev == nil || prev.Salesforce == nil || next.Salesforce == nil || !next.Salesforce.Enabled || next.Salesforce.SharedKeyRef != "" {
		return
	}
	p, n := prev.Salesforce, next.Salesforce
	n.SharedKeyRef, n.SharedKeyCreatedAt, n.PreviousSharedKeyRef, n.PreviousSharedKeyUntil = p.SharedKeyRef, p.SharedKeyCreatedAt, p.PreviousSharedKeyRef, p.PreviousSharedKeyUntil
}

// newKey generates the connection's key with tenant.RotateSharedKey (the one generation path, as
// the console's Rotate key and Connect Salesforce) and returns the answer that shows it once.
func (a *API) newKey(sf *tenant.SFConfig, overlap time.Duration) (*sharedKey, error) {
	key, until, err := tenant.RotateSharedKey(sf, time.Now(), overlap)
	if err != nil {
		return nil, err
	}
	answer := &sharedKey{Key: key, WebhookURL: a.cfg.SalesforceWebhookURL + "?key=" + key}
	if !until.IsZero() {
		answer.PreviousValidUntil = &until
	}
	return answer, nil
}

func (a *API) saveTenant(c echo.Context, prev, t *tenant.Tenant, status int) error {
	ctx := c.Request().Context()
	var generated *sharedKey
	keepKey(prev, t)
	if needsKey(prev, t) {
		answer, err := a.newKey(t.Salesforce, 0)
		if err != nil {
			return err
		}
		generated = answer
	}
	if err := a.tenants.Put(ctx, t); err != nil {
		return a.fail(err)
	}
	attrs := []any{"tenant", t.ID, "actor", principal(c).Actor()}
	if prev != nil {
		if ch := tenant.ConnectionChanges(prev, t); len(ch) > 0 {
			attrs = append(attrs, "connection_fields", ch)
		}
	}
	if generated != nil {
		attrs = append(attrs, "shared_key", "generated")
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	a.log.InfoContext(ctx, "tenant configuration saved", attrs...)
	return c.JSON(status, savedTenant{Tenant: t, SharedKey: generated})
}

// rotateSharedKey generates a new Outbound Message key for the tenant's Salesforce connection and
// answers it once with the webhook URL. The key it replaces stays valid for the overlap (query
// parameter overlap, a duration; default Config.KeyOverlap, at most 30 days) so that the org's
// Outbound Messages can be moved to the new URL one by one; a key that was already being rotated
// out is dropped. Tenant tokens may rotate their own key: the tenant's Salesforce admin is who
// updates the Outbound Message endpoints.
func (a *API) rotateSharedKey(c echo.Context) error {
	overlap := a.cfg.KeyOverlap
	if s := c.QueryParam("overlap"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxKeyOverlap {
			return badRequest("invalid_overlap", "overlap must be a duration from 0s to %s, e.g. 72h", maxKeyOverlap)
		}
		overlap = d
	}
	ctx := c.Request().Context()
	t, err := a.tenants.Get(ctx, c.Param("tenant"))
	if err != nil {
		return a.fail(err)
	}
	if t.Salesforce == nil {
		return echoserver.Errorf(http.StatusConflict, "salesforce_not_connected", "tenant %s has no Salesforce connection", t.ID)
	}
	sf := *t.Salesforce
	answer, err := a.newKey(&sf, overlap)
	if err != nil {
		return err
	}
	t.Salesforce = &sf
	if err := a.tenants.Put(ctx, t); err != nil {
		return a.fail(err)
	}
	a.log.InfoContext(ctx, "salesforce shared key rotated", "tenant", t.ID, "actor", principal(c).Actor(), "overlap", overlap.String())
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, answer)
}

func (a *API) overview(c echo.Context) error {
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	o, err := a.svc.Overview(c.Request().Context(), t)
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, o)
}

var mappingStatuses = map[string]bool{"": true, "synced": true, "conflict": true, "error": true, "pending_team": true}

func (a *API) listMappings(c echo.Context) error {
	provider, err := providerParam(c.QueryParam("provider"), true)
	if err != nil {
		return err
	}
	status := c.QueryParam("status")
	if !mappingStatuses[status] {
		return badRequest("invalid_status", "status must be synced, conflict, error or pending_team")
	}
	q := strings.TrimSpace(c.QueryParam("q"))
	if utf8.RuneCountInString(q) > maxQLen || !utf8.ValidString(q) {
		return badRequest("invalid_q", "q must be valid UTF-8 of at most %d characters", maxQLen)
	}
	page, err := intParam(c, "page", 1, 1, 1_000_000, false)
	if err != nil {
		return err
	}
	perPage, err := intParam(c, "per_page", DefaultPerPage, 1, MaxPerPage, true)
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	res, err := a.svc.ListMappings(c.Request().Context(), t, MappingQuery{Provider: provider, Status: status, Q: q, Page: page, PerPage: perPage})
	if err != nil {
		return a.fail(err)
	}
	if res.Items == nil {
		res.Items = []Mapping{}
	}
	res.Page, res.PerPage = page, perPage
	return c.JSON(http.StatusOK, res)
}

// mapRequest is the body of PUT /v1/tenants/{t}/mappings/{provider}/{platformUserId}.
type mapRequest struct {
	CRMUserID string `json:"crm_user_id"`
}

func (a *API) mapManually(c echo.Context) error {
	provider, err := providerParam(c.Param("provider"), false)
	if err != nil {
		return err
	}
	pu, err := platformUserIDParam(c.Param("platformUserId"))
	if err != nil {
		return err
	}
	var body mapRequest
	if err := a.decodeBody(c, &body); err != nil {
		return err
	}
	crm, err := crmIDParam(provider, strings.TrimSpace(body.CRMUserID), "crm user id", sfid.PrefixUser)
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	m, err := a.svc.MapManually(c.Request().Context(), t, provider, pu, crm, principal(c).Actor())
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, m)
}

func (a *API) unmap(c echo.Context) error {
	provider, err := providerParam(c.Param("provider"), false)
	if err != nil {
		return err
	}
	pu, err := platformUserIDParam(c.Param("platformUserId"))
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	if err := a.svc.Unmap(c.Request().Context(), t, provider, pu, principal(c).Actor()); err != nil {
		return a.fail(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// userList and problemList wrap lists so that the answers can grow fields.
type userList struct {
	Items []UnmappedUser `json:"items"`
}

type problemList struct {
	Items []Problem `json:"items"`
}

func (a *API) unmappedPlatform(c echo.Context) error {
	return a.unmapped(c, a.svc.UnmappedPlatformUsers)
}

func (a *API) unmappedCRM(c echo.Context) error { return a.unmapped(c, a.svc.UnmappedCRMUsers) }

func (a *API) unmapped(c echo.Context, get func(context.Context, string, provider.Provider) ([]UnmappedUser, error)) error {
	provider, err := providerParam(c.QueryParam("provider"), true)
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	us, err := get(c.Request().Context(), t, provider)
	if err != nil {
		return a.fail(err)
	}
	if us == nil {
		us = []UnmappedUser{}
	}
	return c.JSON(http.StatusOK, userList{Items: us})
}

func (a *API) errors(c echo.Context) error {
	provider, err := providerParam(c.QueryParam("provider"), true)
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	ps, err := a.svc.Errors(c.Request().Context(), t, provider)
	if err != nil {
		return a.fail(err)
	}
	if ps == nil {
		ps = []Problem{}
	}
	return c.JSON(http.StatusOK, problemList{Items: ps})
}

// startSync answers 202 with a new run, or 200 with the tenant's running one.
func (a *API) startSync(c echo.Context) error {
	dry, err := boolParam(c, "dry_run")
	if err != nil {
		return err
	}
	email, err := boolParam(c, "email_report")
	if err != nil {
		return err
	}
	if email && !dry {
		return badRequest("invalid_email_report", "email_report applies to dry runs only (other runs are emailed whenever the tenant's reports are on)")
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	run, created, err := a.svc.StartSync(c.Request().Context(), t, SyncRequest{DryRun: dry, EmailReport: email, Trigger: "api", Actor: principal(c).Actor()})
	if err != nil {
		return a.fail(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tenants/"+t+"/sync-runs/"+run.ID)
	if created {
		return c.JSON(http.StatusAccepted, run)
	}
	return c.JSON(http.StatusOK, run)
}

type runList struct {
	Items []Run `json:"items"`
}

func (a *API) listRuns(c echo.Context) error {
	limit, err := intParam(c, "limit", min(a.cfg.RunsLimit, maxRunsLimit), 1, maxRunsLimit, true)
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	rs, err := a.svc.Runs(c.Request().Context(), t, limit)
	if err != nil {
		return a.fail(err)
	}
	if rs == nil {
		rs = []Run{}
	}
	return c.JSON(http.StatusOK, runList{Items: rs})
}

func (a *API) getRun(c echo.Context) error {
	id := c.Param("id")
	if id == "" || len(id) > maxIDLen || !safeIDRE.MatchString(id) {
		return badRequest("invalid_run_id", "run id must be 1-%d characters of letters, digits and ._:@+-", maxIDLen)
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	r, err := a.svc.Run(c.Request().Context(), t, id)
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, r)
}

type historyList struct {
	Items []HistoryEntry `json:"items"`
}

func (a *API) recordHistory(c echo.Context) error {
	provider, err := providerParam(c.Param("provider"), false)
	if err != nil {
		return err
	}
	rt := c.Param("type")
	var prefix string
	switch {
	case rt == "contact":
		prefix = sfid.PrefixContact
	case rt == "lead" && provider == mapping.Salesforce:
		prefix = sfid.PrefixLead
	default:
		return badRequest("invalid_record_type", "record type must be contact or lead (lead only for salesforce)")
	}
	id, err := crmIDParam(provider, c.Param("id"), "record id", prefix)
	if err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	hs, err := a.svc.RecordHistory(c.Request().Context(), t, provider, rt, id)
	if err != nil {
		return a.fail(err)
	}
	if hs == nil {
		hs = []HistoryEntry{}
	}
	return c.JSON(http.StatusOK, historyList{Items: hs})
}

var serviceRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// validSubjectFilter accepts a NATS subject with * and > wildcards (> only last).
func validSubjectFilter(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
		if t == ">" && i != len(toks)-1 {
			return false
		}
		if strings.ContainsAny(t, "*>") && len(t) > 1 {
			return false
		}
	}
	return true
}

func dlqFilter(service, subject string) (DLQFilter, error) {
	if service != "" && !serviceRE.MatchString(service) {
		return DLQFilter{}, badRequest("invalid_service", "service must be a service name such as mapper or writer")
	}
	if subject != "" && !validSubjectFilter(subject) {
		return DLQFilter{}, badRequest("invalid_subject", "subject must be a NATS subject filter (tokens separated by dots, * and a final >)")
	}
	return DLQFilter{Service: service, Subject: subject}, nil
}

type deadLetterList struct {
	Items []DeadLetter `json:"items"`
}

func (a *API) listDLQ(c echo.Context) error {
	f, err := dlqFilter(c.QueryParam("service"), c.QueryParam("subject"))
	if err != nil {
		return err
	}
	if f.Limit, err = intParam(c, "limit", min(a.cfg.DLQLimit, maxDLQLimit), 1, maxDLQLimit, true); err != nil {
		return err
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	ls, err := a.dlq.List(c.Request().Context(), t, f)
	if err != nil {
		return a.fail(err)
	}
	return c.JSON(http.StatusOK, deadLetterList{Items: deadLetters(ls)})
}

// replayRequest is the body of POST /v1/tenants/{t}/dlq/replay; at least one filter is required.
type replayRequest struct {
	Service string   `json:"service"`
	Subject string   `json:"subject"`
	IDs     []uint64 `json:"ids"`
}

func (a *API) replayDLQ(c echo.Context) error {
	var body replayRequest
	if err := a.decodeBody(c, &body); err != nil {
		return err
	}
	f, err := dlqFilter(body.Service, body.Subject)
	if err != nil {
		return err
	}
	if f.Service == "" && f.Subject == "" && len(body.IDs) == 0 {
		return badRequest("invalid_filter", "give service, subject or ids (an empty filter would replay everything)")
	}
	if len(body.IDs) > maxDLQLimit {
		return badRequest("invalid_ids", "at most %d ids per request", maxDLQLimit)
	}
	for _, id := range body.IDs {
		if id == 0 {
			return badRequest("invalid_ids", "ids are DLQ sequences (≥ 1)")
		}
	}
	f.IDs, f.Limit = body.IDs, maxDLQLimit
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	res, err := a.dlq.Replay(c.Request().Context(), t, f)
	if err != nil {
		return a.fail(err)
	}
	a.log.InfoContext(c.Request().Context(), "dead letters replayed", "tenant", t, "actor", principal(c).Actor(),
		"replayed", len(res.Replayed), "failed", len(res.Failed))
	return c.JSON(http.StatusOK, replayResult(res))
}
