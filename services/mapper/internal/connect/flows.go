package connect

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/mongodb"
)

// FlowsCollection holds the pending Connect flows (issue 15 with issue 16): every mapper replica
// reads the same flows, so the provider's callback may reach any replica (no sticky sessions) and
// a restart keeps the flows in progress. A document is consumed once, by the callback.
const FlowsCollection = "connect_flows"

// FlowIndexes are the connect_flows indexes (expired flows are deleted by expires_at; FerretDB v1
// has no TTL indexes, so the service deletes them itself when a flow starts or an expired one is
// refused).
var FlowIndexes = []mongodb.Index{
	{Collection: FlowsCollection, Name: "expires_at", Keys: bson.D{{Key: "expires_at", Value: 1}}},
}

// Flows stores pending Connect flows in MongoDB. The state itself is not stored: the document's
// key is its SHA-256, and the session is stored as sessionKey's hash. The PKCE verifier is stored
// as it is, server-side only: it never leaves the mapper except in the token request to the CRM,
// it is single-use (the callback deletes the document that holds it) and lives at most StateTTL;
// it is never logged.
type Flows struct {
	coll *mongo.Collection
}

// NewFlows returns the flow store on db (the mapper's database; FlowIndexes must exist).
func NewFlows(db *mongo.Database) *Flows { return &Flows{coll: db.Collection(FlowsCollection)} }

type flowDoc struct {
	ID          string    `bson:"_id"` // base64url SHA-256 of the state
	Tenant      string    `bson:"tenant"`
	Provider    string    `bson:"provider"`
	Actor       string    `bson:"actor"`
	Session     string    `bson:"session"` // sessionKey(session id)
	Verifier    string    `bson:"verifier,omitempty"`
	LoginOrigin string    `bson:"login_origin,omitempty"`
	ExpiresAt   time.Time `bson:"expires_at"`
}

func stateKey(state string) string {
	sum := sha256.Sum256([]byte("connect-state\x00" + state))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// put stores p under state and deletes expired flows.
func (f *Flows) put(ctx context.Context, state string, p *pending, now time.Time) error {
	if _, err := f.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}}); err != nil {
		return fmt.Errorf("delete expired connect flows: %w", err)
	}
	_, err := f.coll.InsertOne(ctx, flowDoc{ID: stateKey(state), Tenant: p.tenant, Provider: p.provider, Actor: p.actor, Session: p.session,
		Verifier: p.verifier, LoginOrigin: p.loginOrigin, ExpiresAt: p.expires.UTC().Truncate(time.Millisecond)})
	if err != nil {
		return fmt.Errorf("store connect flow: %w", err)
	}
	return nil
}

// take deletes and returns the live flow of state if it belongs to provider and session (the
// hash); ErrState when there is none. A flow of another provider or session stays (a callback in
// the wrong session cannot spend someone else's flow); an expired one is deleted.
func (f *Flows) take(ctx context.Context, provider, state, session string, now time.Time) (*pending, error) {
	if state == "" || len(state) > 256 {
		return nil, ErrState
	}
	id := stateKey(state)
	var d flowDoc
	err := f.coll.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}, {Key: "provider", Value: provider}, {Key: "session", Value: session},
		{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		if _, err := f.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}}); err != nil {
			return nil, fmt.Errorf("delete expired connect flow: %w", err)
		}
		return nil, ErrState
	}
	if err != nil {
		return nil, fmt.Errorf("take connect flow: %w", err)
	}
	return &pending{tenant: d.Tenant, provider: d.Provider, actor: d.Actor, session: d.Session,
		verifier: d.Verifier, loginOrigin: d.LoginOrigin, expires: d.ExpiresAt}, nil
}

// tenant returns the tenant of the live flow of state without consuming it ("" when unknown or
// expired).
func (f *Flows) tenant(ctx context.Context, state string, now time.Time) (string, error) {
	if state == "" || len(state) > 256 {
		return "", nil
	}
	var d flowDoc
	err := f.coll.FindOne(ctx, bson.D{{Key: "_id", Value: stateKey(state)}, {Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up connect flow: %w", err)
	}
	return d.Tenant, nil
}
