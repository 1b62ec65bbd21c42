package console

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/auth"
)

// Tenant tokens (issue 13 item 13): the operator lists, mints and revokes a tenant's tokens.

// operatorOnly refuses tenant admins.
func (c *Console) operatorOnly(h handler) handler {
	return func(r *req) error {
		if !r.sess.principal.Operator {
			return pageError(http.StatusForbidden, "Only the operator manages tokens.")
		}
		return h(r)
	}
}

func (c *Console) tokensPage(r *req) error {
	return c.renderTokens(r, "", nil)
}

func (c *Console) renderTokens(r *req, flash string, minted map[string]any) error {
	items, err := c.tokens.List(r.ctx, r.tenant.ID)
	if err != nil {
		return err
	}
	return c.render(r, http.StatusOK, "tokens", "Tokens", map[string]any{"Tokens": items, "Minted": minted, "Done": flash})
}

// maxTokenDays bounds a minted token's lifetime from the console (ten years).
const maxTokenDays = 3650

func (c *Console) tokensMint(r *req) error {
	name := strings.TrimSpace(r.ec.Request().PostFormValue("name"))
	if len(name) > auth.MaxTokenNameLength {
		return pageError(http.StatusBadRequest, "A token name is at most %d characters.", auth.MaxTokenNameLength)
	}
	var o auth.MintOptions
	o.Name = name
	if d := strings.TrimSpace(r.ec.Request().PostFormValue("expires_days")); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxTokenDays {
			return pageError(http.StatusBadRequest, "Expiry is a number of days from 1 to %d, or empty for none.", maxTokenDays)
		}
		o.ExpiresAt = c.cfg.Now().Add(time.Duration(n) * 24 * time.Hour)
	}
	tok, err := c.tokens.MintTenantToken(r.ctx, r.tenant.ID, r.sess.principal.Actor(), o)
	if err != nil {
		return err
	}
	h := auth.Hash(tok)
	c.log.InfoContext(r.ctx, "tenant token minted", "tenant", r.tenant.ID, "token_id", auth.TokenID(h), "actor", r.sess.principal.Actor())
	return c.renderTokens(r, "", map[string]any{"Token": tok, "ID": auth.TokenID(h), "Name": name})
}

var tokenIDRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

func (c *Console) tokensRevoke(r *req) error {
	id := r.ec.Request().PostFormValue("id")
	if !tokenIDRE.MatchString(id) {
		return pageError(http.StatusBadRequest, "That is not a token id.")
	}
	switch err := c.tokens.Revoke(r.ctx, r.tenant.ID, id); {
	case errors.Is(err, auth.ErrTokenNotFound):
		return pageError(http.StatusNotFound, "Tenant %s has no minted token %s.", r.tenant.ID, id)
	case errors.Is(err, auth.ErrTokenConfigured):
		return pageError(http.StatusConflict, "Token %s is configured (OWNERSYNC_TENANT_TOKENS): remove it there and restart mapper.", id)
	case errors.Is(err, auth.ErrTokenAmbiguous):
		return pageError(http.StatusConflict, "More than one token has id %s.", id)
	case err != nil:
		return err
	}
	c.log.InfoContext(r.ctx, "tenant token revoked", "tenant", r.tenant.ID, "token_id", id, "actor", r.sess.principal.Actor())
	return r.ec.Redirect(http.StatusSeeOther, c.tenantURL(r, "tokens")+"?done=revoked")
}
