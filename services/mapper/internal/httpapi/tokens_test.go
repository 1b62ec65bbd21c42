package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/auth"
)

type tokenItem struct {
	ID        string     `json:"id"`
	Tenant    string     `json:"tenant"`
	Source    string     `json:"source"`
	Name      string     `json:"name"`
	CreatedBy string     `json:"created_by"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func listTokens(t *testing.T, e *env, tn string) []tokenItem {
	t.Helper()
	r := e.do("GET", "/v1/tenants/"+tn+"/tokens", operatorToken, "")
	if r.Status != 200 {
		t.Fatalf("list tokens = %d %s", r.Status, r.Body)
	}
	var l struct{ Items []tokenItem }
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestTenantTokensListedAndRevoked is issue 13 item 13: the operator lists a tenant's tokens
// (never their secrets), revokes a minted one — refused at once on every replica, including one
// that had already accepted it — and cannot revoke a configured one through the API.
func TestTenantTokensListedAndRevoked(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/tenants/acme/tokens", operatorToken, `{"name":"ci pipeline","expires_in":"720h"}`)
	if r.Status != 201 {
		t.Fatalf("mint = %d %s", r.Status, r.Body)
	}
	var m struct {
		Token, ID string
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(r.Body, &m); err != nil || m.ID != tokenID(m.Token) || m.ExpiresAt == nil {
		t.Fatalf("mint body = %s (%v)", r.Body, err)
	}
	second := e.do("POST", "/v1/tenants/acme/tokens", operatorToken, "")
	if second.Status != 201 {
		t.Fatalf("mint without a body = %d %s", second.Status, second.Body)
	}

	// Another replica accepts the token before it is revoked.
	other, err := auth.New(auth.Options{OperatorToken: operatorToken, DB: e.db})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(t.Context(), m.Token); err != nil {
		t.Fatal(err)
	}

	items := listTokens(t, e, "acme")
	var minted, configured int
	for _, it := range items {
		switch it.Source {
		case "minted":
			minted++
			if it.ID == m.ID && (it.Name != "ci pipeline" || it.ExpiresAt == nil || it.CreatedBy != operatorActor) {
				t.Errorf("listed token = %+v", it)
			}
		case "configured":
			configured++
			if it.ID != tokenID(acmeToken) {
				t.Errorf("configured token id = %q", it.ID)
			}
		}
		if it.Tenant != "acme" {
			t.Errorf("acme's list holds %+v", it)
		}
	}
	if minted != 2 || configured != 1 {
		t.Errorf("listed %d minted and %d configured, want 2 and 1: %+v", minted, configured, items)
	}
	if r := e.do("GET", "/v1/tenants/acme/tokens", operatorToken, ""); strings.Contains(string(r.Body), m.Token) || strings.Contains(string(r.Body), "hash") {
		t.Errorf("the list shows a secret: %s", r.Body)
	}

	if r := e.do("GET", "/v1/tenants/acme/tokens", acmeToken, ""); r.Status != 403 {
		t.Errorf("a tenant token listed tokens: %d", r.Status)
	}
	if r := e.do("DELETE", "/v1/tenants/acme/tokens/"+m.ID, m.Token, ""); r.Status != 403 {
		t.Errorf("a tenant token revoked a token: %d", r.Status)
	}
	if r := e.do("DELETE", "/v1/tenants/globex/tokens/"+m.ID, operatorToken, ""); r.Status != 404 {
		t.Errorf("revoking acme's token under globex = %d, want 404", r.Status)
	}
	if r := e.do("DELETE", "/v1/tenants/acme/tokens/"+m.ID, operatorToken, ""); r.Status != 204 {
		t.Fatalf("revoke = %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/v1/tenants/acme", m.Token, ""); r.Status != 401 {
		t.Errorf("a revoked token = %d, want 401", r.Status)
	}
	if _, err := other.Authenticate(t.Context(), m.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("the other replica still accepts the revoked token: %v", err)
	}
	if r := e.do("DELETE", "/v1/tenants/acme/tokens/"+m.ID, operatorToken, ""); r.Status != 404 {
		t.Errorf("revoking twice = %d, want 404", r.Status)
	}
	if r := e.do("DELETE", "/v1/tenants/acme/tokens/"+tokenID(acmeToken), operatorToken, ""); r.Status != 409 || r.errorCode() != "token_configured" {
		t.Errorf("revoking a configured token = %d %s, want 409 token_configured", r.Status, r.Body)
	}
	if len(listTokens(t, e, "acme")) != 2 {
		t.Errorf("after revoking: %+v", listTokens(t, e, "acme"))
	}
	for _, body := range []string{`{"expires_in":"-1h"}`, `{"expires_in":"soon"}`, `{"name":"` + strings.Repeat("n", 200) + `"}`} {
		if r := e.do("POST", "/v1/tenants/acme/tokens", operatorToken, body); r.Status != 400 {
			t.Errorf("mint %s = %d, want 400", body, r.Status)
		}
	}
}

// TestTenantTokensExpire is issue 13 item 13: a minted token with an expiry stops working then,
// and is listed as expired.
func TestTenantTokensExpire(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := auth.New(auth.Options{OperatorToken: operatorToken, DB: e.db, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, err := s.MintTenantToken(ctx, "acme", "test", auth.MintOptions{ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("at expiry: %v", err)
	}
	list, err := s.List(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var expired bool
	for _, it := range list {
		if it.ID == tokenID(tok) {
			expired = it.Expired
		}
	}
	if !expired {
		t.Errorf("list does not show the token expired: %+v", list)
	}
}
