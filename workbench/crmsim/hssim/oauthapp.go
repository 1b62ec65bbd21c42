package hssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ownersync/ownersync/workbench/crmsim"
)

// The public-app side of the account (issue 16): the install (authorize) consent page, the
// authorization-code grant, token metadata, refresh-token revocation and the app's webhook
// subscriptions API. HubSpot serves the consent page on app.hubspot.com and the APIs on
// api.hubapi.com; the sandbox serves both on its one origin.

// AppConfig configures the public app installed into the account.
type AppConfig struct {
	// RedirectURIs are the app's allowed redirect URLs; empty allows any http(s) URL.
	RedirectURIs []string
	// RotateRefreshTokens makes every refresh grant return a new refresh token and retire the old
	// one (HubSpot keeps refresh tokens; rotation is what an integration must survive either way).
	RotateRefreshTokens bool
	// DeveloperAPIKey authorises the webhooks API (?hapikey=); empty refuses every call.
	DeveloperAPIKey string
	// InstallingUser is the email of the user who installs the app (default admin@<hub domain>).
	InstallingUser string
	// HubDomain is the account's domain (default "acme-<portal>.hubspot.example").
	HubDomain string
}

// AvailableScopes are the scopes the consent page knows how to describe.
var AvailableScopes = map[string]string{
	"oauth":                               "Basic OAuth (required)",
	"crm.objects.owners.read":             "View owners (users who can own records)",
	"crm.objects.contacts.read":           "View contacts",
	"crm.objects.contacts.write":          "Edit contacts",
	"crm.objects.companies.read":          "View companies",
	"crm.objects.deals.read":              "View deals",
	"crm.schemas.contacts.read":           "View contact properties",
	"settings.users.read":                 "View users and teams",
	"account-info.security.read":          "View account security settings",
	"crm.objects.contacts.sensitive.read": "View sensitive contact properties",
}

type authCode struct {
	redirect string
	scopes   []string
	expires  time.Time
}

type refreshGrant struct {
	scopes  []string
	user    string
	revoked bool
}

// Subscription is one webhook subscription of the app.
type Subscription struct {
	ID           int64  `json:"id"`
	EventType    string `json:"eventType"`
	PropertyName string `json:"propertyName,omitempty"`
	Active       bool   `json:"active"`
	CreatedAt    string `json:"createdAt"`
	UpdatedAt    string `json:"updatedAt,omitempty"`
}

// WebhookSettings are the app's webhook settings (target URL and throttling).
type WebhookSettings struct {
	TargetURL  string `json:"targetUrl"`
	Throttling struct {
		MaxConcurrentRequests int    `json:"maxConcurrentRequests"`
		Period                string `json:"period,omitempty"`
	} `json:"throttling"`
	CreatedAt string `json:"createdAt,omitempty"`
}

func (a *Account) hubDomain() string {
	if a.cfg.App.HubDomain != "" {
		return a.cfg.App.HubDomain
	}
	return "acme-" + strconv.FormatInt(a.cfg.PortalID, 10) + ".hubspot.example"
}

func (a *Account) installingUser() string {
	if a.cfg.App.InstallingUser != "" {
		return a.cfg.App.InstallingUser
	}
	return "admin@" + a.hubDomain()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect an app — HubSpot sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}li{margin:.3rem 0}button{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}.err{color:#a00}</style></head>
<body>
<h1>HubSpot sandbox</h1>
{{if .Problem}}<p class="err" id="hs-problem">{{.Problem}}</p>{{else}}
<p>The app <strong id="hs-client">{{.ClientID}}</strong> asks to connect to account <strong id="hs-portal">{{.Portal}}</strong> ({{.Domain}}) as <strong>{{.User}}</strong>.</p>
<p>It will be able to:</p>
<ul id="hs-scopes">{{range .Scopes}}<li><code>{{.Name}}</code> — {{.What}}</li>{{end}}</ul>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.Redirect}}">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="state" value="{{.State}}">
<button type="submit" name="decision" value="grant" id="hs-grant">Connect app</button>
<button type="submit" name="decision" value="deny" id="hs-deny">Cancel</button>
</form>{{end}}
</body></html>`))

type scopeLine struct{ Name, What string }

// handleAuthorize serves the install page (GET) and the admin's decision (POST). Unknown clients,
// redirect URLs that are not the app's and unknown scopes are refused on the page itself, like
// HubSpot does, without redirecting.
func (a *Account) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.Form
	clientID, redirect, state := f.Get("client_id"), f.Get("redirect_uri"), f.Get("state")
	scopes := strings.Fields(strings.ReplaceAll(f.Get("scope"), "+", " "))
	problem := ""
	switch {
	case a.cfg.ClientID != "" && clientID != a.cfg.ClientID:
		problem = "Authorization failed because the client_id is not valid."
	case !a.redirectAllowed(redirect):
		problem = "Authorization failed because the redirect URL does not match the app's."
	case len(scopes) == 0:
		problem = "Authorization failed because no scopes were requested."
	}
	var lines []scopeLine
	for _, s := range scopes {
		what, ok := AvailableScopes[s]
		if !ok && problem == "" {
			problem = "Authorization failed because the scope " + strconv.Quote(s) + " does not exist."
		}
		lines = append(lines, scopeLine{s, what})
	}
	w.Header().Set("Cache-Control", "no-store")
	if problem != "" || r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if problem != "" {
			w.WriteHeader(http.StatusBadRequest)
		}
		_ = consentPage.Execute(w, map[string]any{"Problem": problem, "ClientID": clientID, "Portal": a.cfg.PortalID, "Domain": a.hubDomain(),
			"User": a.installingUser(), "Scopes": lines, "Redirect": redirect, "Scope": strings.Join(scopes, " "), "State": state})
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	code := ""
	if f.Get("decision") == "grant" {
		code = randHex(16)
		a.mu.Lock()
		a.codes[code] = &authCode{redirect: redirect, scopes: scopes, expires: a.now().Add(5 * time.Minute)}
		a.mu.Unlock()
	}
	crmsim.ConsentAnswer(w, r, redirect, code, "The user did not grant access.", state)
}

func (a *Account) redirectAllowed(redirect string) bool {
	return crmsim.RedirectAllowed(redirect, a.cfg.App.RedirectURIs)
}

// exchangeCode answers the authorization_code grant; o.mu is not held.
func (a *Account) exchangeCode(w http.ResponseWriter, r *http.Request, fail func(status, msg string)) {
	code, redirect := r.PostForm.Get("code"), r.PostForm.Get("redirect_uri")
	a.mu.Lock()
	c, ok := a.codes[code]
	delete(a.codes, code) // a code is good once, whatever happens
	a.mu.Unlock()
	switch {
	case !ok || !a.now().Before(c.expires):
		fail("BAD_AUTH_CODE", "missing or unknown auth code")
		return
	case c.redirect != redirect:
		fail("BAD_REDIRECT_URI", "redirect_uri does not match the one the code was issued for")
		return
	}
	a.mu.Lock()
	rt := "na1-" + randHex(4) + "-" + uuid.NewString()
	a.refresh[rt] = &refreshGrant{scopes: c.scopes, user: a.installingUser()}
	tok := a.issueLocked()
	a.tokens[tok].refresh, a.tokens[tok].scopes = rt, c.scopes
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, tokenResponse{TokenType: "bearer", RefreshToken: rt, AccessToken: tok, ExpiresIn: int(a.cfg.TokenTTL.Seconds())})
}

// refreshKnown reports whether rt may refresh, and its grant when the account issued it.
func (a *Account) refreshKnownLocked(rt string) (*refreshGrant, bool) {
	if g, ok := a.refresh[rt]; ok {
		return g, !g.revoked
	}
	if rt == "" || a.retired[rt] {
		return nil, false
	}
	if len(a.cfg.RefreshTokens) == 0 {
		return nil, true
	}
	return nil, slices.Contains(a.cfg.RefreshTokens, rt)
}

// handleTokenInfo serves GET /oauth/v1/access-tokens/{token}.
func (a *Account) handleTokenInfo(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	a.mu.RLock()
	t, ok := a.tokens[tok]
	var scopes []string
	var user string
	var expires time.Time
	dead := !ok || a.revoked[tok]
	if ok {
		dead = dead || t.revoked
		scopes, expires = t.scopes, t.expires
		if g := a.refresh[t.refresh]; g != nil {
			user = g.user
		}
	}
	a.mu.RUnlock()
	now := a.now()
	if dead || !now.Before(expires) {
		writeJSON(w, http.StatusNotFound, oauthError{Status: "error", Message: "The access token is expired or invalid", CorrelationID: uuid.NewString()})
		return
	}
	if scopes == nil {
		scopes = []string{"oauth", "crm.objects.owners.read", "crm.objects.contacts.read", "crm.objects.contacts.write"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token": tok, "user": cmpOr(user, a.installingUser()), "hub_domain": a.hubDomain(), "scopes": scopes,
		"scope_to_scope_group_pks": []int{}, "trial_scopes": []string{}, "trial_scope_to_scope_group_pks": []int{},
		"hub_id": a.cfg.PortalID, "app_id": a.cfg.AppID, "expires_in": int(expires.Sub(now).Seconds()),
		"user_id": 9100001, "token_type": "access",
	})
}

// handleRefreshInfo serves GET /oauth/v1/refresh-tokens/{token}.
func (a *Account) handleRefreshInfo(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	g, ok := a.refresh[r.PathValue("token")]
	a.mu.RUnlock()
	if !ok || g.revoked {
		writeJSON(w, http.StatusNotFound, oauthError{Status: "error", Message: "refresh token not found", CorrelationID: uuid.NewString()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": r.PathValue("token"), "user": g.user, "hub_domain": a.hubDomain(),
		"scopes": g.scopes, "hub_id": a.cfg.PortalID, "client_id": a.cfg.ClientID, "user_id": 9100001, "token_type": "refresh"})
}

// handleRevoke serves DELETE /oauth/v1/refresh-tokens/{token}: the refresh token and every access
// token it minted stop working (204); an unknown token is 404.
func (a *Account) handleRevoke(w http.ResponseWriter, r *http.Request) {
	rt := r.PathValue("token")
	a.mu.Lock()
	g, ok := a.refresh[rt]
	if ok && !g.revoked {
		g.revoked = true
		for tok, t := range a.tokens {
			if t.refresh == rt {
				t.revoked = true
				a.revoked[tok] = true
			}
		}
	}
	a.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, oauthError{Status: "error", Message: "refresh token not found", CorrelationID: uuid.NewString()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RefreshTokenRevoked reports whether the account issued rt and it has been revoked (tests).
func (a *Account) RefreshTokenRevoked(rt string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	g, ok := a.refresh[rt]
	return ok && g.revoked
}

// Subscriptions returns the app's webhook subscriptions.
func (a *Account) Subscriptions() []Subscription {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return slices.Clone(a.subs)
}

// webhookAPI authorises a webhooks API call with the developer API key.
func (a *Account) webhookAPI(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.App.DeveloperAPIKey == "" || r.URL.Query().Get("hapikey") != a.cfg.App.DeveloperAPIKey {
			a.writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "The API key provided is invalid.", nil)
			return
		}
		if r.PathValue("appId") != strconv.FormatInt(a.cfg.AppID, 10) {
			a.writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "App not found", nil)
			return
		}
		h(w, r)
	}
}

// Webhook event types the sandbox accepts for subscriptions.
var subscriptionTypes = []string{"contact.creation", "contact.deletion", "contact.propertyChange", "contact.privacyDeletion",
	"contact.merge", "contact.associationChange", "contact.restore", "company.propertyChange", "deal.propertyChange"}

func (a *Account) handleListSubscriptions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"results": a.Subscriptions()})
}

func (a *Account) handleCreateSubscription(w http.ResponseWriter, r *http.Request) {
	var in struct {
		EventType    string `json:"eventType"`
		PropertyName string `json:"propertyName"`
		Active       *bool  `json:"active"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON", nil)
		return
	}
	if !slices.Contains(subscriptionTypes, in.EventType) {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unknown eventType "+strconv.Quote(in.EventType), nil)
		return
	}
	if strings.HasSuffix(in.EventType, ".propertyChange") != (in.PropertyName != "") {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "propertyName is required for propertyChange subscriptions and only for them", nil)
		return
	}
	a.mu.Lock()
	for _, s := range a.subs {
		if s.EventType == in.EventType && s.PropertyName == in.PropertyName {
			a.mu.Unlock()
			a.writeError(w, http.StatusConflict, "CONFLICT", "A subscription for this event type and property already exists", nil)
			return
		}
	}
	a.nextSub++
	now := a.now().UTC().Format(time.RFC3339Nano)
	s := Subscription{ID: a.nextSub, EventType: in.EventType, PropertyName: in.PropertyName, Active: in.Active == nil || *in.Active, CreatedAt: now, UpdatedAt: now}
	a.subs = append(a.subs, s)
	a.mu.Unlock()
	writeJSON(w, http.StatusCreated, s)
}

func (a *Account) handleDeleteSubscription(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	a.mu.Lock()
	n := len(a.subs)
	a.subs = slices.DeleteFunc(a.subs, func(s Subscription) bool { return s.ID == id })
	gone := len(a.subs) < n
	a.mu.Unlock()
	if !gone {
		a.writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Subscription not found", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Account) handleGetWebhookSettings(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	s := a.whSettings
	a.mu.RUnlock()
	if s == nil {
		a.writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "No webhook settings for this app", nil)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// handlePutWebhookSettings sets the target URL; events are delivered there from now on.
func (a *Account) handlePutWebhookSettings(w http.ResponseWriter, r *http.Request) {
	var in WebhookSettings
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON", nil)
		return
	}
	if u, err := url.Parse(in.TargetURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "targetUrl must be an absolute URL", nil)
		return
	}
	if in.Throttling.MaxConcurrentRequests == 0 {
		in.Throttling.MaxConcurrentRequests = 10
	}
	in.CreatedAt = a.now().UTC().Format(time.RFC3339Nano)
	a.mu.Lock()
	a.whSettings = &in
	a.mu.Unlock()
	a.SetWebhookTarget(in.TargetURL)
	writeJSON(w, http.StatusOK, in)
}
