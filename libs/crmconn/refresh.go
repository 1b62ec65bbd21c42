package crmconn

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/secretbox"
)

// refreshSource gets an access token with the refresh token a reference names, read at each
// refresh (another replica may have rotated it), and stores the new refresh token when the CRM
// rotates it. Each Token call refreshes; callers cache.
type refreshSource struct {
	oauth   oauth2.Config
	ref     string
	secrets Resolver
	stored  *secretbox.Store
	hc      func() context.Context
	timeout time.Duration
}

func (c *Clients) refreshSource(clientID, clientSecret, tokenURL, ref string) *refreshSource {
	timeout := c.cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hc := c.cfg.HTTPClient
	return &refreshSource{
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: clientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}},
		ref: ref, secrets: c.cfg.Secrets, stored: c.cfg.Stored, timeout: timeout,
		hc: func() context.Context {
			if hc == nil {
				return context.Background()
			}
			return context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		},
	}
}

func (r *refreshSource) Token() (*oauth2.Token, error) {
	rt, err := r.secrets.Resolve(r.ref)
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	ctx, cancel := context.WithTimeout(r.hc(), r.timeout)
	defer cancel()
	tok, err := r.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh access token: %w", err)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != rt && r.stored != nil {
		if t, name, ok := secretbox.ParseRef(r.ref); ok {
			if err := r.stored.Put(ctx, t, name, secretbox.NewSecret(tok.RefreshToken)); err != nil {
				return nil, fmt.Errorf("store rotated refresh token: %w", err)
			}
		}
	}
	return tok, nil
}

// isNilResolver reports whether r is a typed nil pointer (a nil *secretref.Resolver passed as
// Config.Secrets, as callers did when the field was a pointer).
func isNilResolver(r Resolver) bool {
	v := reflect.ValueOf(r)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
