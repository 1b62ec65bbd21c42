package salesforce

import (
	"github.com/ownersync/ownersync/libs/redact"

	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials is the OAuth 2.0 client credentials flow of an External Client App with a
// run-as integration user (docs/crm-protocols.md#salesforce-oauth). The token endpoint must be the
// org's My Domain.
type ClientCredentials struct {
	ClientID     string // consumer key
	ClientSecret string // consumer secret; never logged
}

// JWTBearer is the OAuth 2.0 JWT bearer flow (docs/crm-protocols.md#salesforce-oauth): an RS256
// assertion signed with the private key whose certificate was uploaded to the app. No client secret
// is involved.
type JWTBearer struct {
	ClientID   string          // consumer key, the iss claim
	Username   string          // the user to act as, the sub claim
	PrivateKey *rsa.PrivateKey // signs the assertion
	// Audience is the aud claim: https://login.salesforce.com (default), https://test.salesforce.com
	// for sandboxes, or an Experience Cloud site URL.
	Audience string
	// TTL is how far ahead exp is set; Salesforce refuses more than 3 minutes (default and maximum).
	TTL time.Duration
}

// JWT bearer constants.
const (
	DefaultAudience  = "https://login.salesforce.com"
	MaxAssertionTTL  = 3 * time.Minute
	jwtBearerGrant   = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	tokenPath        = "/services/oauth2/token"
	defaultLoginHost = "https://login.salesforce.com"
)

// tokenFetcher gets a brand-new token on every call; tokenCache decides when to call it.
type tokenFetcher func(ctx context.Context) (*oauth2.Token, error)

// tokenCache keeps the current access token. Salesforce tokens carry no expiry and no refresh
// token, so a token is kept until the API rejects it (401) and invalidate is called.
type tokenCache struct {
	fetch   tokenFetcher
	timeout time.Duration // bounds each token request
	mu      sync.Mutex
	tok     *oauth2.Token
}

func (c *tokenCache) token(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.Valid() {
		return c.tok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("get salesforce token: %w", redact.TokenError(err))
	}
	if tok.AccessToken == "" {
		return nil, errors.New("get salesforce token: response has no access_token")
	}
	c.tok = tok
	return tok, nil
}

// invalidate forgets old so the next call fetches a new token; a token fetched meanwhile by
// another caller is kept.
func (c *tokenCache) invalidate(old *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == old {
		c.tok = nil
	}
}

// clientCredentialsFetcher posts grant_type=client_credentials&client_id=…&client_secret=… as a form.
func clientCredentialsFetcher(cc ClientCredentials, tokenURL string, hc *http.Client) tokenFetcher {
	cfg := clientcredentials.Config{
		ClientID:     cc.ClientID,
		ClientSecret: cc.ClientSecret,
		TokenURL:     tokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	}
}

// jwtBearerFetcher signs a fresh assertion for every token request and posts
// grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=….
func jwtBearerFetcher(jb JWTBearer, tokenURL string, hc *http.Client, now func() time.Time) tokenFetcher {
	return func(ctx context.Context) (*oauth2.Token, error) {
		assertion, err := jb.assertion(now())
		if err != nil {
			return nil, err
		}
		form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}
		return postTokenForm(ctx, hc, tokenURL, form)
	}
}

// assertion returns the signed JWT for the bearer flow.
func (jb JWTBearer) assertion(now time.Time) (string, error) {
	if jb.PrivateKey == nil {
		return "", errors.New("jwt bearer: no private key")
	}
	ttl := jb.TTL
	if ttl <= 0 || ttl > MaxAssertionTTL {
		ttl = MaxAssertionTTL
	}
	aud := jb.Audience
	if aud == "" {
		aud = DefaultAudience
	}
	claims := jwt.RegisteredClaims{
		Issuer:    jb.ClientID,
		Subject:   jb.Username,
		Audience:  jwt.ClaimStrings{aud},
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(jb.PrivateKey)
	if err != nil {
		return "", fmt.Errorf("sign jwt assertion: %w", err)
	}
	return s, nil
}

// tokenResponse is Salesforce's token endpoint JSON (docs/crm-protocols.md#salesforce-oauth).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	InstanceURL string `json:"instance_url"`
	ID          string `json:"id"`
	Scope       string `json:"scope"`
	IssuedAt    string `json:"issued_at"`
	Signature   string `json:"signature"`
}

// postTokenForm posts form to the token endpoint and decodes the answer as x/oauth2 does, so both
// flows yield *oauth2.Token (with instance_url in Extra) and *oauth2.RetrieveError on failure.
func postTokenForm(ctx context.Context, hc *http.Client, tokenURL string, form url.Values) (*oauth2.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth2: cannot fetch token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("oauth2: cannot fetch token: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		re := &oauth2.RetrieveError{Response: resp, Body: body}
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil {
			re.ErrorCode, re.ErrorDescription = e.Error, e.ErrorDescription
		}
		return nil, re
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("oauth2: cannot parse token response: %w", err)
	}
	var extra map[string]any
	_ = json.Unmarshal(body, &extra)
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType}
	return tok.WithExtra(extra), nil
}

// instanceURLOf returns the instance_url a token response carried, or "".
func instanceURLOf(tok *oauth2.Token) string {
	s, _ := tok.Extra("instance_url").(string)
	return strings.TrimRight(s, "/")
}
