// Package webhookstats records, per tenant and CRM, when ingress last accepted a webhook or
// Outbound Message, how many it accepted today, and the last one it rejected and why (issue 16:
// "last webhook received" on the console's Connections page, so an admin sees whether the CRM side
// is set up). Ingress counts in memory and flushes to MongoDB every FlushInterval, so a webhook
// costs no database write; mapper reads the collection. Counts are per UTC day.
package webhookstats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection holds one document per tenant and provider.
const Collection = "webhook_receipts"

// FlushInterval is how often a Recorder writes what it counted.
const FlushInterval = 2 * time.Second

// Receipt is what is known about one tenant's webhooks from one CRM.
type Receipt struct {
	ID              string    `bson:"_id"`
	Tenant          string    `bson:"tenant"`
	Provider        string    `bson:"provider"`
	LastAt          time.Time `bson:"last_at,omitempty"`
	Day             string    `bson:"day,omitempty"` // UTC day of CountToday, 2006-01-02
	CountToday      int64     `bson:"count_today"`
	LastRejectionAt time.Time `bson:"last_rejection_at,omitempty"`
	// LastRejection is the ingress's reason code (bad_shared_key, bad_signature, …).
	LastRejection string `bson:"last_rejection,omitempty"`
}

// Today is CountToday if Day is today's UTC day, else 0.
func (r Receipt) Today(now time.Time) int64 {
	if r.Day == now.UTC().Format(time.DateOnly) {
		return r.CountToday
	}
	return 0
}

func docID(tenantID, provider string) string { return tenantID + "/" + provider }

type key struct{ tenant, provider string }

type pendingStat struct {
	accepted   int64
	day        string
	lastAt     time.Time
	rejectedAt time.Time
	reason     string
}

// Recorder counts in memory; Run flushes.
type Recorder struct {
	coll *mongo.Collection
	now  func() time.Time
	log  *slog.Logger

	mu      sync.Mutex
	pending map[key]*pendingStat
}

// NewRecorder returns a recorder writing to db.
func NewRecorder(db *mongo.Database, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{coll: db.Collection(Collection), now: time.Now, log: log, pending: map[key]*pendingStat{}}
}

// MaxPending bounds the tenants×providers held between flushes (unknown sources never get here:
// only requests matched to a tenant are recorded).
const MaxPending = 10000

func (r *Recorder) stat(tenantID, provider string) *pendingStat {
	k := key{tenantID, provider}
	s := r.pending[k]
	if s == nil {
		if len(r.pending) >= MaxPending {
			return nil
		}
		s = &pendingStat{}
		r.pending[k] = s
	}
	return s
}

// Accepted records n accepted deliveries (requests) now.
func (r *Recorder) Accepted(tenantID, provider string) {
	now := r.now().UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stat(tenantID, provider)
	if s == nil {
		return
	}
	day := now.Format(time.DateOnly)
	if s.day != day { // a new UTC day since the last flush: today's count starts again
		s.accepted, s.day = 0, day
	}
	s.accepted++
	s.lastAt = now
}

// Rejected records a refused request and why.
func (r *Recorder) Rejected(tenantID, provider, reason string) {
	now := r.now().UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stat(tenantID, provider); s != nil {
		s.rejectedAt, s.reason = now, reason
	}
}

// Flush writes what was counted since the last flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[key]*pendingStat{}
	r.mu.Unlock()
	var errs []error
	for k, s := range batch {
		id := docID(k.tenant, k.provider)
		set := bson.D{{Key: "tenant", Value: k.tenant}, {Key: "provider", Value: k.provider}}
		if !s.rejectedAt.IsZero() {
			set = append(set, bson.E{Key: "last_rejection_at", Value: s.rejectedAt}, bson.E{Key: "last_rejection", Value: s.reason})
		}
		if s.accepted == 0 {
			if _, err := r.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}, options.UpdateOne().SetUpsert(true)); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		set = append(set, bson.E{Key: "last_at", Value: s.lastAt})
		// Same day: add to the count; another day (or a new document): start it.
		res, err := r.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "day", Value: s.day}},
			bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "count_today", Value: s.accepted}}}})
		if err == nil && res.MatchedCount == 0 {
			set = append(set, bson.E{Key: "day", Value: s.day}, bson.E{Key: "count_today", Value: s.accepted})
			_, err = r.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}, options.UpdateOne().SetUpsert(true))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush webhook receipts: %w", err)
	}
	return nil
}

// Run flushes every FlushInterval until ctx ends, then once more.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := r.Flush(fctx); err != nil {
				r.log.Warn("webhook receipts not written at shutdown", "error", err)
			}
			return nil
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("webhook receipts not written", "error", err)
			}
		}
	}
}

// Reader reads receipts (mapper).
type Reader struct{ coll *mongo.Collection }

// NewReader returns a reader of db's receipts.
func NewReader(db *mongo.Database) *Reader { return &Reader{coll: db.Collection(Collection)} }

// Get returns the receipt of a tenant's provider; false when nothing was ever received.
func (r *Reader) Get(ctx context.Context, tenantID, provider string) (Receipt, bool, error) {
	var out Receipt
	err := r.coll.FindOne(ctx, bson.D{{Key: "_id", Value: docID(tenantID, provider)}}).Decode(&out)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Receipt{}, false, nil
	}
	if err != nil {
		return Receipt{}, false, fmt.Errorf("read webhook receipt %s/%s: %w", tenantID, provider, err)
	}
	return out, true, nil
}
