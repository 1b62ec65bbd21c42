package historystore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
	"github.com/ownersync/ownersync/workbench/harness"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestFromEntry(t *testing.T) {
	tests := []struct {
		name string
		in   writeback.Entry
		want ownerhistory.Doc
	}{
		{
			name: "crm change assigned",
			in: writeback.Entry{Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact, CRMRecordID: "51234",
				EventID: "hs:1", Origin: ownership.FromCRM, Outcome: writeback.Applied, OwnerBefore: "7003", OwnerID: "7001",
				PlatformUserID: "pu-ada", Assign: ownership.Assigned, Reason: "mapped", OccurredAt: t0, At: t0.Add(time.Second)},
			want: ownerhistory.Doc{ID: "acme|hubspot|contact|51234|hs:1|crm_to_platform|assigned", Tenant: "acme", Provider: "hubspot",
				RecordType: "contact", RecordID: "51234", At: t0.Add(time.Second), Direction: "crm_to_platform", Outcome: "assigned",
				OwnerBefore: "7003", OwnerAfter: "7001", PlatformUserID: "pu-ada", EventID: "hs:1", Reason: "assigned: mapped", OccurredAt: t0},
		},
		{
			name: "crm change to a queue",
			in: writeback.Entry{Tenant: "acme", Provider: provider.Salesforce, RecordType: ownership.Lead, CRMRecordID: "00Q5g00000ZxCvBEAV",
				EventID: "sf:1", Origin: ownership.FromCRM, Outcome: writeback.Applied, OwnerID: "00G5g000003LkJhEAK",
				Assign: ownership.UnassignedQueue, Reason: "a queue", OccurredAt: t0, At: t0},
			want: ownerhistory.Doc{ID: "acme|salesforce|lead|00Q5g00000ZxCvBEAV|sf:1|crm_to_platform|unassigned", Tenant: "acme", Provider: "salesforce",
				RecordType: "lead", RecordID: "00Q5g00000ZxCvBEAV", At: t0, Direction: "crm_to_platform", Outcome: "unassigned",
				OwnerAfter: "00G5g000003LkJhEAK", EventID: "sf:1", Reason: "unassigned_queue: a queue", OccurredAt: t0},
		},
		{
			name: "platform change with the fallback owner",
			in: writeback.Entry{Tenant: "acme", Provider: provider.Salesforce, RecordType: ownership.Contact, CRMRecordID: "0035g00000QwErTAAV",
				PlatformRecordID: "pr-1", EventID: "p-1", Origin: ownership.FromPlatform, Outcome: writeback.Fallback,
				OwnerID: "0055g00000FbFbFAAV", PlatformUserID: "pu-x", Reason: "no mapping; fallback", OccurredAt: t0, At: t0},
			want: ownerhistory.Doc{ID: "acme|salesforce|contact|0035g00000QwErTAAV|p-1|platform_to_crm|fallback", Tenant: "acme", Provider: "salesforce",
				RecordType: "contact", RecordID: "0035g00000QwErTAAV", At: t0, Direction: "platform_to_crm", Outcome: "fallback",
				OwnerAfter: "0055g00000FbFbFAAV", PlatformUserID: "pu-x", EventID: "p-1", Reason: "no mapping; fallback",
				PlatformRecordID: "pr-1", OccurredAt: t0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, FromEntry(tt.in)); diff != "" {
				t.Errorf("FromEntry (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStoreOnFerretDB(t *testing.T) {
	ctx := context.Background()
	conn := harness.MongoDB(t, "writer_test")
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := mongodb.EnsureIndexes(ctx, conn.DB, ownerhistory.Indexes()); err != nil {
		t.Fatal(err)
	}
	s := New(conn.DB, Options{Linger: 10 * time.Millisecond})
	entry := func(i int, outcome writeback.Outcome) writeback.Entry {
		return writeback.Entry{Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact, CRMRecordID: "51234",
			EventID: "p-" + string(rune('a'+i)), Origin: ownership.FromPlatform, Outcome: outcome, OwnerID: "7001",
			At: t0.Add(time.Duration(i) * time.Second), OccurredAt: t0}
	}
	// Concurrent entries share inserts; the same entry recorded twice is stored once.
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.Record(ctx, entry(i, writeback.Applied)) }()
	}
	wg.Wait()
	for range 2 {
		errs <- s.Record(ctx, entry(3, writeback.Applied)) // a redelivery, after the first was stored
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	if err := s.Record(ctx, entry(3, writeback.Duplicate)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Read it the way mapper's admin API does.
	cur, err := conn.DB.Collection(ownerhistory.Collection).Find(ctx,
		bson.D{{Key: "tenant", Value: "acme"}, {Key: "provider", Value: "hubspot"}, {Key: "record_type", Value: "contact"}, {Key: "record_id", Value: "51234"}},
		options.Find().SetSort(bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var docs []ownerhistory.Doc
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.EventID+" "+d.Outcome)
	}
	want := []string{"p-a applied", "p-b applied", "p-c applied", "p-d applied", "p-d duplicate", "p-e applied", "p-f applied",
		"p-g applied", "p-h applied", "p-i applied", "p-j applied"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored history (-want +got):\n%s", diff)
	}

	// Detached: Record returns at once and Close flushes what is queued.
	var failures []error
	d := New(conn.DB, Options{Linger: time.Hour, Detached: true, OnError: func(err error) { failures = append(failures, err) }})
	for i := range 100 {
		e := entry(i, writeback.Applied)
		e.CRMRecordID = "detached"
		e.EventID = "d-" + time.Duration(i).String()
		if err := d.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := conn.DB.Collection(ownerhistory.Collection).CountDocuments(ctx, bson.D{{Key: "record_id", Value: "detached"}}); err != nil || n != 0 {
		t.Fatalf("before Close: %d detached entries stored (%v), want 0 (the linger is an hour)", n, err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.DB.Collection(ownerhistory.Collection).CountDocuments(ctx, bson.D{{Key: "record_id", Value: "detached"}}); err != nil || n != 100 || len(failures) != 0 {
		t.Errorf("after Close: %d detached entries stored (%v), failures %v; want 100", n, err, failures)
	}
}

// TestEveryOutcomeIsInTheContract: each outcome the writer can record is one mapper's readers know
// (ownerhistory.Outcomes), in both directions.
func TestEveryOutcomeIsInTheContract(t *testing.T) {
	known := map[string]bool{}
	for _, o := range ownerhistory.Outcomes {
		known[o] = true
	}
	outcomes := []writeback.Outcome{writeback.Applied, writeback.Fallback, writeback.Skipped, writeback.Echo, writeback.Stale,
		writeback.Duplicate, writeback.Unchanged, writeback.Superseded, writeback.NotFound, writeback.Failed, writeback.Redelivered}
	for _, origin := range []ownership.Origin{ownership.FromCRM, ownership.FromPlatform} {
		for _, o := range outcomes {
			for _, assign := range []ownership.AssignOutcome{ownership.Assigned, ownership.UnassignedQueue} {
				d := FromEntry(writeback.Entry{Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact,
					CRMRecordID: "1", EventID: "e", Origin: origin, Outcome: o, Assign: assign, At: t0, OccurredAt: t0})
				if !known[d.Outcome] {
					t.Errorf("origin %s outcome %s (%s) is stored as %q, which ownerhistory.Outcomes lacks", origin, o, assign, d.Outcome)
				}
			}
		}
	}
}
