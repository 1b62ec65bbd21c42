// Package auth authenticates the admin API's bearer tokens: one operator token (every tenant) and
// per-tenant tokens (one tenant). Tokens are never stored or compared in plain text.
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
	"strings"
	"sync"
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

// ErrUnauthenticated means the token is missing, malformed or unknown (HTTP 401).
var ErrUnauthenticated = errors.New("unauthenticated")

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
}

// Store authenticates tokens against configured hashes and the admin_tokens collection.
type Store struct {
	static []entry
	coll   *mongo.Collection
	now    func() time.Time

	mu    sync.RWMutex
	cache map[[sha256.Size]byte]Principal // minted tokens already seen
}

// tokenDoc is an admin_tokens document: {_id: hex sha256, tenant, created_at, created_by}.
type tokenDoc struct {
	Hash      string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	CreatedAt time.Time `bson:"created_at"`
	CreatedBy string    `bson:"created_by"`
}

// New hashes the configured tokens; the plain values are not kept.
func New(o Options) (*Store, error) {
	s := &Store{now: o.Now, cache: map[[sha256.Size]byte]Principal{}}
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

func tokenID(h [sha256.Size]byte) string { return hex.EncodeToString(h[:4]) }

// Authenticate returns the principal of token, or an error wrapping ErrUnauthenticated.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	if len(token) < MinTokenLength || len(token) > 512 {
		return Principal{}, ErrUnauthenticated
	}
	h := Hash(token)
	// Compare against every configured hash without stopping early, in constant time each.
	var found Principal
	ok := 0
	for _, e := range s.static {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			found = e.principal
			ok = 1
		}
	}
	if ok == 1 {
		return found, nil
	}
	s.mu.RLock()
	p, hit := s.cache[h]
	s.mu.RUnlock()
	if hit {
		return p, nil
	}
	if s.coll == nil {
		return Principal{}, ErrUnauthenticated
	}
	// The lookup key is the hash itself, so a timing difference reveals nothing about the token.
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
	p = Principal{Tenant: d.Tenant, TokenID: tokenID(h)}
	s.mu.Lock()
	s.cache[h] = p
	s.mu.Unlock()
	return p, nil
}

// MintTenantToken creates a random token for tenant, stores its hash and returns the token (the
// only time it is ever visible).
func (s *Store) MintTenantToken(ctx context.Context, tenantID, createdBy string) (string, error) {
	if s.coll == nil {
		return "", errors.New("minting tokens needs a database")
	}
	if !tenant.ValidID(tenantID) {
		return "", fmt.Errorf("invalid tenant id %q", tenantID)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := "ost_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := Hash(token)
	_, err := s.coll.InsertOne(ctx, tokenDoc{Hash: hex.EncodeToString(h[:]), Tenant: tenantID,
		CreatedAt: s.now().UTC().Truncate(time.Millisecond), CreatedBy: createdBy})
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
