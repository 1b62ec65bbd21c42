package mongostore_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/workbench/harness"
)

// countedStore is a store whose MongoDB commands are counted, with its database for direct looks.
func countedStore(t *testing.T, now func() time.Time) (*mongostore.Store, *mongo.Database, *mongodb.CommandCounter) {
	t.Helper()
	counter := mongodb.NewCommandCounter()
	conn, err := mongodb.Connect(context.Background(), mongodb.Options{URI: harness.Mongo(t), Database: "chunks", Monitor: counter.Monitor(), OperationTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := mongodb.EnsureIndexes(context.Background(), conn.DB, mongostore.Indexes); err != nil {
		t.Fatal(err)
	}
	return mongostore.New(conn.DB, mongostore.Options{Now: now}), conn.DB, counter
}

// documents sums the documents read (find, getMore) and written (insert, update, delete) per
// collection since the counter's last reset.
func documents(c *mongodb.CommandCounter) (read, written map[string]int) {
	read, written = map[string]int{}, map[string]int{}
	for k, v := range c.Snapshot() {
		switch {
		case mongodb.Reads[k.Name] || k.Name == "getMore":
			read[k.Collection] += v.Documents
		case mongodb.Writes[k.Name]:
			written[k.Collection] += v.Documents
		}
	}
	return read, written
}

func unmappedCRM(n int) []mapping.Problem {
	out := make([]mapping.Problem, n)
	for i := range out {
		id := fmt.Sprintf("005%07d", i)
		out[i] = mapping.Problem{Code: mapping.CodePlatformUserNotFound, CRMUserID: id, Email: id + "@crm.test",
			Message: "CRM user " + id + " has no platform user", Fix: "Create the user on the platform or ignore it."}
	}
	return out
}

func sortProblems(ps []domain.Problem) []domain.Problem {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Code != ps[j].Code {
			return ps[i].Code < ps[j].Code
		}
		return ps[i].CRMUserID+ps[i].PlatformUserID < ps[j].CRMUserID+ps[j].PlatformUserID
	})
	return ps
}

// TestProblemsAreStoredAsChunks: a tenant's problems are bulk-only state, so they are stored as a
// few chunk documents, not one document each (issue 18: 89k "unmapped CRM user" problems cost
// 12–22 s per run on FerretDB as documents). Reading 9,000 problems reads a handful of documents;
// replacing them after three changes writes only the chunks that hold the changes and keeps the
// since time of every problem found again.
func TestProblemsAreStoredAsChunks(t *testing.T) {
	ctx := context.Background()
	now := t0
	s, _, counter := countedStore(t, func() time.Time { return now })
	problems := unmappedCRM(9000)
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", problems, nil); err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	got, err := s.Problems(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(problems) {
		t.Fatalf("read %d problems, want %d", len(got), len(problems))
	}
	read, _ := documents(counter)
	total := 0
	for _, n := range read {
		total += n
	}
	if total > 10 {
		t.Errorf("reading %d problems read %d documents %v, want at most 10", len(problems), total, read)
	}

	// Three changes: one problem gone, one new, one with a new message.
	now = t0.Add(time.Hour)
	next := append([]mapping.Problem{}, problems[1:]...)
	next = append(next, mapping.Problem{Code: mapping.CodeCRMUserNotFound, PlatformUserID: "p1", Email: "p1@x.test", Message: "none", Fix: "create"})
	next[10].Message = "changed"
	counter.Reset()
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", next, nil); err != nil {
		t.Fatal(err)
	}
	_, written := documents(counter)
	total = 0
	for _, n := range written {
		total += n
	}
	if total > 2 {
		t.Errorf("3 changed problems wrote %d documents %v, want at most 2 (the delta and the head)", total, written)
	}
	got, err = s.Problems(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]domain.Problem, len(next))
	for i, p := range next {
		p.Provider = "salesforce"
		since := t0
		if p.PlatformUserID == "p1" {
			since = now
		}
		want[i] = domain.Problem{Problem: p, Since: since}
	}
	if diff := cmp.Diff(sortProblems(want), sortProblems(got)); diff != "" {
		t.Errorf("problems after the change (-want +got):\n%s", diff)
	}

	// The same problems again write nothing.
	counter.Reset()
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", next, nil); err != nil {
		t.Fatal(err)
	}
	if _, written := documents(counter); len(written) != 0 {
		t.Errorf("unchanged problems wrote %v, want nothing", written)
	}

	// More changes than a delta holds are folded into the chunks.
	for i := range next {
		if i%2 == 0 {
			next[i].Message += " (again)"
		}
	}
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", next, nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.Problems(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	want = want[:0]
	for _, p := range next {
		p.Provider = "salesforce"
		since := t0
		if p.PlatformUserID == "p1" {
			since = t0.Add(time.Hour)
		}
		want = append(want, domain.Problem{Problem: p, Since: since})
	}
	if diff := cmp.Diff(sortProblems(want), sortProblems(got)); diff != "" {
		t.Errorf("problems after folding the delta (-want +got):\n%s", diff)
	}

	// Shrinking to a few problems changes the layout (a new generation): the old chunks go.
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", next[:5], nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Problems(ctx, "acme", "salesforce"); err != nil || len(got) != 5 {
		t.Fatalf("after shrinking: %d problems, %v; want 5", len(got), err)
	}
}

// TestProblemsStoredOnePerDocumentAreMoved: problems stored by an earlier version (one document
// each, in "problems") are read as they are, and the tenant's first write moves them into the
// chunked layout with their since times; another tenant's stay where they are until its own
// first write.
func TestProblemsStoredOnePerDocumentAreMoved(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(24 * time.Hour)
	s, db, _ := countedStore(t, func() time.Time { return now })
	old := func(tenant, key, code, pid string) bson.D {
		return bson.D{{Key: "_id", Value: tenant + "/salesforce/" + key}, {Key: "tenant", Value: tenant}, {Key: "provider", Value: "salesforce"},
			{Key: "code", Value: code}, {Key: "platform_user_id", Value: pid}, {Key: "email", Value: pid + "@x.test"},
			{Key: "message", Value: "no CRM user for " + pid}, {Key: "fix", Value: "create it"}, {Key: "conflict", Value: false}, {Key: "since", Value: t0}}
	}
	legacy := []any{
		old("acme", "k1", mapping.CodeCRMUserNotFound, "p1"), old("acme", "k2", mapping.CodeCRMUserNotFound, "p2"),
		old("other", "k3", mapping.CodeCRMUserNotFound, "p3"),
	}
	if _, err := db.Collection(mongostore.Problems).InsertMany(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	got, err := s.Problems(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Since.Equal(t0) || got[0].Message != "no CRM user for p1" && got[0].Message != "no CRM user for p2" {
		t.Fatalf("problems stored one per document read as %+v", got)
	}
	// The rules find p1's problem again and p2's no more.
	again := got[0].Problem
	if again.PlatformUserID != "p1" {
		again = got[1].Problem
	}
	if err := s.ReplaceProblems(ctx, "acme", "salesforce", []mapping.Problem{again}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Collection(mongostore.Problems).CountDocuments(ctx, bson.D{{Key: "tenant", Value: "acme"}}); err != nil || n != 0 {
		t.Errorf("acme's problems left in the earlier layout: %d, %v", n, err)
	}
	if n, err := db.Collection(mongostore.Problems).CountDocuments(ctx, bson.D{{Key: "tenant", Value: "other"}}); err != nil || n != 1 {
		t.Errorf("other tenant's problems in the earlier layout: %d, %v; want 1 (untouched)", n, err)
	}
	got, err = s.Problems(ctx, "acme", "salesforce")
	if err != nil || len(got) != 1 || got[0].PlatformUserID != "p1" || !got[0].Since.Equal(t0) {
		t.Fatalf("moved problems = %+v, %v; want p1's since %v", got, err, t0)
	}
	if got, err := s.Problems(ctx, "other", "salesforce"); err != nil || len(got) != 1 {
		t.Errorf("other tenant's problems = %+v, %v", got, err)
	}
}

func crmUser(i int, email string) domain.CRMUser {
	return domain.CRMUser{CRMUser: mapping.CRMUser{ID: fmt.Sprintf("005%07d", i), Email: email, FirstName: "U", LastName: fmt.Sprint(i), Active: true, Kind: mapping.CRMKindUser}}
}

// TestCRMDirectoryIsReadAsChunks: Sync Users reads a provider's CRM users whole, so they are read
// from a chunked copy instead of one document each (issue 18); the events keep reading and writing
// single users' documents, and a read after an event sees the event's change (the user is marked
// in the copy and taken from its document). The next Sync Users write folds the marks back in.
func TestCRMDirectoryIsReadAsChunks(t *testing.T) {
	ctx := context.Background()
	s, _, counter := countedStore(t, func() time.Time { return t0 })
	const n = 5000
	pull := make([]domain.CRMUser, n)
	for i := range pull {
		pull[i] = crmUser(i, fmt.Sprintf("u%d@x.test", i))
	}
	// The first write finds no users stored (the documents are read: there is no copy yet).
	read, err := s.ReadCRMUsers(ctx, "acme", "salesforce")
	if err != nil || len(read.Users) != 0 {
		t.Fatalf("first read: %d users, %v", len(read.Users), err)
	}
	if err := s.WriteCRMUsers(ctx, "acme", "salesforce", read, domain.DiffCRMUsers(read.Users, pull)); err != nil {
		t.Fatal(err)
	}
	want := map[string]domain.CRMUser{}
	for _, u := range pull {
		u.UpdatedAt = t0
		want[u.ID] = u
	}
	readOnly := func(name string, wantDocs int) domain.StoredCRMUsers {
		t.Helper()
		counter.Reset()
		read, err := s.ReadCRMUsers(ctx, "acme", "salesforce")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, read.Users); diff != "" {
			t.Fatalf("%s: users (-want +got):\n%s", name, diff)
		}
		docs, _ := documents(counter)
		if docs[mongostore.CRMUsers] != wantDocs || docs[mongostore.CRMDirectory] > 1+4+1 {
			t.Errorf("%s: read %v documents, want %d CRM user documents and at most 6 of the copy (head, 4 chunks, delta)", name, docs, wantDocs)
		}
		return read
	}
	readOnly("read after the first write", 0)

	// Events: one user changes, one is deleted; a read takes both from their documents.
	changed := crmUser(7, "moved7@x.test")
	if _, ok, err := s.PutCRMUser(ctx, "acme", "salesforce", changed); err != nil || !ok {
		t.Fatalf("event put: %v %v", ok, err)
	}
	if err := s.DeleteCRMUser(ctx, "acme", "salesforce", pull[8].ID); err != nil {
		t.Fatal(err)
	}
	changed.UpdatedAt = t0
	want[changed.ID] = changed
	delete(want, pull[8].ID)
	read = readOnly("read after two events", 1) // the deleted user's lookup finds nothing

	// The next Sync Users: one more user gone, one new; the write clears the marks.
	next := make([]domain.CRMUser, 0, n)
	for _, u := range pull {
		if u.ID == pull[8].ID || u.ID == pull[9].ID {
			continue
		}
		if u.ID == changed.ID {
			u = changed
		}
		next = append(next, u)
	}
	next = append(next, crmUser(n, "new@x.test"))
	diff := domain.DiffCRMUsers(read.Users, next)
	if len(diff.Inserts) != 1 || len(diff.Deletes) != 1 || len(diff.Updates) != 0 {
		t.Fatalf("diff = %+v", diff)
	}
	counter.Reset()
	if err := s.WriteCRMUsers(ctx, "acme", "salesforce", read, diff); err != nil {
		t.Fatal(err)
	}
	_, written := documents(counter)
	if written[mongostore.CRMDirectory] > 3 {
		t.Errorf("2 changes and 2 marks wrote %d documents of the copy, want at most 3 (mark, delta, head)", written[mongostore.CRMDirectory])
	}
	delete(want, pull[9].ID)
	u := crmUser(n, "new@x.test")
	u.UpdatedAt = t0
	want[u.ID] = u
	readOnly("read after the next sync", 0)

	// Nothing changed: nothing written.
	read = readOnly("read before an unchanged sync", 0)
	counter.Reset()
	if err := s.WriteCRMUsers(ctx, "acme", "salesforce", read, domain.DiffCRMUsers(read.Users, next)); err != nil {
		t.Fatal(err)
	}
	if _, written := documents(counter); len(written) != 0 {
		t.Errorf("an unchanged sync wrote %v, want nothing", written)
	}
}

// TestCRMUsersWithoutAChunkedCopyAreReadFromTheirDocuments: users stored by an earlier version
// (documents only) are read from the documents, and the next Sync Users write makes the copy.
func TestCRMUsersWithoutAChunkedCopyAreReadFromTheirDocuments(t *testing.T) {
	ctx := context.Background()
	s, _, counter := countedStore(t, func() time.Time { return t0 })
	for i := range 3 {
		if _, _, err := s.PutCRMUser(ctx, "acme", "hubspot", crmUser(i, fmt.Sprintf("u%d@x.test", i))); err != nil {
			t.Fatal(err)
		}
	}
	read, err := s.ReadCRMUsers(ctx, "acme", "hubspot")
	if err != nil || len(read.Users) != 3 {
		t.Fatalf("users stored as documents read as %d, %v; want 3", len(read.Users), err)
	}
	if err := s.WriteCRMUsers(ctx, "acme", "hubspot", read, domain.CRMUsersDiff{}); err != nil {
		t.Fatal(err)
	}
	counter.Reset()
	read, err = s.ReadCRMUsers(ctx, "acme", "hubspot")
	if err != nil || len(read.Users) != 3 {
		t.Fatalf("after the copy was made: %d users, %v; want 3", len(read.Users), err)
	}
	if docs, _ := documents(counter); docs[mongostore.CRMUsers] != 0 {
		t.Errorf("read %d CRM user documents once the copy exists, want 0", docs[mongostore.CRMUsers])
	}
}

// TestMappingsCopyFollowsTheGeneration: Sync Users reads a provider's mappings from a chunked
// copy valid for one generation of the mappings (issue 18), never from a copy another write has
// overtaken: an event's commit (generation bump, then the write) sends the next read to the
// documents, and a sync whose commit was not the only one since its read leaves the copy behind.
func TestMappingsCopyFollowsTheGeneration(t *testing.T) {
	ctx := context.Background()
	s, _, counter := countedStore(t, func() time.Time { return t0 })
	commit := func(read domain.StoredMappings, upserts, deletes []mapping.Mapping, save bool) {
		t.Helper()
		if _, err := s.BumpGeneration(ctx, "acme", "salesforce"); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteMappings(ctx, "acme", read.Mappings, upserts, deletes); err != nil {
			t.Fatal(err)
		}
		if save {
			if err := s.SaveMappings(ctx, "acme", "salesforce", read, upserts, deletes); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(name string, wantDocs int) domain.StoredMappings {
		t.Helper()
		counter.Reset()
		read, err := s.ReadMappings(ctx, "acme", "salesforce")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs, _ := documents(counter)
		if docs[mongostore.Mappings] != wantDocs {
			t.Errorf("%s: read %d mapping documents, want %d (%v)", name, docs[mongostore.Mappings], wantDocs, docs)
		}
		want, err := s.Mappings(ctx, "acme", "salesforce")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sorted(want), sorted(append([]mapping.Mapping{}, read.Mappings...)), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s: mappings read (-documents +read):\n%s", name, diff)
		}
		return read
	}
	var ms []mapping.Mapping
	for i := range 3000 {
		ms = append(ms, m(fmt.Sprintf("p%05d", i), fmt.Sprintf("005%05d", i)))
	}
	read := check("no mappings yet", 0)
	commit(read, ms, nil, true)
	read = check("after the first sync", 0)

	// A sync changes two mappings: the copy follows.
	moved := m("p00001", "005X1")
	commit(read, []mapping.Mapping{moved}, []mapping.Mapping{ms[2]}, true)
	read = check("after a sync with changes", 0)

	// An event changes a mapping (a commit without the copy): the documents are read.
	commit(read, []mapping.Mapping{m("p00003", "005X3")}, nil, false)
	read = check("after an event", len(ms)-1)
	commit(read, nil, nil, true)
	read = check("after the next sync", 0)

	// Another writer commits between a sync's read and its commit: the copy stays behind.
	other, err := s.ReadMappings(ctx, "acme", "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	commit(other, []mapping.Mapping{m("p00004", "005X4")}, nil, false)
	commit(read, []mapping.Mapping{m("p00005", "005X5")}, nil, true)
	check("after an interleaved commit", len(ms)-1)
}
