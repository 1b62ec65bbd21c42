// Package auth authenticates the admin API's bearer tokens: the operator token (every tenant; a
// previous one is accepted too until a set time during a rotation) and per-tenant tokens (one
// tenant), configured or minted. Minted tokens may expire and can be listed and revoked; every
// check of a minted token reads MongoDB, so a revocation holds at once on every mapper replica.
// Tokens are never stored or compared in plain text.
//
// Hashing: a token is stored as SHA-256(token). Slow password hashes (argon2, bcrypt) exist to make
// guessing low-entropy human passwords expensive; admin tokens are random strings with at least 128
// bits of entropy (minted tokens have 256), so a single fast hash already makes an offline search
// infeasible, and it lets a request be authenticated in microseconds without a per-request CPU
// cost an attacker could exploit. Configured tokens must be at least 16 characters (config checks).
// Hashes are compared with crypto/subtle in constant time.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/tenant"
)

// Collection holds minted tenant tokens (hashes only).
const Collection = "admin_tokens"

// Indexes are the admin_tokens indexes (mapper creates them at start).
var Indexes = []mongodb.Index{
	{Collection: Collection, Name: "tenant", Keys: bson.D{{Key: "tenant", Value: 1}}},
}

// MinTokenLength is the shortest token accepted from configuration.
const MinTokenLength = 16

// ErrUnauthenticated means the token is missing, malformed, unknown, expired or revoked (HTTP 401).
var ErrUnauthenticated = errors.New("unauthenticated")

// Errors of Revoke.
var (
	// ErrTokenNotFound: no minted token of the tenant has that id.
	ErrTokenNotFound = errors.New("token not found")
	// ErrTokenConfigured: the token comes from configuration (OWNERSYNC_TENANT_TOKENS); remove it there.
	ErrTokenConfigured = errors.New("token is configured, not minted")
	// ErrTokenAmbiguous: more than one minted token of the tenant has that id (practically never).
	ErrTokenAmbiguous = errors.New("token id is ambiguous")
)

// Principal is who a token belongs to.
type Principal struct {
	// Operator tokens reach every tenant.
	Operator bool `json:"operator"`
	// Tenant is the one tenant a tenant token reaches; empty for the operator.
	Tenant string `json:"tenant,omitempty"`
	// TokenID names the token in audit trails (a hash prefix, never the token).
	TokenID string `json:"token_id"`
}

// CanAccess reports whether the principal may act on tenant t.
func (p Principal) CanAccess(t string) bool { return p.Operator || (p.Tenant != "" && p.Tenant == t) }

// Actor names the principal for audit records ("operator:<id>" or "tenant:<t>:<id>").
func (p Principal) Actor() string {
	if p.Operator {
		return "operator:" + p.TokenID
	}
	return "tenant:" + p.Tenant + ":" + p.TokenID
}

// Options configure the store.
type Options struct {
	// OperatorToken reaches every tenant (OWNERSYNC_OPERATOR_TOKEN).
	OperatorToken string
	// PreviousOperatorToken is accepted as well until PreviousOperatorTokenUntil, so that a new
	// operator token can be rolled out to every replica and script before the old one stops
	// (OWNERSYNC_OPERATOR_TOKEN_PREVIOUS, OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL).
	PreviousOperatorToken      string
	PreviousOperatorTokenUntil time.Time
	// TenantTokens maps tenant id → token (OWNERSYNC_TENANT_TOKENS).
	TenantTokens map[string]string
	// DB holds minted tokens; nil keeps only the configured ones.
	DB *mongo.Database
	// Now is the clock (tests).
	Now func() time.Time
}

type entry struct {
	hash      [sha256.Size]byte
	principal Principal
	until     time.Time // zero: no end
}

// Store authenticates tokens against configured hashes and the admin_tokens collection.
type Store struct {
	static []entry
	coll   *mongo.Collection
	now    func() time.Time
}

// tokenDoc is an admin_tokens document: {_id: hex sha256, tenant, created_at, created_by, and
// optionally name, expires_at}.
type tokenDoc struct {
	Hash      string     `bson:"_id"`
	Tenant    string     `bson:"tenant"`
	Name      string     `bson:"name,omitempty"`
	CreatedAt time.Time  `bson:"created_at"`
	CreatedBy string     `bson:"created_by"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
}

// TokenInfo describes a tenant token for listing: never its secret or full hash.
type TokenInfo struct {
	// ID is the token's audit id (the first 8 hex digits of its SHA-256), the one in "actor".
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Source is "minted" (API or console; revocable) or "configured" (OWNERSYNC_TENANT_TOKENS).
	Source    string     `json:"source"`
	Name      string     `json:"name,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Expired   bool       `json:"expired"`
}

// MintOptions are the optional properties of a minted token.
type MintOptions struct {
	// Name helps admins tell tokens apart (at most MaxTokenNameLength characters).
	Name string
	// ExpiresAt ends the token; zero means it lasts until revoked.
	ExpiresAt time.Time
}

// MaxTokenNameLength bounds MintOptions.Name.
const MaxTokenNameLength = 100

// New hashes the configured tokens; the plain values are not kept.
func New(o Options) (*Store, error) {
	s := &Store{now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if o.DB != nil {
		s.coll = o.DB.Collection(Collection)
	}
	if o.OperatorToken != "" {
		if len(o.OperatorToken) < MinTokenLength {
			return nil, fmt.Errorf("operator token must be at least %d characters", MinTokenLength)
		}
		h := Hash(o.OperatorToken)
		s.static = append(s.static, entry{hash: h, principal: Principal{Operator: true, TokenID: tokenID(h)}})
	}
	if o.PreviousOperatorToken != "" {
		switch {
		case len(o.PreviousOperatorToken) < MinTokenLength:
			return nil, fmt.Errorf("previous operator token must be at least %d characters", MinTokenLength)
		case o.PreviousOperatorTokenUntil.IsZero():
			return nil, errors.New("a previous operator token needs the time it stops being accepted")
		case o.PreviousOperatorToken == o.OperatorToken:
			return nil, errors.New("the previous operator token equals the current one")
		}
		h := Hash(o.PreviousOperatorToken)
		s.static = append(s.static, entry{hash: h, principal: Principal{Operator: true, TokenID: tokenID(h)}, until: o.PreviousOperatorTokenUntil})
	}
	for t, tok := range o.TenantTokens {
		if !tenant.ValidID(t) {
			return nil, fmt.Errorf("tenant token for invalid tenant id %q", t)
		}
		if len(tok) < MinTokenLength {
			return nil, fmt.Errorf("tenant %s: token must be at least %d characters", t, MinTokenLength)
		}
		h := Hash(tok)
		s.static = append(s.static, entry{hash: h, principal: Principal{Tenant: t, TokenID: tokenID(h)}})
	}
	return s, nil
}

// Hash is the stored form of a token.
func Hash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// TokenID is the audit id of a token hash (Principal.TokenID, TokenInfo.ID).
func TokenID(h [sha256.Size]byte) string { return tokenID(h) }

func tokenID(h [sha256.Size]byte) string { return hex.EncodeToString(h[:4]) }

// Authenticate returns the principal of token, or an error wrapping ErrUnauthenticated.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	if len(token) < MinTokenLength || len(token) > 512 {
		return Principal{}, ErrUnauthenticated
	}
	return s.AuthenticateHash(ctx, Hash(token))
}

// AuthenticateHash is Authenticate for a token known by its hash only (a console session keeps
// the hash of the token it was opened with and checks it again on every request, so that a
// revoked, expired or rotated-out token ends its sessions too).
func (s *Store) AuthenticateHash(ctx context.Context, h [sha256.Size]byte) (Principal, error) {
	now := s.now()
	// Compare against every configured hash without stopping early, in constant time each.
	var found Principal
	ok := 0
	for _, e := range s.static {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 && (e.until.IsZero() || now.Before(e.until)) {
			found = e.principal
			ok = 1
		}
	}
	if ok == 1 {
		return found, nil
	}
	if s.coll == nil {
		return Principal{}, ErrUnauthenticated
	}
	// No cache: a revocation on one replica must hold on every other at once. The lookup key is
	// the hash itself, so a timing difference reveals nothing about the token.
	var d tokenDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: hex.EncodeToString(h[:])}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	stored, err := hex.DecodeString(d.Hash)
	if err != nil || subtle.ConstantTimeCompare(stored, h[:]) != 1 || !tenant.ValidID(d.Tenant) {
		return Principal{}, ErrUnauthenticated
	}
	if d.ExpiresAt != nil && !now.Before(*d.ExpiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Tenant: d.Tenant, TokenID: tokenID(h)}, nil
}

// List returns the tenant's tokens, configured ones first, minted ones by creation time.
func (s *Store) List(ctx context.Context, tenantID string) ([]TokenInfo, error) {
	var out []TokenInfo
	for _, e := range s.static {
		if !e.principal.Operator && e.principal.Tenant == tenantID {
			out = append(out, TokenInfo{ID: e.principal.TokenID, Tenant: tenantID, Source: "configured"})
		}
	}
	if s.coll == nil {
		return out, nil
	}
	docs, err := s.minted(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, d := range docs {
		created := d.CreatedAt
		out = append(out, TokenInfo{ID: d.Hash[:8], Tenant: d.Tenant, Source: "minted", Name: d.Name,
			CreatedAt: &created, CreatedBy: d.CreatedBy, ExpiresAt: d.ExpiresAt,
			Expired: d.ExpiresAt != nil && !now.Before(*d.ExpiresAt)})
	}
	return out, nil
}

func (s *Store) minted(ctx context.Context, tenantID string) ([]tokenDoc, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "tenant", Value: tenantID}})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var docs []tokenDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].CreatedAt.Before(docs[j].CreatedAt) })
	return docs, nil
}

// Revoke deletes the tenant's minted token with the given id (TokenInfo.ID). It answers
// ErrTokenNotFound, ErrTokenConfigured or ErrTokenAmbiguous when it cannot.
func (s *Store) Revoke(ctx context.Context, tenantID, id string) error {
	for _, e := range s.static {
		if !e.principal.Operator && e.principal.Tenant == tenantID && e.principal.TokenID == id {
			return ErrTokenConfigured
		}
	}
	if s.coll == nil || len(id) != 8 {
		return ErrTokenNotFound
	}
	docs, err := s.minted(ctx, tenantID)
	if err != nil {
		return err
	}
	var match []string
	for _, d := range docs {
		if strings.HasPrefix(d.Hash, id) {
			match = append(match, d.Hash)
		}
	}
	switch len(match) {
	case 0:
		return ErrTokenNotFound
	case 1:
	default:
		return ErrTokenAmbiguous
	}
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: match[0]}, {Key: "tenant", Value: tenantID}})
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if res.DeletedCount == 0 {
		return ErrTokenNotFound
	}
	return nil
}

// MintTenantToken creates a random token for tenant, stores its hash and returns the token (the
// only time it is ever visible).
func (s *Store) MintTenantToken(ctx context.Context, tenantID, createdBy string, o MintOptions) (string, error) {
	if s.coll == nil {
		return "", errors.New("minting tokens needs a database")
	}
	if !tenant.ValidID(tenantID) {
		return "", fmt.Errorf("invalid tenant id %q", tenantID)
	}
	if len(o.Name) > MaxTokenNameLength {
		return "", fmt.Errorf("token name longer than %d characters", MaxTokenNameLength)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	var expires *time.Time
	if !o.ExpiresAt.IsZero() {
		if !o.ExpiresAt.After(now) {
			return "", errors.New("token expiry is not in the future")
		}
		e := o.ExpiresAt.UTC().Truncate(time.Millisecond)
		expires = &e
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := "ost_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := Hash(token)
	_, err := s.coll.InsertOne(ctx, tokenDoc{Hash: hex.EncodeToString(h[:]), Tenant: tenantID, Name: o.Name,
		CreatedAt: now, CreatedBy: createdBy, ExpiresAt: expires})
	if err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	return token, nil
}

// BearerToken extracts the token of an "Authorization: Bearer <token>" header value.
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
