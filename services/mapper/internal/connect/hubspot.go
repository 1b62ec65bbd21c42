package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/tenant"
)

// OwnerSubscription is the webhook subscription ownersync needs: owner changes of contacts (the
// only HubSpot object module). The ingress ignores every other event type.
var OwnerSubscription = Subscription{EventType: "contact.propertyChange", PropertyName: "hubspot_owner_id"}

// Subscription is one HubSpot webhook subscription.
type Subscription struct {
	EventType    string `json:"eventType"`
	PropertyName string `json:"propertyName,omitempty"`
	Active       bool   `json:"active"`
}

// RequiredSubscriptions lists the subscriptions a tenant's modules need.
func RequiredSubscriptions(t *tenant.Tenant) []Subscription {
	if t.HubSpot != nil && !t.HubSpot.SyncsRecordType("contact") {
		return nil
	}
	return []Subscription{OwnerSubscription}
}

func (s *Service) hubspotOAuth() *oauth2.Config {
	h := s.cfg.HubSpot
	return &oauth2.Config{ClientID: h.ClientID, ClientSecret: h.ClientSecret, RedirectURL: s.CallbackURL(HubSpot), Scopes: h.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: h.AuthorizeURL, TokenURL: h.APIBaseURL + "/oauth/v1/token", AuthStyle: oauth2.AuthStyleInParams}}
}

// StartHubSpot returns the URL of HubSpot's install page for the tenant.
func (s *Service) StartHubSpot(ctx context.Context, tenantID, actor, session string) (string, error) {
	if err := s.Available(HubSpot); err != nil {
		return "", err
	}
	state, err := s.begin(ctx, &pending{tenant: tenantID, provider: HubSpot, actor: actor, session: sessionKey(session)})
	if err != nil {
		return "", err
	}
	return s.hubspotOAuth().AuthCodeURL(state), nil
}

func (s *Service) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
}

// tokenInfo is GET /oauth/v1/access-tokens/{token}.
type tokenInfo struct {
	HubID  int64    `json:"hub_id"`
	AppID  int64    `json:"app_id"`
	User   string   `json:"user"`
	Scopes []string `json:"scopes"`
}

func (s *Service) finishHubSpot(ctx context.Context, p *pending, code string) error {
	h := s.cfg.HubSpot
	oc := s.hubspotOAuth()
	tok, err := oc.Exchange(s.ctx(ctx), code)
	if err != nil {
		return public("HubSpot refused the authorization code: %s", oauthReason(err))
	}
	if tok.RefreshToken == "" {
		return public("HubSpot returned no refresh token; nothing was stored.")
	}
	var info tokenInfo
	if err := s.getJSON(ctx, h.APIBaseURL+"/oauth/v1/access-tokens/"+url.PathEscape(tok.AccessToken), "", &info); err != nil {
		return fmt.Errorf("hubspot token metadata: %w", err)
	}
	if info.HubID <= 0 {
		return public("HubSpot did not say which account was connected.")
	}
	for _, want := range h.Scopes {
		if !contains(info.Scopes, want) {
			return public("HubSpot granted %s but not %q; connect again and accept every permission.", strings.Join(info.Scopes, ", "), want)
		}
	}
	cl, err := hubspot.New(hubspot.Config{BaseURL: h.APIBaseURL, AccessToken: tok.AccessToken, HTTPClient: s.cfg.HTTPClient})
	if err != nil {
		return err
	}
	details, err := cl.AccountDetails(ctx)
	if err != nil {
		return fmt.Errorf("hubspot account details: %w", err)
	}
	if other, err := s.claimedElsewhere(ctx, p.tenant, func(t *tenant.Tenant) bool { return t.HubSpot != nil && t.HubSpot.PortalID == info.HubID }); err != nil {
		return err
	} else if other != "" {
		return public("HubSpot account %d is already connected to another tenant; an account can feed one tenant only.", info.HubID)
	}
	t, err := s.tenants.Get(ctx, p.tenant)
	if err != nil {
		return err
	}
	refreshRef, err := s.put(ctx, t.ID, HubSpotRefreshToken, tok.RefreshToken)
	if err != nil {
		return err
	}
	secretRef, err := s.put(ctx, t.ID, HubSpotClientSecret, h.ClientSecret)
	if err != nil {
		return err
	}
	hs := t.HubSpot
	if hs == nil {
		hs = &tenant.HSConfig{}
		t.HubSpot = hs
	}
	hs.Enabled = true
	hs.PortalID = info.HubID
	hs.AppID = h.AppID
	if info.AppID > 0 {
		hs.AppID = info.AppID
	}
	hs.ClientSecretRef = secretRef // the key of webhook signatures
	hs.TimeZone = ""
	if loc := details.Location(); loc.String() == details.TimeZone {
		hs.TimeZone = details.TimeZone
	}
	hs.UIDomain = "" // links to HubSpot pages go to the account's app host (app-eu1.hubspot.com in the EU)
	if tenant.ValidHubSpotUIDomain(details.UIDomain) {
		hs.UIDomain = details.UIDomain
	}
	if h.APIBaseURL != "https://api.hubapi.com" {
		hs.APIBaseURL = h.APIBaseURL
	}
	hs.Auth = tenant.HSAuth{Kind: "oauth", ClientID: h.ClientID, ClientSecretRef: secretRef, RefreshTokenRef: refreshRef,
		TokenURL: h.APIBaseURL + "/oauth/v1/token", Scopes: info.Scopes, ConnectedBy: p.actor, ConnectedAt: s.cfg.Now().UTC()}
	if err := s.tenants.Put(ctx, t); err != nil {
		return err
	}
	if h.DeveloperAPIKey != "" && hs.AppID > 0 {
		if err := s.Subscribe(ctx, t); err != nil {
			return public("Connected, but the webhook subscriptions could not be created: %v. Create them in the app's Webhooks settings (listed below).", err)
		}
	}
	return nil
}

// Subscribe sets the app's webhook target URL and creates the subscriptions the tenant needs (an
// existing one is kept).
func (s *Service) Subscribe(ctx context.Context, t *tenant.Tenant) error {
	h := s.cfg.HubSpot
	base := h.APIBaseURL + "/webhooks/v3/" + strconv.FormatInt(t.HubSpot.AppID, 10)
	key := "?hapikey=" + url.QueryEscape(h.DeveloperAPIKey)
	settings := map[string]any{"targetUrl": s.WebhookURL(), "throttling": map[string]any{"maxConcurrentRequests": 10}}
	if st, body, err := s.send(ctx, http.MethodPut, base+"/settings"+key, settings); err != nil || st != http.StatusOK {
		return callErr("set the webhook target URL", st, body, err)
	}
	for _, sub := range RequiredSubscriptions(t) {
		sub.Active = true
		st, body, err := s.send(ctx, http.MethodPost, base+"/subscriptions"+key, sub)
		if err != nil || (st != http.StatusCreated && st != http.StatusOK && st != http.StatusConflict) {
			return callErr("create the "+sub.EventType+" subscription", st, body, err)
		}
	}
	return nil
}

// Subscriptions lists the app's webhook subscriptions (needs the developer API key).
func (s *Service) Subscriptions(ctx context.Context, appID int64) ([]Subscription, error) {
	h := s.cfg.HubSpot
	var out struct {
		Results []Subscription `json:"results"`
	}
	u := h.APIBaseURL + "/webhooks/v3/" + strconv.FormatInt(appID, 10) + "/subscriptions?hapikey=" + url.QueryEscape(h.DeveloperAPIKey)
	if err := s.getJSON(ctx, u, "", &out); err != nil {
		return nil, err
	}
	return out.Results, nil
}

func callErr(what string, status int, body []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var e struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	return fmt.Errorf("%s: HTTP %d %s", what, status, e.Message)
}

func (s *Service) send(ctx context.Context, method, u string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return s.do(req)
}

func (s *Service) do(req *http.Request) (int, []byte, error) {
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, redactURLError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// redactURLError drops the URL from a transport error: it may carry a token or API key.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func (s *Service) getJSON(ctx context.Context, u, bearer string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	st, body, err := s.do(req)
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("HTTP %d", st)
	}
	return json.Unmarshal(body, out)
}

// oauthReason is the provider's error code of a failed exchange, never the response body.
func oauthReason(err error) string {
	if re, ok := err.(*oauth2.RetrieveError); ok {
		if re.ErrorCode != "" {
			return re.ErrorCode
		}
		var e struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(re.Body, &e) == nil && e.Status != "" {
			return e.Status
		}
		return fmt.Sprintf("HTTP %d", re.Response.StatusCode)
	}
	return "the token endpoint could not be reached"
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
