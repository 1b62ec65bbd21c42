// Package ownerhistory is the contract of the ownership_history MongoDB collection: the writer
// appends one document per outcome of an owner change (services/writer internal/historystore), and
// mapper's admin API reads one record's history (GET /v1/tenants/{t}/records/{provider}/{type}/{id}/history).
// Both use Doc, Append and Read here, so the shape the writer stores is the shape mapper reads.
//
// The _id derives from the record, the event, the direction and the outcome (DocID), so a
// redelivered change that comes to the same outcome adds nothing.
package ownerhistory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/provider"
)

// Collection is the history collection.
const Collection = "ownership_history"

// Indexes are the collection's indexes: one record's history in time order.
func Indexes() []mongodb.Index {
	return []mongodb.Index{{Collection: Collection, Name: "record_at",
		Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "record_type", Value: 1}, {Key: "record_id", Value: 1}, {Key: "at", Value: 1}}},
		// ReadOutcome: a tenant's entries of one outcome, newest first (the console's failed writes).
		{Collection: Collection, Name: "tenant_outcome_at",
			Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "outcome", Value: 1}, {Key: "at", Value: -1}}}}
}

// Directions.
const (
	CRMToPlatform = "crm_to_platform"
	PlatformToCRM = "platform_to_crm"
)

// Outcomes. A CRM change published to the platform is assigned or unassigned; every other outcome
// is the writer's name for what it did with the change.
const (
	Assigned    = "assigned"    // CRM → platform: the owner's platform user was assigned
	Unassigned  = "unassigned"  // CRM → platform: the record was left without a platform owner (reason says why)
	Applied     = "applied"     // platform → CRM: written to the CRM
	Fallback    = "fallback"    // written to the CRM with the tenant's fallback owner
	Skipped     = "skipped"     // the direction or the object modules say no
	Echo        = "echo"        // the CRM reporting our own write
	Stale       = "stale"       // older than what the record already has
	Duplicate   = "duplicate"   // delivered again after it was done
	Unchanged   = "unchanged"   // the record already has this owner
	Superseded  = "superseded"  // a newer change to the record replaced it in the batch
	NotFound    = "not_found"   // no CRM record to write to
	Failed      = "failed"      // no valid owner, or the CRM refused the write for good
	Redelivered = "redelivered" // delivered again before its effect was confirmed; done again
)

// Outcomes lists every outcome.
var Outcomes = []string{Assigned, Unassigned, Applied, Fallback, Skipped, Echo, Stale, Duplicate, Unchanged,
	Superseded, NotFound, Failed, Redelivered}

// Doc is one history document.
type Doc struct {
	ID          string            `bson:"_id"`
	Tenant      string            `bson:"tenant"`
	Provider    provider.Provider `bson:"provider"`
	RecordType  string            `bson:"record_type"` // contact or lead
	RecordID    string            `bson:"record_id"`   // the CRM record id (Salesforce: 18 characters)
	At          time.Time         `bson:"at"`          // when the writer recorded the outcome
	Direction   string            `bson:"direction"`
	Outcome     string            `bson:"outcome"`
	OwnerBefore string            `bson:"owner_before"`
	OwnerAfter  string            `bson:"owner_after"`
	// PlatformUserID is the platform user the owner maps to, when known.
	PlatformUserID string `bson:"platform_user_id"`
	EventID        string `bson:"event_id"`
	Reason         string `bson:"reason"`
	// PlatformRecordID is the platform's record id of a platform change.
	PlatformRecordID string `bson:"platform_record_id,omitempty"`
	// ErrorCode is the CRM's error code of a write the CRM refused (outcome failed): Salesforce's
	// statusCode/errorCode, HubSpot's category; empty when no CRM call was made.
	ErrorCode string `bson:"error_code,omitempty"`
	// OccurredAt is when the change happened at its source.
	OccurredAt time.Time `bson:"occurred_at"`
}

// DocID is the _id of a document: the record, the event, the direction and the outcome.
func DocID(d Doc) string {
	return strings.Join([]string{d.Tenant, string(d.Provider), d.RecordType, d.RecordID, d.EventID, d.Direction, d.Outcome}, "|")
}

// Append inserts docs unordered in one call. A document already there (the same outcome recorded
// by an earlier delivery) counts as stored. It returns one error per document (nil when stored),
// or a single error when the insert as a whole failed.
func Append(ctx context.Context, db *mongo.Database, docs []Doc) ([]error, error) {
	out := make([]error, len(docs))
	if len(docs) == 0 {
		return out, nil
	}
	_, err := db.Collection(Collection).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return out, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, fmt.Errorf("insert %d history entries: %w", len(docs), err)
	}
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(out) {
			return nil, fmt.Errorf("insert %d history entries: %w", len(docs), err)
		}
		if we.Code != 11000 { // duplicate key: stored by an earlier delivery
			out[we.Index] = fmt.Errorf("insert history entry %s: %w", docs[we.Index].ID, we)
		}
	}
	return out, nil
}

// Record names one CRM record.
type Record struct {
	Tenant     string
	Provider   provider.Provider
	RecordType string
	RecordID   string
}

// MaxRead is the most documents Read returns.
const MaxRead = 1000

// Read returns a record's history, oldest first (by at, then _id), at most MaxRead documents.
func Read(ctx context.Context, db *mongo.Database, r Record) ([]Doc, error) {
	cur, err := db.Collection(Collection).Find(ctx,
		bson.D{{Key: "tenant", Value: r.Tenant}, {Key: "provider", Value: r.Provider}, {Key: "record_type", Value: r.RecordType}, {Key: "record_id", Value: r.RecordID}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(MaxRead))
	if err != nil {
		return nil, fmt.Errorf("record history: %w", err)
	}
	out := []Doc{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("record history: %w", err)
	}
	return out, nil
}

// ReadOutcome returns a tenant's entries of one outcome (e.g. Failed), newest first, at most limit
// (MaxRead when limit is not positive), and how many there are in all.
func ReadOutcome(ctx context.Context, db *mongo.Database, tenant, outcome string, limit int) ([]Doc, int64, error) {
	if limit <= 0 || limit > MaxRead {
		limit = MaxRead
	}
	filter := bson.D{{Key: "tenant", Value: tenant}, {Key: "outcome", Value: outcome}}
	coll := db.Collection(Collection)
	total, err := coll.CountDocuments(ctx, filter)
	if err != nil {
		return nil, 0, fmt.Errorf("count %s history entries: %w", outcome, err)
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s history entries: %w", outcome, err)
	}
	out := []Doc{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, 0, fmt.Errorf("read %s history entries: %w", outcome, err)
	}
	return out, total, nil
}
