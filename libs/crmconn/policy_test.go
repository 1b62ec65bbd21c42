package crmconn_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
)

// marker stands for whatever a hostile or broken host answers; it must never reach an error.
const marker = "CRM-BODY-MARKER"

// collector counts the requests a host that must never be called receives.
func collector(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSecretsStayWithTheProvider is issue 13 item 1 at the moment of use: a reference outside the
// operator's namespace does not resolve, a URL off the providers' hosts is not called, a token
// answer or a redirect cannot send a tenant's credentials elsewhere, and nothing a host answers
// reaches an error beyond a status, a code and a short printable message.
func TestSecretsStayWithTheProvider(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"OWNERSYNC_SECRET_SF": "sf-secret", "OWNERSYNC_SECRET_HS": "pat-secret", "OWNERSYNC_OPERATOR_TOKEN": "operator-token-value"}
	secrets := &secretref.Resolver{Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: t.TempDir()}, Getenv: func(k string) string { return env[k] }}
	thief, hits := collector(t)
	sfAt := func(id, url, secretRef string) *tenant.Tenant {
		return &tenant.Tenant{ID: id, UpdatedAt: time.Now(), Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true}, InstanceURL: url, APIVersion: "62.0",
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "c", ClientSecretRef: secretRef}}}
	}
	hsAt := func(id, url, tokenRef string) *tenant.Tenant {
		return &tenant.Tenant{ID: id, UpdatedAt: time.Now(), HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true, APIBaseURL: url},
			Auth: tenant.HSAuth{Kind: "private_app", TokenRef: tokenRef}}}
	}
	sandbox := crmconn.New(crmconn.Config{Secrets: secrets, Timeout: 5 * time.Second, AnyCRMHost: true})
	production := crmconn.New(crmconn.Config{Secrets: secrets, Timeout: 5 * time.Second})

	t.Run("references outside the namespace", func(t *testing.T) {
		for _, ref := range []string{"env:OWNERSYNC_OPERATOR_TOKEN", "file:/proc/self/environ"} {
			_, err := sandbox.SalesforceFor(sfAt("a", thief.URL, ref))
			var ce *crmconn.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, secretref.ErrOutsideNamespace) {
				t.Errorf("%s: %v, want a ConfigError outside the namespace", ref, err)
			}
			_, err = sandbox.HubSpotFor(hsAt("b", thief.URL, ref))
			if !errors.Is(err, secretref.ErrOutsideNamespace) || strings.Contains(err.Error(), "operator-token-value") {
				t.Errorf("%s: %v, want a refusal without the value", ref, err)
			}
		}
	})
	t.Run("hosts off the allowlist", func(t *testing.T) {
		if _, err := production.SalesforceFor(sfAt("c", thief.URL, "env:OWNERSYNC_SECRET_SF")); err == nil {
			t.Error("a Salesforce client for a loopback URL was built under the production policy")
		}
		if _, err := production.HubSpotFor(hsAt("d", thief.URL, "env:OWNERSYNC_SECRET_HS")); err == nil {
			t.Error("a HubSpot client for a loopback URL was built under the production policy")
		}
	})
	if n := hits.Load(); n != 0 {
		t.Fatalf("the collector received %d requests", n)
	}

	t.Run("a token answer naming another instance", func(t *testing.T) {
		var seen []string
		c := crmconn.New(crmconn.Config{Secrets: secrets, Timeout: 5 * time.Second, HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen = append(seen, r.URL.Host+r.URL.Path)
			body := `{"access_token":"tok","token_type":"Bearer","instance_url":"https://collector.example"}`
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})}})
		tn := sfAt("e", "", "env:OWNERSYNC_SECRET_SF")
		tn.Salesforce.Auth.TokenURL = "https://login.salesforce.com/services/oauth2/token"
		sf, err := c.SalesforceFor(tn)
		if err != nil {
			t.Fatal(err)
		}
		err = sf.UpdateOwner(ctx, "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
		if !errors.Is(err, crmconn.ErrHostNotAllowed) {
			t.Errorf("UpdateOwner = %v, want ErrHostNotAllowed", err)
		}
		if len(seen) != 1 || seen[0] != "login.salesforce.com/services/oauth2/token" {
			t.Errorf("requests sent: %v, want only the token request", seen)
		}
	})

	// A host that answers with redirects and pages.
	var apiHits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			if r.URL.Query().Get("fail") != "" || r.FormValue("refresh_token") != "" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"`+strings.Repeat("x", 300)+marker+`"}`)
				return
			}
			if r.FormValue("client_id") == "page" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, "<html>"+strings.Repeat("operator secrets ", 100)+marker+"</html>")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer"}`)
			return
		}
		apiHits.Add(1)
		switch {
		case strings.Contains(r.URL.Path, "/owners/1"):
			http.Redirect(w, r, thief.URL+"/steal", http.StatusFound)
		case strings.Contains(r.URL.Path, "/owners/2"), strings.Contains(r.URL.Path, "/sobjects/Contact/0035g00000QwErTAAV"):
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "<html>"+strings.Repeat("operator secrets ", 100)+marker+"</html>")
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `[{"errorCode":"BAD\nCODE `+marker+`","message":"line one\nline two `+strings.Repeat("y", 300)+marker+`"}]`)
		}
	}))
	t.Cleanup(api.Close)
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded", what)
		}
		if s := err.Error(); strings.Contains(s, marker) || strings.Contains(s, "operator secrets") || strings.Contains(s, "\n") || len(s) > 500 {
			t.Errorf("%s: the error carries the host's answer (%d bytes): %q", what, len(s), s)
		}
	}
	t.Run("answers never reach errors", func(t *testing.T) {
		hs, err := sandbox.HubSpotFor(hsAt("f", api.URL, "env:OWNERSYNC_SECRET_HS"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = hs.GetOwner(ctx, "1", false)
		check(t, "a redirect", err)
		_, err = hs.GetOwner(ctx, "2", false)
		check(t, "an HTML error page", err)
		sf, err := sandbox.SalesforceFor(sfAt("g", api.URL, "env:OWNERSYNC_SECRET_SF"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, "a Salesforce HTML error page", sf.UpdateOwner(ctx, "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV"))
		check(t, "a Salesforce error with a long message", sf.UpdateOwner(ctx, "Lead", "00Q5g00000QwErTAAV", "0055g00000HjKlMAAV"))
		page := sfAt("h", api.URL, "env:OWNERSYNC_SECRET_SF")
		page.Salesforce.Auth.ClientID = "page"
		if sf, err = sandbox.SalesforceFor(page); err != nil {
			t.Fatal(err)
		}
		check(t, "a Salesforce token endpoint's page", sf.UpdateOwner(ctx, "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV"))
		oauth := hsAt("i", api.URL, "")
		oauth.HubSpot.Auth = tenant.HSAuth{Kind: "oauth", ClientID: "c", ClientSecretRef: "env:OWNERSYNC_SECRET_HS", RefreshTokenRef: "env:OWNERSYNC_SECRET_SF", TokenURL: api.URL + "/oauth/v1/token"}
		if hs, err = sandbox.HubSpotFor(oauth); err != nil {
			t.Fatal(err)
		}
		_, err = hs.GetOwner(ctx, "3", false)
		check(t, "a HubSpot token refusal", err)
	})
	if n := hits.Load(); n != 0 {
		t.Errorf("the redirect target received %d requests", n)
	}
}
