package sfsim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim"
)

// The OAuth 2.0 web-server flow (issue 16): the authorize page where a Salesforce user logs in and
// allows access (the sandbox asks only for a username), the authorization_code grant with PKCE,
// the refresh_token grant, the identity URL and userinfo, and token revocation. Salesforce serves
// the first on login.salesforce.com / test.salesforce.com / a My Domain and the identity URL on the
// login host; the sandbox serves everything on its one origin.

// WebServerConfig configures the connected app's web-server flow.
type WebServerConfig struct {
	// RedirectURIs are the connected app's callback URLs; empty allows any http(s) URL.
	RedirectURIs []string
	// RequirePKCE refuses authorize requests without an S256 code_challenge.
	RequirePKCE bool
	// RotateRefreshTokens returns a new refresh token on every refresh grant and retires the old one
	// (the connected app's "Enable Refresh Token Rotation").
	RotateRefreshTokens bool
	// SkipSecret accepts the code exchange without client_secret (the connected app's "Require
	// Secret for Web Server Flow" unchecked). Default: the secret is required when ClientID is set.
	SkipSecret bool
}

type webCode struct {
	userID, redirect, challenge, clientID string
	expires                               time.Time
}

type webRefresh struct {
	userID  string
	revoked bool
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var allowPage = template.Must(template.New("allow").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow Access? — Salesforce sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}label,input{display:block;margin:.3rem 0}input{font-size:1rem;padding:.3rem;width:100%}button{font-size:1rem;padding:.5rem 1rem;margin:.8rem .5rem 0 0}.err{color:#a00}</style></head>
<body>
<h1>Salesforce sandbox — Allow Access?</h1>
{{if .Problem}}<p class="err" id="sf-problem">{{.Problem}}</p>{{end}}
{{if .Form}}
<p><strong id="sf-client">{{.ClientID}}</strong> is asking to access org <strong id="sf-org">{{.OrgID}}</strong>: <code>{{.Scope}}</code>.</p>
<form method="post" action="/services/oauth2/authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label for="sf-username">Username</label>
<input id="sf-username" name="username" value="{{.Username}}" autocomplete="username">
<button type="submit" name="decision" value="allow" id="sf-allow">Allow</button>
<button type="submit" name="decision" value="deny" id="sf-deny">Deny</button>
</form>{{end}}
</body></html>`))

var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method", "prompt"}

// handleAuthorize serves the login and Allow page (GET) and the user's decision (POST).
func (o *Org) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.Form
	params := map[string]string{}
	for _, k := range authorizeParams {
		if v := f.Get(k); v != "" {
			params[k] = v
		}
	}
	clientID, redirect := f.Get("client_id"), f.Get("redirect_uri")
	problem := ""
	switch {
	case f.Get("response_type") != "code":
		problem = "error=unsupported_response_type: response type not supported"
	case clientID == "" || o.cfg.ClientID != "" && clientID != o.cfg.ClientID:
		problem = "error=invalid_client_id: client identifier invalid"
	case !o.redirectAllowed(redirect):
		problem = "error=redirect_uri_mismatch: redirect_uri must match configuration"
	case f.Get("code_challenge") != "" && f.Get("code_challenge_method") != "S256":
		problem = "error=invalid_request: code_challenge_method must be S256"
	case o.cfg.WebServer.RequirePKCE && f.Get("code_challenge") == "":
		problem = "error=invalid_request: missing required code challenge"
	}
	page := map[string]any{"Problem": problem, "ClientID": clientID, "OrgID": o.cfg.OrgID, "Scope": f.Get("scope"),
		"Params": params, "Username": f.Get("username"), "Form": problem == ""}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if problem != "" {
		w.WriteHeader(http.StatusBadRequest)
		_ = allowPage.Execute(w, page)
		return
	}
	if r.Method == http.MethodGet {
		_ = allowPage.Execute(w, page)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	code := ""
	if f.Get("decision") == "allow" {
		o.mu.Lock()
		id, ok := o.st.usernames[strings.ToLower(strings.TrimSpace(f.Get("username")))]
		active := ok && o.st.users[id].IsActive
		if active {
			code = "aPrx" + randomB64(24)
			o.webCodes[code] = &webCode{userID: id, redirect: redirect, challenge: f.Get("code_challenge"), clientID: clientID, expires: o.now().Add(15 * time.Minute)}
		}
		o.mu.Unlock()
		if !active {
			page["Problem"] = "Please check your username. If you still can't log in, contact your Salesforce administrator."
			w.WriteHeader(http.StatusUnauthorized)
			_ = allowPage.Execute(w, page)
			return
		}
	}
	crmsim.ConsentAnswer(w, r, redirect, code, "end-user denied authorization", f.Get("state"))
}

func (o *Org) redirectAllowed(redirect string) bool {
	return crmsim.RedirectAllowed(redirect, o.cfg.WebServer.RedirectURIs)
}

// checkClientSecret checks the client of a code or refresh grant; it returns the error to send.
func (o *Org) checkClient(r *http.Request, clientID string) *oauthError {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" || o.cfg.ClientID != "" && id != o.cfg.ClientID || clientID != "" && id != clientID {
		return &oauthError{"invalid_client_id", "client identifier invalid"}
	}
	if o.cfg.ClientID != "" && !o.cfg.WebServer.SkipSecret && secret != o.cfg.ClientSecret {
		return &oauthError{"invalid_client", "invalid client credentials"}
	}
	return nil
}

// codeGrant answers grant_type=authorization_code: the user the code was issued for, or the error.
func (o *Org) codeGrant(r *http.Request) (userID, refresh string, e *oauthError) {
	code := r.PostForm.Get("code")
	o.mu.Lock()
	c, ok := o.webCodes[code]
	delete(o.webCodes, code) // good once
	o.mu.Unlock()
	if !ok || !o.now().Before(c.expires) {
		return "", "", &oauthError{"invalid_grant", "invalid authorization code"}
	}
	if e := o.checkClient(r, c.clientID); e != nil {
		return "", "", e
	}
	if r.PostForm.Get("redirect_uri") != c.redirect {
		return "", "", &oauthError{"redirect_uri_mismatch", "redirect_uri must match configuration"}
	}
	if c.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			return "", "", &oauthError{"invalid_grant", "invalid code verifier"}
		}
	}
	refresh = o.cfg.OrgID[:15] + "!" + randomB64(40)
	o.mu.Lock()
	o.webRefresh[refresh] = &webRefresh{userID: c.userID}
	o.mu.Unlock()
	return c.userID, refresh, nil
}

// refreshGrant answers grant_type=refresh_token: the user, the refresh token to return ("" when
// not rotated: Salesforce then leaves it out), or the error.
func (o *Org) refreshGrant(r *http.Request) (userID, rotated string, e *oauthError) {
	if e := o.checkClient(r, ""); e != nil {
		return "", "", e
	}
	rt := r.PostForm.Get("refresh_token")
	o.mu.Lock()
	defer o.mu.Unlock()
	g, ok := o.webRefresh[rt]
	if !ok || g.revoked {
		return "", "", &oauthError{"invalid_grant", "expired access/refresh token"}
	}
	if u, ok := o.st.users[g.userID]; !ok || !u.IsActive {
		return "", "", &oauthError{"invalid_grant", "inactive user"}
	}
	if o.cfg.WebServer.RotateRefreshTokens {
		g.revoked = true
		rotated = o.cfg.OrgID[:15] + "!" + randomB64(40)
		o.webRefresh[rotated] = &webRefresh{userID: g.userID}
	}
	return g.userID, rotated, nil
}

// identity is the identity URL's answer (the fields ownersync reads, and a few more).
func (o *Org) identity(r *http.Request, userID string) map[string]any {
	o.mu.RLock()
	u := o.st.users[userID]
	o.mu.RUnlock()
	base := o.baseURL(r)
	v := strings.TrimPrefix(dataVersion, "v")
	login := originOf(r)
	return map[string]any{
		"id": login + "/id/" + o.cfg.OrgID + "/" + userID, "asserted_user": true, "user_id": userID,
		"organization_id": o.cfg.OrgID, "username": u.Username, "nick_name": strings.Split(u.Username, "@")[0],
		"display_name": strings.TrimSpace(u.FirstName + " " + u.LastName), "email": u.Email, "email_verified": true,
		"first_name": u.FirstName, "last_name": u.LastName, "timezone": "America/Los_Angeles", "active": u.IsActive,
		"user_type": cmpOr(u.UserType, "STANDARD"), "language": "en_US", "locale": "en_US", "utcOffset": -28800000,
		"is_app_installed": true, "last_modified_date": u.LastModifiedDate.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"urls": map[string]string{
			"enterprise": base + "/services/Soap/c/" + v + "/" + o.cfg.OrgID[:15],
			"metadata":   base + "/services/Soap/m/" + v + "/" + o.cfg.OrgID[:15],
			"partner":    base + "/services/Soap/u/" + v + "/" + o.cfg.OrgID[:15],
			"rest":       base + "/services/data/v" + v + "/",
			"sobjects":   base + "/services/data/v" + v + "/sobjects/",
			"query":      base + "/services/data/v" + v + "/query/",
			"limits":     base + "/services/data/v" + v + "/limits/",
			"profile":    base + "/" + userID,
		},
	}
}

// dataVersion is the API version the identity URLs name.
const dataVersion = "v62.0"

func originOf(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// handleIdentity serves GET /id/{orgId}/{userId} (the token response's id URL) with a bearer token.
func (o *Org) handleIdentity(w http.ResponseWriter, r *http.Request) {
	sess, ok := o.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "Bad_OAuth_Token", http.StatusForbidden)
		return
	}
	if r.PathValue("org") != o.cfg.OrgID && r.PathValue("org") != o.cfg.OrgID[:15] || !sameID(r.PathValue("user"), sess.userID) {
		http.Error(w, "Bad_Id", http.StatusForbidden)
		return
	}
	writeJSON(w, http.StatusOK, o.identity(r, sess.userID))
}

func sameID(a, b string) bool { return len(a) >= 15 && len(b) >= 15 && a[:15] == b[:15] }

// handleUserInfo serves GET /services/oauth2/userinfo (OpenID Connect form of the identity).
func (o *Org) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	sess, ok := o.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "Bad_OAuth_Token", http.StatusForbidden)
		return
	}
	id := o.identity(r, sess.userID)
	writeJSON(w, http.StatusOK, map[string]any{"sub": id["id"], "user_id": id["user_id"], "organization_id": id["organization_id"],
		"preferred_username": id["username"], "name": id["display_name"], "email": id["email"], "email_verified": true,
		"zoneinfo": id["timezone"], "active": id["active"], "user_type": id["user_type"], "urls": id["urls"]})
}

// handleRevoke serves POST /services/oauth2/revoke (token=…): an access token, or a refresh token
// and every access token it minted, stop working.
func (o *Org) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "must use HTTP POST"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed form body"})
		return
	}
	tok := r.Form.Get("token")
	o.mu.Lock()
	found := false
	if g, ok := o.webRefresh[tok]; ok && !g.revoked {
		g.revoked, found = true, true
		for _, s := range o.tokens {
			if s.refresh == tok {
				s.revoked = true
			}
		}
	}
	if s, ok := o.tokens[tok]; ok && !s.revoked {
		s.revoked, found = true, true
	}
	o.mu.Unlock()
	if !found {
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_token_type", "this token type is not supported"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// RefreshTokenRevoked reports whether the org issued rt and it has been revoked (tests).
func (o *Org) RefreshTokenRevoked(rt string) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	g, ok := o.webRefresh[rt]
	return ok && g.revoked
}

// handleLimits serves GET /services/data/vXX.X/limits (the daily API request allowance).
func (o *Org) handleLimits(w http.ResponseWriter) {
	used, limit := o.quota.Usage(o.now())
	if limit <= 0 {
		limit = 1 << 31
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"DailyApiRequests":    map[string]int64{"Max": limit, "Remaining": max(limit-used, 0)},
		"DailyBulkApiBatches": map[string]int64{"Max": 15000, "Remaining": 15000},
	})
}
