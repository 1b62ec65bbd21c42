package mongostore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/workbench/harness"
)

// statements records the largest number of statements one write command carried, per command.
type statements struct {
	mu  sync.Mutex
	max map[string]int
}

func (s *statements) started(_ context.Context, e *event.CommandStartedEvent) {
	field := map[string]string{"update": "updates", "delete": "deletes", "insert": "documents"}[e.CommandName]
	if field == "" {
		return
	}
	n := 0
	if arr, ok := e.Command.Lookup(field).ArrayOK(); ok {
		vals, _ := arr.Values()
		n = len(vals)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max[e.CommandName] = max(s.max[e.CommandName], n)
}

// TestBulkWritesFinishOnFerretDB inserts and re-inserts thousands of users, mappings and problems
// that already exist on the embedded FerretDB, with either way of bulk writing. FerretDB's update
// handler holds one backend connection per matched statement until the command ends, so an update
// command of more than about 100 matched statements waits forever (issue 18): every update and
// delete command must stay small.
func TestBulkWritesFinishOnFerretDB(t *testing.T) {
	for _, tt := range []struct {
		bulk  mongostore.BulkWrites
		users int
	}{
		{mongostore.DeleteInsert, 2000},
		// Each replacement by _id scans the collection on FerretDB: fewer users, still many more
		// than one command may carry.
		{mongostore.PerDocument, 300},
	} {
		t.Run(string(tt.bulk), func(t *testing.T) { testBulkWrites(t, tt.bulk, tt.users) })
	}
}

func testBulkWrites(t *testing.T, bulk mongostore.BulkWrites, users int) {
	infra := harness.Start(t)
	mon := &statements{max: map[string]int{}}
	client, err := mongo.Connect(options.Client().ApplyURI(infra.MongoURI).SetMonitor(&event.CommandMonitor{Started: mon.started}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	// The deadline turns the hang into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := client.Database("test")
	if err := mongodb.EnsureIndexes(ctx, db, mongostore.Indexes); err != nil {
		t.Fatal(err)
	}
	s := mongostore.New(db, mongostore.Options{Now: func() time.Time { return t0 }, BulkWrites: bulk})

	platform := make([]domain.PlatformUser, users)
	var ms []mapping.Mapping
	var problems []mapping.Problem
	for i := range platform {
		id := fmt.Sprintf("u%05d", i)
		platform[i] = domain.PlatformUser{Tenant: "acme", ID: id, Email: id + "@x.test", Status: "active", Kind: "user"}
		ms = append(ms, m(id, fmt.Sprintf("005%05d", i)))
		problems = append(problems, mapping.Problem{Code: mapping.CodeCRMUserNotFound, PlatformUserID: id, Message: "none"})
	}
	for round := range 2 { // the second round finds every document already there
		if err := s.InsertPlatformUsers(ctx, platform); err != nil {
			t.Fatalf("round %d: insert platform users: %v", round, err)
		}
		if err := s.WriteMappings(ctx, "acme", nil, ms, nil); err != nil {
			t.Fatalf("round %d: write mappings: %v", round, err)
		}
	}
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", problems, nil); err != nil {
		t.Fatalf("problems: %v", err)
	}
	for i := range problems {
		problems[i].Message = "changed"
	}
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", problems, nil); err != nil {
		t.Fatalf("changed problems: %v", err)
	}

	n, err := db.Collection(mongostore.PlatformUsers).CountDocuments(ctx, bson.D{})
	if err != nil || n != int64(users) {
		t.Errorf("platform users stored = %d, %v; want %d", n, err, users)
	}
	got, err := s.Mappings(ctx, "acme", "salesforce")
	if err != nil || len(got) != users {
		t.Errorf("mappings stored = %d, %v; want %d", len(got), err, users)
	}
	stored, err := s.Problems(ctx, "acme", "salesforce")
	if err != nil || len(stored) != users || stored[0].Message != "changed" {
		t.Errorf("problems stored = %d, %v; want %d changed", len(stored), err, users)
	}
	mon.mu.Lock()
	defer mon.mu.Unlock()
	for _, cmd := range []string{"update", "delete"} {
		if mon.max[cmd] > mongostore.MaxStatements {
			t.Errorf("an %s command carried %d statements, want at most %d", cmd, mon.max[cmd], mongostore.MaxStatements)
		}
	}
}
