package console

// The Connections page (issue 16): connect HubSpot and Salesforce through their OAuth flows, see
// what to configure on the CRM side (Outbound Message URL with its shared key, the metadata
// package, HubSpot's webhook subscriptions), test a connection, see the last webhook received and
// disconnect.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/labstack/echo/v4"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/webhookstats"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
)

// Receipts reads what ingress recorded about a tenant's webhooks (webhookstats.Reader).
type Receipts interface {
	Get(ctx context.Context, tenantID, provider string) (webhookstats.Receipt, bool, error)
}

// Connections wires the Connections page; without a Service the page says connecting is not
// configured.
type Connections struct {
	Service  *connect.Service
	Receipts Receipts
	// KeyOverlap is how long a rotated-out Outbound Message key stays accepted
	// (OWNERSYNC_SHARED_KEY_OVERLAP; DefaultKeyOverlap when zero).
	KeyOverlap time.Duration
}

// DefaultKeyOverlap is the rotation overlap when Connections.KeyOverlap is zero (as mapper's
// OWNERSYNC_SHARED_KEY_OVERLAP default).
const DefaultKeyOverlap = 72 * time.Hour

// WithConnections sets what the Connections page uses; call before Register.
func (c *Console) WithConnections(x Connections) *Console {
	c.conns = x
	return c
}

func init() {
	flashes["connected-hubspot"] = "HubSpot is connected."
	flashes["connected-salesforce"] = "Salesforce is connected."
	flashes["disconnected"] = "Disconnected. The token was revoked at the CRM."
	flashes["disconnected-local"] = "Disconnected here; the CRM could not confirm the token was revoked (revoke the app's access in the CRM)."
}

func (c *Console) registerConnections(g *echo.Group, tg string) {
	for _, r := range []struct {
		method, path string
		h            handler
	}{
		{http.MethodGet, tg + "/connections", c.connectionsPage},
		{http.MethodPost, tg + "/connections/:crm/connect", c.connectStart},
		{http.MethodPost, tg + "/connections/:crm/test", c.connectTest},
		{http.MethodPost, tg + "/connections/:crm/disconnect", c.connectDisconnect},
		{http.MethodPost, tg + "/connections/salesforce/package.zip", c.salesforcePackage},
		{http.MethodPost, tg + "/connections/salesforce/rotate-key", c.rotateKey},
	} {
		g.Add(r.method, r.path, c.handle(c.signed(c.inTenant(r.h))))
	}
	g.GET("/connect/:crm/callback", c.handle(c.signed(c.connectCallback)))
}

// rejectionHelp says what an ingress rejection reason means for the admin.
var rejectionHelp = map[string]string{
	"bad_shared_key":          "The Outbound Message URL has a wrong or missing ?key=. Copy the endpoint URL above into every Outbound Message (or deploy the package again).",
	"no_shared_key":           "The connection has no shared key yet: use Generate key below and put the new endpoint URL into every Outbound Message.",
	"shared_key_not_migrated": "The shared key is from before ownersync kept only digests; mapper converts it at start. If this stays, use Rotate key below.",
	"bad_signature":           "The signature did not verify with the app's client secret: the webhooks come from another app, or the secret changed.",
	"signature_missing":       "The request carried no X-HubSpot-Signature-v3 header.",
	"signature_timestamp":     "The signature's timestamp was more than 5 minutes off: check the clock of the sender.",
	"unknown_app":             "The webhooks come from another HubSpot app than the one connected.",
	"malformed":               "The message could not be read (fields missing or not in Salesforce's format).",
	"unsupported_media_type":  "The request's Content-Type was not what the CRM sends.",
	"too_large":               "The request was larger than ingress accepts.",
}

type connView struct {
	Provider    string
	Name        string
	Connected   bool // enabled
	Here        bool // made by a Connect flow (tokens stored)
	Unavailable string
	CallbackURL string
	ConnectedBy string
	ConnectedAt time.Time
	Facts       [][2]string
	Receipt     *webhookstats.Receipt
	Today       int64
	RejectHelp  string
	Test        *connect.TestResult
	OutboundURL string
	Key         keyView
	Objects     []string
	WebhookURL  string
	AutoSubs    bool
	Subs        []connect.Subscription
	Scopes      []string
}

func (c *Console) connView(r *req, provider string) connView {
	v := connView{Provider: provider, Name: providerName(provider)}
	s := c.conns.Service
	if s == nil {
		v.Unavailable = "Connecting from the console is not configured on this ownersync (mapper's OWNERSYNC_CONNECT_* settings)."
	} else {
		if err := s.Available(provider); err != nil {
			v.Unavailable = err.Error() + "."
		}
		v.CallbackURL = s.CallbackURL(provider)
		v.Here = connect.ConnectedHere(r.tenant, provider)
	}
	t := r.tenant
	switch provider {
	case connect.Salesforce:
		if sf := t.Salesforce; sf != nil {
			v.Connected = sf.Enabled
			v.ConnectedBy, v.ConnectedAt = sf.Auth.ConnectedBy, sf.Auth.ConnectedAt
			v.Facts = [][2]string{{"Org id", sf.OrgID}, {"Instance", sf.InstanceURL}, {"Signed in as", sf.Auth.Username}, {"Auth", sf.Auth.Flow}}
			v.Objects = connect.PackageObjects(t)
			if s != nil {
				v.OutboundURL = s.OutboundURL()
			}
			v.Key = keyView{Set: tenant.IsSharedKeyDigest(sf.SharedKeyRef), Legacy: tenant.IsLegacySharedKeyRef(sf.SharedKeyRef),
				Missing: sf.KeyMissing(), CreatedAt: sf.SharedKeyCreatedAt}
			if sf.PreviousKeyValid(c.cfg.Now()) {
				v.Key.PreviousUntil = sf.PreviousSharedKeyUntil
			}
		}
	case connect.HubSpot:
		if s != nil {
			v.WebhookURL = s.WebhookURL()
			if app := s.HubSpotApp(); app != nil {
				v.AutoSubs = app.DeveloperAPIKey != ""
				v.Scopes = app.Scopes
			}
		}
		v.Subs = []connect.Subscription{connect.OwnerSubscription}
		if hs := t.HubSpot; hs != nil {
			v.Connected = hs.Enabled
			v.ConnectedBy, v.ConnectedAt = hs.Auth.ConnectedBy, hs.Auth.ConnectedAt
			v.Facts = [][2]string{{"Account (portal)", fmt.Sprint(hs.PortalID)}, {"App id", fmt.Sprint(hs.AppID)}, {"Time zone", hs.TimeZone}, {"Auth", hs.Auth.Kind}}
			if len(hs.Auth.Scopes) > 0 {
				v.Scopes = hs.Auth.Scopes
			}
			v.Subs = connect.RequiredSubscriptions(t)
		}
	}
	if c.conns.Receipts != nil {
		rc, ok, err := c.conns.Receipts.Get(r.ctx, t.ID, provider)
		if err != nil {
			c.log.WarnContext(r.ctx, "console: read webhook receipts", "tenant", t.ID, "error", err)
		} else if ok {
			v.Receipt = &rc
			v.Today = rc.Today(c.cfg.Now())
			v.RejectHelp = rejectionHelp[rc.LastRejection]
		}
	}
	return v
}

// keyView is what the Salesforce card says about the Outbound Message key: never the key, which
// ownersync keeps only as a digest, except NewURL right after it was generated (shown once).
type keyView struct {
	Set       bool
	Legacy    bool // a secret reference from before the one model, not migrated yet
	Missing   bool // enabled without a key: ingress refuses its messages
	CreatedAt time.Time
	// PreviousUntil is when the rotated-out key stops being accepted (zero: none is).
	PreviousUntil time.Time
	// NewURL is the endpoint URL with the key just generated; NewKey the key (the package form).
	NewURL, NewKey string
}

func (c *Console) renderConnections(r *req, status int, test map[string]*connect.TestResult, problem string) error {
	return c.renderConnectionsWith(r, status, test, problem, "", "")
}

// renderConnectionsWith renders the page; a non-empty newKey (just generated) is shown once with
// its endpoint URL, and the answer must not be cached.
func (c *Console) renderConnectionsWith(r *req, status int, test map[string]*connect.TestResult, problem, notice, newKey string) error {
	c.allowConnectForms(r)
	views := []connView{c.connView(r, connect.Salesforce), c.connView(r, connect.HubSpot)}
	for i := range views {
		views[i].Test = test[views[i].Provider]
		if views[i].Provider == connect.Salesforce && newKey != "" {
			views[i].Key.NewKey, views[i].Key.NewURL = newKey, c.webhookURL()+"?key="+url.QueryEscape(newKey)
		}
	}
	if newKey != "" {
		r.ec.Response().Header().Set("Cache-Control", "no-store")
	}
	return c.render(r, status, "connections", "Connections", map[string]any{"Conns": views, "Problem": problem, "Notice": notice})
}

// webhookURL is ingress's Outbound Message endpoint (without a key).
func (c *Console) webhookURL() string {
	if c.conns.Service == nil {
		return "/webhooks/salesforce"
	}
	return c.conns.Service.OutboundURL()
}

// rotateKey generates a new Outbound Message key for the tenant's Salesforce connection (the same
// tenant.RotateSharedKey as the admin API and Connect Salesforce) and shows it once with the
// endpoint URL; the key it replaces stays accepted for the overlap. Tenant admins and the operator
// may rotate: the tenant's Salesforce admin is who updates the Outbound Messages.
func (c *Console) rotateKey(r *req) error {
	if r.tenant.Salesforce == nil {
		return pageError(http.StatusNotFound, "Salesforce is not connected for this tenant.")
	}
	overlap := c.conns.KeyOverlap
	if overlap <= 0 {
		overlap = DefaultKeyOverlap
	}
	t := *r.tenant
	sf := *t.Salesforce
	t.Salesforce = &sf
	key, until, err := tenant.RotateSharedKey(&sf, c.cfg.Now(), overlap)
	if err != nil {
		return err
	}
	if err := c.tenants.Put(r.ctx, &t); err != nil {
		return err
	}
	r.tenant = &t
	c.log.InfoContext(r.ctx, "console: salesforce shared key rotated", "tenant", t.ID, "actor", r.sess.principal.Actor(),
		"previous_until", until)
	notice := "A new key was generated. Copy the endpoint URL now: ownersync keeps only a digest of the key and cannot show it again."
	return c.renderConnectionsWith(r, http.StatusOK, nil, "", notice, key)
}

// allowConnectForms extends the page's form-action to the CRMs' authorize origins: the Connect
// forms post here and are redirected there, and Chromium checks form-action on that redirect.
func (c *Console) allowConnectForms(r *req) {
	if c.conns.Service == nil {
		return
	}
	h := r.ec.Response().Header()
	csp := h.Get("Content-Security-Policy")
	extra := strings.Join(c.conns.Service.AuthorizeOrigins(), " ")
	if extra != "" && strings.Contains(csp, "form-action 'self'") {
		h.Set("Content-Security-Policy", strings.Replace(csp, "form-action 'self'", "form-action 'self' "+extra, 1))
	}
}

func (c *Console) connectionsPage(r *req) error {
	return c.renderConnections(r, http.StatusOK, nil, "")
}

func crmParam(r *req) (string, error) {
	p := r.ec.Param("crm")
	if p != connect.Salesforce && p != connect.HubSpot {
		return "", pageError(http.StatusNotFound, "Unknown CRM %q.", p)
	}
	return p, nil
}

func (c *Console) connectStart(r *req) error {
	p, err := crmParam(r)
	if err != nil {
		return err
	}
	if c.conns.Service == nil {
		return pageError(http.StatusNotFound, "Connecting from the console is not configured.")
	}
	var u string
	switch p {
	case connect.HubSpot:
		u, err = c.conns.Service.StartHubSpot(r.ctx, r.tenant.ID, r.sess.principal.Actor(), r.sid)
	case connect.Salesforce:
		u, err = c.conns.Service.StartSalesforce(r.ctx, r.tenant.ID, r.sess.principal.Actor(), r.sid, r.ec.FormValue("environment"), r.ec.FormValue("my_domain"))
	}
	if err != nil {
		return c.renderConnections(r, http.StatusBadRequest, nil, connectProblem(err))
	}
	c.allowConnectForms(r)
	return r.ec.Redirect(http.StatusSeeOther, u)
}

// connectProblem is the message of a connect error safe to show.
func connectProblem(err error) string {
	var pe *connect.PublicError
	switch {
	case errors.As(err, &pe):
		return pe.Msg
	case errors.Is(err, connect.ErrNotConfigured), errors.Is(err, connect.ErrNoKeyring), errors.Is(err, connect.ErrState):
		return err.Error() + "."
	}
	return ""
}

// connectCallback is where the CRM sends the admin back: the flow's state names the tenant, which
// the signed-in principal must reach.
func (c *Console) connectCallback(r *req) error {
	p, err := crmParam(r)
	if err != nil {
		return err
	}
	if c.conns.Service == nil {
		return pageError(http.StatusNotFound, "Connecting from the console is not configured.")
	}
	q := r.ec.QueryParams()
	state := q.Get("state")
	tid, err := c.conns.Service.Tenant(r.ctx, state)
	if err != nil {
		return err
	}
	if tid == "" || !r.sess.principal.CanAccess(tid) {
		return pageError(http.StatusBadRequest, "%s", connect.ErrState.Error()+".")
	}
	t, err := c.tenants.Get(r.ctx, tid)
	if err != nil {
		return err
	}
	r.tenant = t
	f, err := c.conns.Service.Callback(r.ctx, p, state, q.Get("code"), q.Get("error"), r.sid)
	if err != nil {
		msg := connectProblem(err)
		if msg == "" {
			c.log.ErrorContext(r.ctx, "console: connect callback", "tenant", tid, "provider", p, "error", err)
			msg = "Connecting failed on our side; the error was logged. Try again."
		}
		if t2, err2 := c.tenants.Get(r.ctx, tid); err2 == nil {
			r.tenant = t2
		}
		return c.renderConnections(r, http.StatusBadGateway, nil, msg)
	}
	c.log.InfoContext(r.ctx, "console: connected", "tenant", tid, "provider", p, "actor", r.sess.principal.Actor())
	if f.SharedKey != "" {
		// The Outbound Message key was generated now: shown on this answer only (no redirect that
		// would have to carry it).
		if t2, err := c.tenants.Get(r.ctx, tid); err == nil {
			r.tenant = t2
		}
		return c.renderConnectionsWith(r, http.StatusOK, nil, "", flashes["connected-"+p]+" Copy the Outbound Message endpoint URL now: it carries the new shared key, which is shown this once.", f.SharedKey)
	}
	return r.ec.Redirect(http.StatusSeeOther, "/admin/t/"+url.PathEscape(tid)+"/connections?done=connected-"+p)
}

func (c *Console) connectTest(r *req) error {
	p, err := crmParam(r)
	if err != nil {
		return err
	}
	if c.conns.Service == nil {
		return pageError(http.StatusNotFound, "Connecting from the console is not configured.")
	}
	if _, ok := r.tenant.ProviderSettings(provider.Provider(p)); !ok {
		return c.renderConnections(r, http.StatusOK, nil, providerName(p)+" is not connected.")
	}
	res := c.conns.Service.Test(r.ctx, r.tenant, p)
	return c.renderConnections(r, http.StatusOK, map[string]*connect.TestResult{p: &res}, "")
}

func (c *Console) connectDisconnect(r *req) error {
	p, err := crmParam(r)
	if err != nil {
		return err
	}
	if c.conns.Service == nil {
		return pageError(http.StatusNotFound, "Connecting from the console is not configured.")
	}
	back := "/admin/t/" + url.PathEscape(r.tenant.ID) + "/connections"
	if r.ec.FormValue("confirm") != "yes" {
		return c.render(r, http.StatusOK, "confirm", "Disconnect "+providerName(p), map[string]any{
			"Question": "Disconnect " + providerName(p) + "? ownersync revokes its token at the CRM and stops syncing owners with it until someone connects again.",
			"Action":   back + "/" + p + "/disconnect", "Button": "Disconnect", "Back": back,
		})
	}
	revoked, err := c.conns.Service.Disconnect(r.ctx, r.tenant.ID, p)
	if err != nil {
		if msg := connectProblem(err); msg != "" {
			return c.renderConnections(r, http.StatusConflict, nil, msg)
		}
		return err
	}
	c.log.InfoContext(r.ctx, "console: disconnected", "tenant", r.tenant.ID, "provider", p, "revoked", revoked, "actor", r.sess.principal.Actor())
	done := "disconnected"
	if !revoked {
		done = "disconnected-local"
	}
	return r.ec.Redirect(http.StatusSeeOther, back+"?done="+done)
}

// salesforcePackage builds the metadata package for the endpoint URL with the key in the form:
// ownersync keeps only the key's digest, so the key comes from the page that showed it once (a
// hidden field) or is typed in again; it must be the current key.
func (c *Console) salesforcePackage(r *req) error {
	if c.conns.Service == nil || r.tenant.Salesforce == nil {
		return pageError(http.StatusNotFound, "Salesforce is not connected for this tenant.")
	}
	key := strings.TrimSpace(r.ec.Request().PostFormValue("key"))
	if !tenant.IsSharedKeyDigest(r.tenant.Salesforce.SharedKeyRef) || !tenant.MatchesSharedKeyDigest(r.tenant.Salesforce.SharedKeyRef, key) {
		return c.renderConnections(r, http.StatusBadRequest, nil,
			"The package needs the current shared key, which ownersync shows only when it is generated. Paste it, or use Rotate key to get a new one.")
	}
	zip, err := connect.SalesforcePackage(r.tenant, c.conns.Service.OutboundURLWithKey(key), r.tenant.Salesforce.APIVersion)
	if err != nil {
		if msg := connectProblem(err); msg != "" {
			return pageError(http.StatusConflict, "%s", msg)
		}
		return err
	}
	h := r.ec.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="ownersync-salesforce-`+r.tenant.ID+`.zip"`)
	h.Set("Cache-Control", "no-store")
	return r.ec.Blob(http.StatusOK, "application/zip", zip)
}
