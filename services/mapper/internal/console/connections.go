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
}

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
		{http.MethodGet, tg + "/connections/salesforce/package.zip", c.salesforcePackage},
	} {
		g.Add(r.method, r.path, c.handle(c.signed(c.inTenant(r.h))))
	}
	g.GET("/connect/:crm/callback", c.handle(c.signed(c.connectCallback)))
}

// rejectionHelp says what an ingress rejection reason means for the admin.
var rejectionHelp = map[string]string{
	"bad_shared_key":         "The Outbound Message URL has a wrong or missing ?key=. Copy the endpoint URL above into every Outbound Message (or deploy the package again).",
	"no_shared_key":          "The connection has no shared key yet; connect Salesforce here to get one.",
	"bad_signature":          "The signature did not verify with the app's client secret: the webhooks come from another app, or the secret changed.",
	"signature_missing":      "The request carried no X-HubSpot-Signature-v3 header.",
	"signature_timestamp":    "The signature's timestamp was more than 5 minutes off: check the clock of the sender.",
	"unknown_app":            "The webhooks come from another HubSpot app than the one connected.",
	"malformed":              "The message could not be read (fields missing or not in Salesforce's format).",
	"unsupported_media_type": "The request's Content-Type was not what the CRM sends.",
	"too_large":              "The request was larger than ingress accepts.",
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
	OutboundErr string
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
				u, err := s.OutboundURLWithKey(t)
				v.OutboundURL = u
				if err != nil {
					v.OutboundErr = "The shared key could not be read; ask the operator."
					c.log.WarnContext(r.ctx, "console: resolve shared key", "tenant", t.ID, "error", err)
				}
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

func (c *Console) renderConnections(r *req, status int, test map[string]*connect.TestResult, problem string) error {
	c.allowConnectForms(r)
	views := []connView{c.connView(r, connect.Salesforce), c.connView(r, connect.HubSpot)}
	for i := range views {
		views[i].Test = test[views[i].Provider]
	}
	return c.render(r, status, "connections", "Connections", map[string]any{"Conns": views, "Problem": problem})
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
	if _, err := c.conns.Service.Callback(r.ctx, p, state, q.Get("code"), q.Get("error"), r.sid); err != nil {
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

func (c *Console) salesforcePackage(r *req) error {
	if c.conns.Service == nil || r.tenant.Salesforce == nil {
		return pageError(http.StatusNotFound, "Salesforce is not connected for this tenant.")
	}
	u, err := c.conns.Service.OutboundURLWithKey(r.tenant)
	if err != nil {
		return err
	}
	zip, err := connect.SalesforcePackage(r.tenant, u, r.tenant.Salesforce.APIVersion)
	if err != nil {
		if msg := connectProblem(err); msg != "" {
			return pageError(http.StatusConflict, "%s", msg)
		}
		return err
	}
	h := r.ec.Response().Header()
	h.Set("Content-Disposition", `attachment; filename="ownersync-salesforce-`+r.tenant.ID+`.zip"`)
	return r.ec.Blob(http.StatusOK, "application/zip", zip)
}
