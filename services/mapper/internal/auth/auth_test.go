package auth_test

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/services/mapper/internal/auth"
)

const (
	op   = "operator-token-0123456789"
	acme = "acme-token-abcdefghijklmn"
)

func id(tok string) string { h := auth.Hash(tok); return hex.EncodeToString(h[:4]) }

func TestAuthenticateConfiguredTokens(t *testing.T) {
	s, err := auth.New(auth.Options{OperatorToken: op, TenantTokens: map[string]string{"acme": acme}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		want        auth.Principal
		err         error
	}{
		{"operator", op, auth.Principal{Operator: true, TokenID: id(op)}, nil},
		{"tenant", acme, auth.Principal{Tenant: "acme", TokenID: id(acme)}, nil},
		{"unknown", "some-other-token-000000", auth.Principal{}, auth.ErrUnauthenticated},
		{"prefix of a token", op[:len(op)-1], auth.Principal{}, auth.ErrUnauthenticated},
		{"too short", "short", auth.Principal{}, auth.ErrUnauthenticated},
		{"empty", "", auth.Principal{}, auth.ErrUnauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Authenticate(context.Background(), tc.token)
			if !errors.Is(err, tc.err) || err == nil && tc.err != nil {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("principal (-want +got):\n%s", d)
			}
		})
	}
	if _, err := s.MintTenantToken(context.Background(), "acme", "test", auth.MintOptions{}); err == nil {
		t.Error("minting without a database succeeded")
	}
}

func TestNewRefusesWeakConfiguration(t *testing.T) {
	for name, o := range map[string]auth.Options{
		"short operator":      {OperatorToken: "short"},
		"short tenant token":  {TenantTokens: map[string]string{"acme": "short"}},
		"invalid tenant id":   {TenantTokens: map[string]string{"Acme Corp": acme}},
		"tenant id with dots": {TenantTokens: map[string]string{"acme.x": acme}},
	} {
		if _, err := auth.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPrincipalAccess(t *testing.T) {
	tests := []struct {
		p      auth.Principal
		tenant string
		want   bool
	}{
		{auth.Principal{Operator: true}, "acme", true},
		{auth.Principal{Tenant: "acme"}, "acme", true},
		{auth.Principal{Tenant: "acme"}, "globex", false},
		{auth.Principal{Tenant: "acme"}, "acme2", false},
		{auth.Principal{}, "acme", false},
		{auth.Principal{}, "", false},
	}
	for _, tc := range tests {
		if got := tc.p.CanAccess(tc.tenant); got != tc.want {
			t.Errorf("%+v.CanAccess(%q) = %v", tc.p, tc.tenant, got)
		}
	}
	if a := (auth.Principal{Tenant: "acme", TokenID: "ab12"}).Actor(); a != "tenant:acme:ab12" {
		t.Errorf("Actor = %q", a)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Basic abc", "", false},
		{"abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		tok, ok := auth.BearerToken(tc.header)
		if tok != tc.token || ok != tc.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, tok, ok, tc.token, tc.ok)
		}
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	tokens := map[string]string{}
	for _, t := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		tokens["tenant-"+t] = "tenant-token-" + t + "-0123456789"
	}
	s, err := auth.New(auth.Options{OperatorToken: op, TenantTokens: tokens})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, "tenant-token-h-0123456789"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOperatorTokenRotation is issue 13 item 13: during a rotation the previous operator token is
// accepted next to the new one until its end time, then refused; each has its own audit id.
func TestOperatorTokenRotation(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const prev = "previous-operator-token-000"
	s, err := auth.New(auth.Options{OperatorToken: op, PreviousOperatorToken: prev, PreviousOperatorTokenUntil: now.Add(time.Hour), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tok := range []string{op, prev} {
		p, err := s.Authenticate(ctx, tok)
		if err != nil || !p.Operator || p.TokenID != id(tok) {
			t.Errorf("during the rotation %s: %+v %v", tok[:8], p, err)
		}
	}
	now = now.Add(time.Hour)
	if _, err := s.Authenticate(ctx, prev); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("previous token after its end: %v", err)
	}
	if _, err := s.Authenticate(ctx, op); err != nil {
		t.Errorf("current token after the rotation: %v", err)
	}
	if _, err := auth.New(auth.Options{OperatorToken: op, PreviousOperatorToken: prev}); err == nil {
		t.Error("a previous operator token without an end time was accepted")
	}
	if _, err := auth.New(auth.Options{OperatorToken: op, PreviousOperatorToken: op, PreviousOperatorTokenUntil: now.Add(time.Hour)}); err == nil {
		t.Error("the previous operator token equal to the current one was accepted")
	}
}
