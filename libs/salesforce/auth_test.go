package salesforce_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/salesforce"
)

// serveNoContentPatch answers owner PATCHes with 204, or 401 for tokens in rejected.
func serveNoContentPatch(o *org, rejected ...string) {
	o.mux.HandleFunc("PATCH /services/data/"+version+"/sobjects/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, tok := range rejected {
			if r.Header.Get("Authorization") == "Bearer "+tok {
				writeJSON(w, http.StatusUnauthorized, golden(o.t, "error_invalid_session.json"))
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestClientCredentialsTokenRequest(t *testing.T) {
	o := newOrg(t)
	serveNoContentPatch(o)
	c := o.client(t)
	if err := c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV"); err != nil {
		t.Fatal(err)
	}
	want := []map[string][]string{{
		"grant_type":    {"client_credentials"},
		"client_id":     {"3MVG9-consumer-key"},
		"client_secret": {"s3cr3t&=+"},
	}}
	if diff := cmp.Diff(want, o.forms); diff != "" {
		t.Errorf("token form (-want +got):\n%s", diff)
	}
	// The API call went to the instance_url of the token response, with that token.
	reqs := o.apiRequests()
	if len(reqs) != 1 || reqs[0].Auth != "Bearer "+tokenN(1) || reqs[0].Path != "/services/data/v67.0/sobjects/Contact/0035g00000QwErTAAV" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestInstanceURLFromConfigWins(t *testing.T) {
	login := newOrg(t) // token endpoint; its instance_url points at itself
	api := newOrg(t)   // the configured instance
	serveNoContentPatch(login)
	serveNoContentPatch(api)
	c := login.client(t, func(cfg *salesforce.Config) { cfg.InstanceURL = api.srv.URL + "/" })
	if err := c.UpdateOwner(context.Background(), "Lead", "00Q5g00000ZxCvBEAV", "00G5g000003LkJhEAK"); err != nil {
		t.Fatal(err)
	}
	if login.tokenCount() != 1 || len(login.apiRequests()) != 0 || len(api.apiRequests()) != 1 {
		t.Errorf("login: %d tokens, %d API requests; api: %d API requests; want 1, 0, 1",
			login.tokenCount(), len(login.apiRequests()), len(api.apiRequests()))
	}
}

func TestTokenURLDefaultsToInstance(t *testing.T) {
	o := newOrg(t)
	serveNoContentPatch(o)
	c := o.client(t, func(cfg *salesforce.Config) { cfg.TokenURL, cfg.InstanceURL = "", o.srv.URL })
	if err := c.UpdateOwner(context.Background(), "Lead", "00Q5g00000ZxCvBEAV", "00G5g000003LkJhEAK"); err != nil {
		t.Fatal(err)
	}
	if o.tokenCount() != 1 || len(o.apiRequests()) != 1 {
		t.Errorf("%d tokens, %d API requests; want 1 and 1", o.tokenCount(), len(o.apiRequests()))
	}
}

func TestJWTBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		ttl      time.Duration
		audience string
		wantAud  string
		wantTTL  time.Duration
	}{
		{name: "defaults", wantAud: "https://login.salesforce.com", wantTTL: 3 * time.Minute},
		{name: "sandbox audience, short ttl", audience: "https://test.salesforce.com", wantAud: "https://test.salesforce.com", ttl: time.Minute, wantTTL: time.Minute},
		{name: "ttl over 3 minutes is clamped", ttl: 10 * time.Minute, wantAud: "https://login.salesforce.com", wantTTL: 3 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrg(t)
			serveNoContentPatch(o)
			c := o.client(t, func(cfg *salesforce.Config) {
				cfg.ClientCredentials = nil
				cfg.JWTBearer = &salesforce.JWTBearer{ClientID: "3MVG9-consumer-key", Username: "integration@acme.example.com", PrivateKey: key, Audience: tt.audience, TTL: tt.ttl}
				cfg.Now = func() time.Time { return now }
			})
			if err := c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV"); err != nil {
				t.Fatal(err)
			}
			if len(o.forms) != 1 {
				t.Fatalf("%d token requests", len(o.forms))
			}
			form := url.Values(o.forms[0])
			if diff := cmp.Diff([]string{"assertion", "grant_type"}, sortedKeys(form)); diff != "" {
				t.Errorf("form keys (-want +got):\n%s", diff)
			}
			if g := form.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				t.Errorf("grant_type = %q", g)
			}
			var claims jwt.RegisteredClaims
			tok, err := jwt.ParseWithClaims(form.Get("assertion"), &claims, func(tok *jwt.Token) (any, error) {
				return &key.PublicKey, nil
			}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
			if err != nil {
				t.Fatalf("assertion: %v", err)
			}
			if alg := tok.Header["alg"]; alg != "RS256" {
				t.Errorf("alg = %v", alg)
			}
			want := jwt.RegisteredClaims{
				Issuer: "3MVG9-consumer-key", Subject: "integration@acme.example.com",
				Audience: jwt.ClaimStrings{tt.wantAud}, ExpiresAt: jwt.NewNumericDate(now.Add(tt.wantTTL)),
			}
			if diff := cmp.Diff(want, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if claims.ExpiresAt.Sub(now) > 3*time.Minute {
				t.Errorf("exp is %v ahead, more than 3 minutes", claims.ExpiresAt.Sub(now))
			}
		})
	}
}

func sortedKeys(v url.Values) []string {
	var ks []string
	for k := range v {
		ks = append(ks, k)
	}
	if len(ks) == 2 && ks[0] > ks[1] {
		ks[0], ks[1] = ks[1], ks[0]
	}
	return ks
}

func TestUnauthorizedFetchesNewTokenAndRetriesOnce(t *testing.T) {
	tests := []struct {
		name       string
		rejected   []string
		wantTokens int
		wantCalls  int
		wantCode   string // "" for success
	}{
		{name: "expired token replaced", rejected: []string{tokenN(1)}, wantTokens: 2, wantCalls: 2},
		{name: "still rejected after one retry", rejected: []string{tokenN(1), tokenN(2), tokenN(3)}, wantTokens: 2, wantCalls: 2, wantCode: "INVALID_SESSION_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrg(t)
			serveNoContentPatch(o, tt.rejected...)
			err := o.client(t).UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
			var ae *salesforce.APIError
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("UpdateOwner = %v", err)
			case tt.wantCode != "" && (!errors.As(err, &ae) || ae.Code != tt.wantCode || ae.HTTPStatus != 401):
				t.Fatalf("UpdateOwner = %v, want %s", err, tt.wantCode)
			case tt.wantCode != "" && salesforce.Transient(err):
				t.Errorf("Transient(%v) = true", err)
			}
			reqs := o.apiRequests()
			if o.tokenCount() != tt.wantTokens || len(reqs) != tt.wantCalls {
				t.Fatalf("%d tokens, %d calls; want %d and %d", o.tokenCount(), len(reqs), tt.wantTokens, tt.wantCalls)
			}
			if reqs[1].Auth != "Bearer "+tokenN(2) || string(reqs[1].Body) != string(reqs[0].Body) {
				t.Errorf("retry sent %q with body %s, want the new token and the same body %s", reqs[1].Auth, reqs[1].Body, reqs[0].Body)
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		wantTransient bool
	}{
		{name: "bad client", status: 400, body: `{"error":"invalid_client_id","error_description":"client identifier invalid"}`},
		{name: "not pre-authorized", status: 400, body: `{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}`},
		{name: "token endpoint down", status: 503, body: `unavailable`, wantTransient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := salesforce.New(salesforce.Config{InstanceURL: srv.URL, APIVersion: "v67.0", HTTPClient: srv.Client(),
				ClientCredentials: &salesforce.ClientCredentials{ClientID: "id", ClientSecret: "secret-value"}})
			if err != nil {
				t.Fatal(err)
			}
			err = c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != tt.status {
				t.Fatalf("UpdateOwner = %#v, want an oauth2.RetrieveError with status %d", err, tt.status)
			}
			if got := salesforce.Transient(err); got != tt.wantTransient {
				t.Errorf("Transient = %v, want %v", got, tt.wantTransient)
			}
		})
	}
}

func TestSpansOnEveryRequest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	o := newOrg(t)
	serveUserQuery(t, o, makeUsers(t, 2500), 2000)
	c := o.client(t, func(cfg *salesforce.Config) { cfg.TracerProvider = tp })
	if err := c.QueryUsers(context.Background(), func([]salesforce.User) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	want := []string{"salesforce POST", "salesforce GET", "salesforce GET"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  salesforce.Config
	}{
		{name: "no version", cfg: salesforce.Config{InstanceURL: "https://x.my.salesforce.com", ClientCredentials: &salesforce.ClientCredentials{ClientID: "a", ClientSecret: "b"}}},
		{name: "bad version", cfg: salesforce.Config{APIVersion: "latest", InstanceURL: "https://x.my.salesforce.com", ClientCredentials: &salesforce.ClientCredentials{ClientID: "a", ClientSecret: "b"}}},
		{name: "no auth", cfg: salesforce.Config{APIVersion: "67.0", InstanceURL: "https://x.my.salesforce.com"}},
		{name: "no token url", cfg: salesforce.Config{APIVersion: "67.0", ClientCredentials: &salesforce.ClientCredentials{ClientID: "a", ClientSecret: "b"}}},
		{name: "batch size too small", cfg: salesforce.Config{APIVersion: "67.0", InstanceURL: "https://x.my.salesforce.com", QueryBatchSize: 100, ClientCredentials: &salesforce.ClientCredentials{ClientID: "a", ClientSecret: "b"}}},
		{name: "jwt without key", cfg: salesforce.Config{APIVersion: "67.0", JWTBearer: &salesforce.JWTBearer{ClientID: "a", Username: "u"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := salesforce.New(tt.cfg); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestTokenRequestHasTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before Close: the handler never reads the body, so it cannot see the client leave
	c, err := salesforce.New(salesforce.Config{InstanceURL: srv.URL, APIVersion: "67.0", HTTPClient: srv.Client(), Timeout: 50 * time.Millisecond,
		ClientCredentials: &salesforce.ClientCredentials{ClientID: "id", ClientSecret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
	if !errors.Is(err, context.DeadlineExceeded) || !salesforce.Transient(err) {
		t.Fatalf("UpdateOwner = %v, want a transient deadline error from the token request", err)
	}
}
