package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/mongodb"
)

// SessionsCollection holds the admin console's sessions (issue 15): every mapper replica reads
// the same sessions, so a cookie works on any replica and survives a restart, and signing out on
// one replica ends the session on all of them.
const SessionsCollection = "console_sessions"

// SessionIndexes are the console_sessions indexes (expired sessions are deleted by expires_at;
// FerretDB v1 has no TTL indexes, so the console deletes them itself).
var SessionIndexes = []mongodb.Index{
	{Collection: SessionsCollection, Name: "expires_at", Keys: bson.D{{Key: "expires_at", Value: 1}}},
}

// ErrNoSession: the session id is unknown, expired or signed out.
var ErrNoSession = errors.New("no such session")

// Session is one signed-in console session.
type Session struct {
	// ID is the cookie's value; only its SHA-256 is stored, so the collection holds no usable cookie.
	ID        string
	Principal Principal
	// TokenHash is the SHA-256 of the token the session was opened with (checked on every request).
	TokenHash [sha256.Size]byte
	// CSRF is the token every form of the session carries.
	CSRF    string
	Expires time.Time
}

type sessionDoc struct {
	ID        string    `bson:"_id"` // hex SHA-256 of the session id
	Operator  bool      `bson:"operator"`
	Tenant    string    `bson:"tenant,omitempty"`
	TokenID   string    `bson:"token_id"`
	TokenHash string    `bson:"token_hash"`
	CSRF      string    `bson:"csrf"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Sessions stores console sessions in MongoDB. Methods take the caller's clock reading, so the
// console's clock decides expiry.
type Sessions struct {
	coll *mongo.Collection
}

// NewSessions returns the session store on db.
func NewSessions(db *mongo.Database) *Sessions {
	return &Sessions{coll: db.Collection(SessionsCollection)}
}

func sessionKey(id string) string { h := sha256.Sum256([]byte(id)); return hex.EncodeToString(h[:]) }

// Create stores s and deletes expired sessions.
func (s *Sessions) Create(ctx context.Context, sess Session, now time.Time) error {
	if _, err := s.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}}); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	_, err := s.coll.InsertOne(ctx, sessionDoc{ID: sessionKey(sess.ID), Operator: sess.Principal.Operator, Tenant: sess.Principal.Tenant,
		TokenID: sess.Principal.TokenID, TokenHash: hex.EncodeToString(sess.TokenHash[:]), CSRF: sess.CSRF,
		ExpiresAt: sess.Expires.UTC().Truncate(time.Millisecond)})
	if err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// Get returns the live session of id, or ErrNoSession.
func (s *Sessions) Get(ctx context.Context, id string, now time.Time) (*Session, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrNoSession
	}
	var d sessionDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: sessionKey(id)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("look up session: %w", err)
	}
	if !now.Before(d.ExpiresAt) {
		_ = s.Delete(ctx, id)
		return nil, ErrNoSession
	}
	out := &Session{ID: id, Principal: Principal{Operator: d.Operator, Tenant: d.Tenant, TokenID: d.TokenID}, CSRF: d.CSRF, Expires: d.ExpiresAt}
	if b, err := hex.DecodeString(d.TokenHash); err == nil && len(b) == sha256.Size {
		copy(out.TokenHash[:], b)
	} else {
		return nil, ErrNoSession
	}
	return out, nil
}

// Delete ends the session of id (signing out); unknown ids are not an error.
func (s *Sessions) Delete(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: sessionKey(id)}}); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Count is the number of live sessions.
func (s *Sessions) Count(ctx context.Context, now time.Time) (int, error) {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}})
	return int(n), err
}
