package mongostore_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
	"github.com/ownersync/ownersync/workbench/harness"
)

func newStore(t *testing.T, now func() time.Time) *mongostore.Store {
	t.Helper()
	infra := harness.Start(t)
	conn, err := mongodb.Connect(context.Background(), mongodb.Options{URI: infra.MongoURI, Database: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := mongodb.EnsureIndexes(context.Background(), conn.DB, mongostore.Indexes); err != nil {
		t.Fatal(err)
	}
	return mongostore.New(conn.DB, mongostore.Options{Now: now})
}

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func m(pid, crm string) mapping.Mapping {
	return mapping.Mapping{Provider: "salesforce", PlatformUserID: pid, CRMUserID: crm, Email: pid + "@x.test",
		Status: mapping.StatusSynced, MadeBy: mapping.MadeByEmail, CreatedAt: t0, UpdatedAt: t0}
}

func sorted(ms []mapping.Mapping) []mapping.Mapping {
	sort.Slice(ms, func(i, j int) bool { return ms[i].PlatformUserID < ms[j].PlatformUserID })
	return ms
}

func TestWriteMappingsKeepsOneToOneThroughSwapsAndReplays(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, func() time.Time { return t0 })
	first := []mapping.Mapping{m("a", "X"), m("b", "Y"), m("c", "Z")}
	if err := s.WriteMappings(ctx, "acme", nil, first, nil); err != nil {
		t.Fatal(err)
	}
	// Replaying the same write (a redelivery) changes nothing and does not fail.
	if err := s.WriteMappings(ctx, "acme", nil, first, nil); err != nil {
		t.Fatalf("replay: %v", err)
	}
	// a and b swap CRM users, c is removed: each upsert collides half-way without parking.
	swapped := []mapping.Mapping{m("a", "Y"), m("b", "X")}
	for _, ms := range [][]mapping.Mapping{swapped, swapped} { // twice: replay after success
		if err := s.WriteMappings(ctx, "acme", first, ms, []mapping.Mapping{m("c", "Z")}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Mappings(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(swapped, sorted(got)); diff != "" {
		t.Errorf("mappings (-want +got):\n%s", diff)
	}
	// The unique index still refuses a second mapping of one CRM user.
	err = s.WriteMappings(ctx, "acme", nil, []mapping.Mapping{m("d", "X")}, nil)
	if !mongodb.IsDuplicateKey(errors.Unwrap(err)) && !mongodb.IsDuplicateKey(err) {
		t.Errorf("mapping a CRM user twice: err = %v, want a duplicate key", err)
	}
	// Other tenants and providers are separate.
	if err := s.WriteMappings(ctx, "other", nil, []mapping.Mapping{m("a", "X")}, nil); err != nil {
		t.Errorf("same ids in another tenant: %v", err)
	}
}

func TestCRMUsersDiffWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, func() time.Time { return t0 })
	u := func(id, email string, active bool) domain.CRMUser {
		return domain.CRMUser{CRMUser: mapping.CRMUser{ID: id, Email: email, Active: active, Kind: mapping.CRMKindUser}}
	}
	pull1 := []domain.CRMUser{u("1", "a@x.test", true), u("2", "b@x.test", true), u("3", "c@x.test", true)}
	d := domain.DiffCRMUsers(nil, pull1)
	if len(d.Inserts) != 3 || len(d.Updates)+len(d.Deletes) != 0 {
		t.Fatalf("first diff = %+v", d)
	}
	if err := s.WriteCRMUsers(ctx, "acme", "hubspot", domain.StoredCRMUsers{}, d); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteCRMUsers(ctx, "acme", "hubspot", domain.StoredCRMUsers{}, d); err != nil { // replay
		t.Fatalf("replay: %v", err)
	}
	read, err := s.ReadCRMUsers(ctx, "acme", "hubspot")
	if err != nil {
		t.Fatal(err)
	}
	pull2 := []domain.CRMUser{u("1", "a@x.test", true), u("2", "b@x.test", false), u("4", "D@x.test", true)}
	d = domain.DiffCRMUsers(read.Users, pull2)
	want := domain.CRMUsersDiff{Inserts: pull2[2:], Updates: pull2[1:2], Deletes: []string{"3"}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatalf("second diff (-want +got):\n%s", diff)
	}
	if err := s.WriteCRMUsers(ctx, "acme", "hubspot", read, d); err != nil {
		t.Fatal(err)
	}
	byEmail, err := s.CRMUsersByEmail(ctx, "acme", "hubspot", []string{" d@X.test"})
	if err != nil || len(byEmail) != 1 || byEmail[0].ID != "4" {
		t.Errorf("by email = %+v, %v", byEmail, err)
	}
	stored, _ := s.CRMUsers(ctx, "acme", "hubspot")
	if len(stored) != 3 || stored["2"].Active {
		t.Errorf("stored = %+v", stored)
	}
}

func TestPutCRMUserIgnoresOlderChanges(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	newer := domain.CRMUser{CRMUser: mapping.CRMUser{ID: "005A", Email: "new@x.test", Active: true, Kind: mapping.CRMKindUser}, SourceTime: t0.Add(time.Minute)}
	older := newer
	older.Email, older.SourceTime = "old@x.test", t0
	if _, changed, err := s.PutCRMUser(ctx, "acme", "salesforce", newer); err != nil || !changed {
		t.Fatalf("newer: changed %v err %v", changed, err)
	}
	got, changed, err := s.PutCRMUser(ctx, "acme", "salesforce", older)
	if err != nil || changed || got.Email != "new@x.test" {
		t.Errorf("older change: got %+v changed %v err %v", got, changed, err)
	}
}

func TestProblemsKeepTheirSinceAndClear(t *testing.T) {
	ctx := context.Background()
	now := t0
	s := newStore(t, func() time.Time { return now })
	p1 := mapping.Problem{Code: mapping.CodeAmbiguousEmail, PlatformUserID: "p1", Email: "a@x.test", Message: "two", Fix: "fix it"}
	p2 := mapping.Problem{Code: mapping.CodeCRMUserNotFound, PlatformUserID: "p2", Message: "none", Fix: "create"}
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", []mapping.Problem{p1, p2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCRMError(ctx, "acme", "salesforce", "503 from Salesforce", "retry"); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(time.Hour)
	keepCRM := func(p domain.Problem) bool { return p.Code == domain.CodeCRMAPIError }
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", []mapping.Problem{p1}, keepCRM); err != nil {
		t.Fatal(err)
	}
	got, err := s.Problems(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Code < got[j].Code })
	if len(got) != 2 || got[0].Code != mapping.CodeAmbiguousEmail || !got[0].Since.Equal(t0) || got[1].Code != domain.CodeCRMAPIError {
		t.Fatalf("problems = %+v", got)
	}
	// An event's neighbourhood replaces only its users' problems.
	if err := s.ReplaceUserProblems(ctx, "acme", "salesforce", []string{"p1"}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCRMError(ctx, "acme", "salesforce", "", ""); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Problems(ctx, "acme", "salesforce")
	if len(got) != 0 {
		t.Errorf("problems after clearing = %+v", got)
	}
}

func TestRunLockOnePerTenant(t *testing.T) {
	ctx := context.Background()
	now := t0
	s := newStore(t, func() time.Time { return now })
	if h, err := s.LockRun(ctx, "acme", "run-1", time.Minute); err != nil || h != "run-1" {
		t.Fatalf("first lock: %q %v", h, err)
	}
	if h, err := s.LockRun(ctx, "acme", "run-2", time.Minute); !errors.Is(err, domain.ErrRunning) || h != "run-1" {
		t.Fatalf("second lock: %q %v, want run-1 and ErrRunning", h, err)
	}
	if h, err := s.LockRun(ctx, "other", "run-3", time.Minute); err != nil || h != "run-3" {
		t.Fatalf("other tenant: %q %v", h, err)
	}
	now = t0.Add(2 * time.Minute) // run-1's process died: its lock expires and is taken over
	if h, err := s.LockRun(ctx, "acme", "run-4", time.Minute); err != nil || h != "run-4" {
		t.Fatalf("expired lock: %q %v", h, err)
	}
	if err := s.UnlockRun(ctx, "acme", "run-1"); err != nil { // the old holder cannot free it
		t.Fatal(err)
	}
	if _, err := s.LockRun(ctx, "acme", "run-5", time.Minute); !errors.Is(err, domain.ErrRunning) {
		t.Fatalf("lock after a stale unlock: %v", err)
	}
	if err := s.UnlockRun(ctx, "acme", "run-4"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LockRun(ctx, "acme", "run-6", time.Minute); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
}

// TestRunKeepsTheReport stores a run whose providers hold their reports (one succeeded with capped
// lists, one whose pull failed) and reads it back whole, and without the lists in the run list.
func TestRunKeepsTheReport(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	ok := report.Provider{Provider: "salesforce",
		Counts:       report.Counts{Counts: mapping.Counts{Mapped: 3, Created: 1, Errors: 1, UnmappedPlatform: 1}, Pulled: 4},
		Changes:      []mapping.Change{{Kind: mapping.ChangeCreated, Provider: "salesforce", PlatformUserID: "p1", CRMUserID: "005A", Email: "a@x.test", Name: "Ann Lee"}},
		ChangesTotal: 7,
		Errors:       []mapping.Problem{{Code: mapping.CodeCRMUserNotFound, Provider: "salesforce", PlatformUserID: "p2", Message: "none", Fix: "create"}},
		ErrorsTotal:  2,
		NotMappable: []mapping.NotMappable{{Provider: "salesforce", CRMUserID: "005I", Name: "Integration User", Email: "int@x.test",
			UserType: "Standard", License: "Salesforce Integration", Reason: "an integration user"}},
		NotMappableTotal: 3,
	}
	ok.Counts.NotMappable = 3
	failed := report.Failed("hubspot", "401 from HubSpot")
	run := &domain.SyncRun{ID: "run-1", Tenant: "acme", Trigger: domain.TriggerAPI, Status: domain.RunPartial, Phase: domain.PhaseDone,
		StartedAt: t0, FinishedAt: t0.Add(time.Minute), ReportID: "report:run-1", Providers: []domain.RunProvider{
			{Provider: "salesforce", Phase: domain.PhaseDone, Pulled: 4, Processed: 4, PullMS: 5, Outcome: &ok},
			{Provider: "hubspot", Phase: domain.PhaseFailed, Outcome: &failed},
			{Provider: "other", Phase: domain.PhaseWaiting},
		}}
	if err := s.PutRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(ctx, "acme", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(run, got); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
	list, err := s.Runs(ctx, "acme", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("Runs = %v, %v", list, err)
	}
	o := list[0].Providers[0].Outcome
	if o == nil || o.Changes != nil || o.Errors != nil || o.NotMappable != nil || o.ChangesTotal != 7 || o.ErrorsTotal != 2 ||
		o.NotMappableTotal != 3 || o.Counts != ok.Counts {
		t.Errorf("listed run's outcome = %+v, want the counts and totals without the lists", o)
	}
	if _, err := s.Run(ctx, "other", "run-1"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("another tenant's run: %v, want domain.ErrNotFound", err)
	}
}
