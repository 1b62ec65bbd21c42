package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
)

// Tenant tokens (issue 13 item 13): minted, listed and revoked by the operator only.

// mintRequest is the optional body of POST /v1/tenants/{t}/tokens.
type mintRequest struct {
	Name string `json:"name"`
	// ExpiresIn is a Go duration ("720h"); ExpiresAt an RFC 3339 time. At most one.
	ExpiresIn string     `json:"expires_in"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// maxTokenLifetime bounds a minted token's expiry (ten years: longer is "never" in disguise).
const maxTokenLifetime = 10 * 365 * 24 * time.Hour

// mintedToken is the answer of POST /v1/tenants/{t}/tokens: the token is shown once.
type mintedToken struct {
	Tenant    string     `json:"tenant"`
	Token     string     `json:"token"`
	ID        string     `json:"id"`
	Name      string     `json:"name,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (a *API) mintToken(c echo.Context) error {
	var req mintRequest
	if c.Request().ContentLength != 0 {
		if err := a.decodeBody(c, &req); err != nil {
			return err
		}
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	if len(req.Name) > auth.MaxTokenNameLength {
		return badRequest("invalid_token_name", "name must be at most %d characters", auth.MaxTokenNameLength)
	}
	now := time.Now()
	var expires time.Time
	switch {
	case req.ExpiresIn != "" && req.ExpiresAt != nil:
		return badRequest("invalid_expiry", "give expires_in or expires_at, not both")
	case req.ExpiresIn != "":
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 || d > maxTokenLifetime {
			return badRequest("invalid_expiry", "expires_in must be a positive duration such as \"720h\", at most ten years")
		}
		expires = now.Add(d)
	case req.ExpiresAt != nil:
		if !req.ExpiresAt.After(now) || req.ExpiresAt.Sub(now) > maxTokenLifetime {
			return badRequest("invalid_expiry", "expires_at must be in the future, at most ten years away")
		}
		expires = *req.ExpiresAt
	}
	tok, err := a.tokens.MintTenantToken(c.Request().Context(), t, principal(c).Actor(), auth.MintOptions{Name: req.Name, ExpiresAt: expires})
	if err != nil {
		return a.fail(err)
	}
	h := auth.Hash(tok)
	out := mintedToken{Tenant: t, Token: tok, ID: auth.TokenID(h), Name: req.Name}
	if !expires.IsZero() {
		e := expires.UTC().Truncate(time.Millisecond)
		out.ExpiresAt = &e
	}
	a.log.InfoContext(c.Request().Context(), "tenant token minted", "tenant", t, "token_id", out.ID, "actor", principal(c).Actor())
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

type tokenList struct {
	Items []auth.TokenInfo `json:"items"`
}

func (a *API) listTokens(c echo.Context) error {
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	items, err := a.tokens.List(c.Request().Context(), t)
	if err != nil {
		return a.fail(err)
	}
	if items == nil {
		items = []auth.TokenInfo{}
	}
	return c.JSON(http.StatusOK, tokenList{Items: items})
}

var tokenIDRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

func (a *API) revokeToken(c echo.Context) error {
	id := c.Param("id")
	if !tokenIDRE.MatchString(id) {
		return badRequest("invalid_token_id", "a token id is 8 lowercase hex digits (the id GET /tokens lists)")
	}
	t, err := a.requireTenant(c)
	if err != nil {
		return err
	}
	switch err := a.tokens.Revoke(c.Request().Context(), t, id); {
	case errors.Is(err, auth.ErrTokenNotFound):
		return echoserver.Errorf(http.StatusNotFound, "token_not_found", "tenant %s has no minted token %s", t, id)
	case errors.Is(err, auth.ErrTokenConfigured):
		return echoserver.Errorf(http.StatusConflict, "token_configured", "token %s comes from OWNERSYNC_TENANT_TOKENS; remove it there and restart mapper", id)
	case errors.Is(err, auth.ErrTokenAmbiguous):
		return echoserver.Errorf(http.StatusConflict, "token_ambiguous", "more than one token of tenant %s has id %s; remove the right one from admin_tokens", t, id)
	case err != nil:
		return a.fail(err)
	}
	a.log.InfoContext(c.Request().Context(), "tenant token revoked", "tenant", t, "token_id", id, "actor", principal(c).Actor())
	return c.NoContent(http.StatusNoContent)
}
