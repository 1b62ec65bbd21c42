package mongostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestFailedWrites: the console's Failed writes read the writer's ownership_history — a tenant's
// entries with outcome failed, newest first, capped, with their total and the CRM's error code
// (issue 16); other outcomes and other tenants stay out.
func TestFailedWrites(t *testing.T) {
	ctx := context.Background()
	infra := harness.Start(t)
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: infra.MongoURI, Database: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := mongodb.EnsureIndexes(ctx, conn.DB, ownerhistory.Indexes()); err != nil {
		t.Fatal(err)
	}
	doc := func(tenant, id, outcome, code string, at time.Duration) ownerhistory.Doc {
		d := ownerhistory.Doc{Tenant: tenant, Provider: provider.Salesforce, RecordType: "contact", RecordID: id, At: t0.Add(at),
			Direction: ownerhistory.PlatformToCRM, Outcome: outcome, OwnerAfter: "005000000000003AAA", PlatformUserID: "u3",
			EventID: "e-" + id, Reason: "salesforce write failed", ErrorCode: code}
		d.ID = ownerhistory.DocID(d)
		return d
	}
	docs := []ownerhistory.Doc{
		doc("acme", "003000000000001AAA", ownerhistory.Failed, "INACTIVE_OWNER_OR_USER", time.Minute),
		doc("acme", "003000000000002AAA", ownerhistory.Failed, "", 3*time.Minute),
		doc("acme", "003000000000003AAA", ownerhistory.Failed, "ENTITY_IS_DELETED", 2*time.Minute),
		doc("acme", "003000000000004AAA", ownerhistory.Applied, "", 4*time.Minute),
		doc("globex", "003000000000005AAA", ownerhistory.Failed, "INVALID_CROSS_REFERENCE_KEY", 5*time.Minute),
	}
	if _, err := ownerhistory.Append(ctx, conn.DB, docs); err != nil {
		t.Fatal(err)
	}
	s := mongostore.New(conn.DB, mongostore.Options{})
	fw, err := s.FailedWrites(ctx, "acme", 2)
	if err != nil {
		t.Fatal(err)
	}
	if fw.Total != 3 || len(fw.Entries) != 2 {
		t.Fatalf("FailedWrites = %d entries of %d, want 2 of 3", len(fw.Entries), fw.Total)
	}
	if fw.Entries[0].RecordID != "003000000000002AAA" || fw.Entries[1].RecordID != "003000000000003AAA" || fw.Entries[1].ErrorCode != "ENTITY_IS_DELETED" {
		t.Errorf("entries %+v, want the newest two with their error codes", fw.Entries)
	}
	if fw, _ := s.FailedWrites(ctx, "initech", 10); fw.Total != 0 || len(fw.Entries) != 0 {
		t.Errorf("a tenant without history: %+v", fw)
	}
}
