// Package store keeps notifier's records in MongoDB: one document per report email (keyed on the
// report id, so a redelivered report is not sent twice) and the alert queue that feeds the digests
// (so alerts acknowledged on NATS survive a restart until their digest is sent).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
)

// Collections.
const (
	Notifications = "notifications"
	AlertQueue    = "alert_queue"
)

// Indexes notifier creates at start.
var Indexes = []mongodb.Index{
	{Collection: Notifications, Name: "tenant_kind", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "kind", Value: 1}}},
	{Collection: AlertQueue, Name: "tenant", Keys: bson.D{{Key: "tenant", Value: 1}}},
}

// Notification records one email (or one decision not to send it).
type Notification struct {
	ID        string    `bson:"_id"` // report:<run id> or alerts:<message id>
	Tenant    string    `bson:"tenant"`
	Kind      string    `bson:"kind"`   // report or alerts
	Status    string    `bson:"status"` // sending (claimed, send in flight), sent, skipped
	Reason    string    `bson:"reason,omitempty"`
	MessageID string    `bson:"message_id,omitempty"`
	To        []string  `bson:"to,omitempty"`
	Subject   string    `bson:"subject,omitempty"`
	Items     int       `bson:"items,omitempty"`
	At        time.Time `bson:"at"`
	// ClaimedUntil is when a "sending" claim lapses: a handler that died mid-send leaves it, and
	// the next delivery after this time takes the claim over.
	ClaimedUntil time.Time `bson:"claimed_until,omitempty"`
}

// StatusSending marks a notification claimed by a handler whose send is in flight.
const StatusSending = "sending"

// QueuedAlert is an alert waiting for its digest.
type QueuedAlert struct {
	ID      string    `bson:"_id"` // the alert's event id
	Tenant  string    `bson:"tenant"`
	Payload []byte    `bson:"payload"` // the protobuf Alert
	At      time.Time `bson:"at"`
}

// Store is notifier's store.
type Store struct{ db *mongo.Database }

// New returns a store.
func New(db *mongo.Database) *Store { return &Store{db: db} }

// Get returns a notification record, or nil when none exists.
func (s *Store) Get(ctx context.Context, id string) (*Notification, error) {
	var n Notification
	err := s.db.Collection(Notifications).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&n)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get notification %s: %w", id, err)
	}
	return &n, nil
}

// Record stores a notification; recording one that exists already is not an error.
func (s *Store) Record(ctx context.Context, n Notification) error {
	_, err := s.db.Collection(Notifications).InsertOne(ctx, n)
	if err != nil && !mongodb.IsDuplicateKey(err) {
		return fmt.Errorf("record notification %s: %w", n.ID, err)
	}
	return nil
}

// Claim takes the right to send notification n.ID until now+lease, so that one email goes out
// however many deliveries, republishes or notifier replicas handle the same report at once. It
// returns claimed=true when this caller holds the claim (a new one, or one that lapsed: its holder
// died mid-send). Otherwise it returns the existing record: done when its status is final, or a
// "sending" record held by someone else until ClaimedUntil.
func (s *Store) Claim(ctx context.Context, n Notification, now time.Time, lease time.Duration) (claimed bool, existing *Notification, err error) {
	n.Status, n.ClaimedUntil = StatusSending, now.Add(lease)
	c := s.db.Collection(Notifications)
	_, err = c.InsertOne(ctx, n)
	if err == nil {
		return true, nil, nil
	}
	if !mongodb.IsDuplicateKey(err) {
		return false, nil, fmt.Errorf("claim notification %s: %w", n.ID, err)
	}
	res, err := c.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: n.ID}, {Key: "status", Value: StatusSending}, {Key: "claimed_until", Value: bson.D{{Key: "$lte", Value: now}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "claimed_until", Value: n.ClaimedUntil}, {Key: "at", Value: n.At}}}})
	if err != nil {
		return false, nil, fmt.Errorf("take over lapsed claim %s: %w", n.ID, err)
	}
	if res.ModifiedCount == 1 {
		return true, nil, nil
	}
	existing, err = s.Get(ctx, n.ID)
	if err != nil {
		return false, nil, err
	}
	if existing == nil { // released between the insert and the read: the caller retries
		existing = &Notification{ID: n.ID, Status: StatusSending, ClaimedUntil: now}
	}
	return false, existing, nil
}

// Finish replaces a claim this caller holds with the final record n.
func (s *Store) Finish(ctx context.Context, n Notification) error {
	_, err := s.db.Collection(Notifications).ReplaceOne(ctx, bson.D{{Key: "_id", Value: n.ID}}, n)
	if err != nil {
		return fmt.Errorf("record notification %s: %w", n.ID, err)
	}
	return nil
}

// Release drops a claim whose send failed, so the next delivery may try at once.
func (s *Store) Release(ctx context.Context, id string) error {
	_, err := s.db.Collection(Notifications).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusSending}})
	if err != nil {
		return fmt.Errorf("release notification claim %s: %w", id, err)
	}
	return nil
}

// LastAlertDigests returns the time of each tenant's last alert digest.
func (s *Store) LastAlertDigests(ctx context.Context) (map[string]time.Time, error) {
	cur, err := s.db.Collection(Notifications).Find(ctx, bson.D{{Key: "kind", Value: "alerts"}})
	if err != nil {
		return nil, fmt.Errorf("list alert digests: %w", err)
	}
	var ns []Notification
	if err := cur.All(ctx, &ns); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, n := range ns {
		if n.At.After(out[n.Tenant]) {
			out[n.Tenant] = n.At
		}
	}
	return out, nil
}

// LastAlertDigest returns when tenant's last alert digest was sent (by any replica); zero when
// never.
func (s *Store) LastAlertDigest(ctx context.Context, tenant string) (time.Time, error) {
	var n Notification
	err := s.db.Collection(Notifications).FindOne(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "kind", Value: "alerts"}},
		options.FindOne().SetSort(bson.D{{Key: "at", Value: -1}})).Decode(&n)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("last alert digest of %s: %w", tenant, err)
	}
	return n.At, nil
}

// QueuedAlertsOf returns tenant's queued alerts (queued by any replica), oldest first.
func (s *Store) QueuedAlertsOf(ctx context.Context, tenant string) ([]QueuedAlert, error) {
	cur, err := s.db.Collection(AlertQueue).Find(ctx, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list queued alerts of %s: %w", tenant, err)
	}
	var out []QueuedAlert
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueueAlert stores an alert until its digest is sent (idempotent by event id).
func (s *Store) QueueAlert(ctx context.Context, a QueuedAlert) error {
	_, err := s.db.Collection(AlertQueue).InsertOne(ctx, a)
	if err != nil && !mongodb.IsDuplicateKey(err) {
		return fmt.Errorf("queue alert %s: %w", a.ID, err)
	}
	return nil
}

// QueuedAlerts returns every queued alert, oldest first.
func (s *Store) QueuedAlerts(ctx context.Context) ([]QueuedAlert, error) {
	cur, err := s.db.Collection(AlertQueue).Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list queued alerts: %w", err)
	}
	var out []QueuedAlert
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Dequeue removes alerts whose digest was sent.
func (s *Store) Dequeue(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.db.Collection(AlertQueue).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return fmt.Errorf("dequeue alerts: %w", err)
	}
	return nil
}
