package sfsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Grant types the token endpoint accepts (docs/crm-protocols.md#salesforce-oauth).
const (
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// MaxJWTLifetime is how far ahead a JWT assertion's exp may be.
	MaxJWTLifetime = 3 * time.Minute
)

// TokenResponse is the token endpoint's success body.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	// RefreshToken is sent by the web-server flow's code exchange (and a rotating refresh).
	RefreshToken string `json:"refresh_token,omitempty"`
	Signature    string `json:"signature"`
	Scope        string `json:"scope"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`
	TokenType    string `json:"token_type"`
	IssuedAt     string `json:"issued_at"`
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (o *Org) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "must use HTTP POST"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed form body"})
		return
	}
	if o.injectRequestFault(w, r) {
		return
	}
	var userID, refresh string
	idHost := "https://login.salesforce.com"
	switch r.PostForm.Get("grant_type") {
	case "authorization_code", "refresh_token":
		var e *oauthError
		if r.PostForm.Get("grant_type") == "authorization_code" {
			userID, refresh, e = o.codeGrant(r)
		} else {
			userID, refresh, e = o.refreshGrant(r)
		}
		if e != nil {
			writeJSON(w, http.StatusBadRequest, e)
			return
		}
		idHost = originOf(r) // the identity URL is on the host the user logged in at

	case GrantClientCredentials:
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if o.cfg.ClientID != "" && (id != o.cfg.ClientID || secret != o.cfg.ClientSecret) {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_client", "invalid client credentials"})
			return
		}
		if id == "" {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_client_id", "client identifier invalid"})
			return
		}
		o.mu.RLock()
		userID = o.runAsLocked()
		o.mu.RUnlock()
	case GrantJWTBearer:
		var desc string
		userID, desc = o.checkAssertion(r.PostForm.Get("assertion"))
		if desc != "" {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", desc})
			return
		}
	case "":
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "grant type not specified"})
		return
	default:
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "grant type not supported"})
		return
	}
	base := o.baseURL(r)
	o.mu.Lock()
	tok := o.issueLocked(userID)
	issued := o.tokens[tok].issued
	if refresh != "" {
		o.tokens[tok].refresh = refresh
	} else if rt := r.PostForm.Get("refresh_token"); rt != "" {
		o.tokens[tok].refresh = rt
	}
	o.mu.Unlock()
	idURL := idHost + "/id/" + o.cfg.OrgID + "/" + userID
	issuedAt := strconv.FormatInt(issued.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(o.cfg.ClientSecret))
	mac.Write([]byte(idURL + issuedAt))
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken:  tok,
		RefreshToken: refresh,
		Signature:    base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		Scope:        scopeOf(refresh, r),
		InstanceURL:  base,
		ID:           idURL,
		TokenType:    "Bearer",
		IssuedAt:     issuedAt,
	})
}

// checkAssertion validates a JWT bearer assertion and returns the user it acts as, or the
// error_description to send.
func (o *Org) checkAssertion(assertion string) (userID, desc string) {
	if assertion == "" {
		return "", "assertion missing"
	}
	now := o.now()
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired()}
	claims := jwt.MapClaims{}
	var err error
	if o.cfg.JWTAcceptUnverified || o.cfg.JWTPublicKey == nil {
		if !o.cfg.JWTAcceptUnverified {
			return "", "no certificate configured for this client"
		}
		var tok *jwt.Token
		tok, _, err = jwt.NewParser(opts...).ParseUnverified(assertion, claims)
		if err == nil && tok.Method.Alg() != "RS256" {
			return "", "invalid assertion: algorithm must be RS256"
		}
		if err == nil {
			err = jwt.NewValidator(jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired()).Validate(claims)
		}
	} else {
		_, err = jwt.NewParser(opts...).ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) {
			return o.cfg.JWTPublicKey, nil
		})
	}
	if err != nil {
		if strings.Contains(err.Error(), "expired") {
			return "", "expired authorization code"
		}
		return "", "invalid assertion"
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Sub(now) > MaxJWTLifetime {
		return "", "invalid assertion: exp more than 3 minutes in the future"
	}
	if iss, _ := claims.GetIssuer(); o.cfg.ClientID != "" && iss != o.cfg.ClientID {
		return "", "invalid client identifier"
	}
	aud, _ := claims.GetAudience()
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(o.cfg.JWTAudiences, strings.TrimRight(a, "/")) }) {
		return "", "audience is invalid"
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		if prn, ok := claims["prn"].(string); ok {
			sub = prn
		}
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	id, ok := o.st.usernames[strings.ToLower(sub)]
	if !ok {
		return "", "user hasn't approved this consumer"
	}
	if !o.st.users[id].IsActive {
		return "", "inactive user"
	}
	return id, ""
}

// scopeOf is the scope a token response reports.
func scopeOf(refresh string, r *http.Request) string {
	if refresh != "" || r.PostForm.Get("grant_type") == "refresh_token" {
		return "api refresh_token id"
	}
	return "api"
}
