package syncusers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncbed"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// dataCollections are the collections whose writes follow a run's changes; sync_runs and
// sync_locks are the run's own record and lock (a fixed number of saves plus at most one per
// pulled page), kv_state the generation (one per provider).
var dataCollections = map[string]bool{
	mongostore.PlatformUsers: true, mongostore.CRMUsers: true, mongostore.Mappings: true,
	mongostore.Problems: true, mongostore.Provisions: true, mongostore.ProblemSets: true, mongostore.CRMDirectory: true,
	mongostore.MappingSets: true,
}

// TestSyncUsersCommandBudget: Sync Users' cost follows its changes, not its users (issue 18). On
// the embedded server, with 800 platform users against 800 users in each CRM, a second
// run after k CRM changes per provider issues at most c + k·fanout/MaxStatements write commands on
// the data collections (each change touches at most fanout stored documents: the CRM user or a
// new namesake, its mapping or the namesake's; the problems and the copies of the CRM directory
// and the mappings are chunks, a fixed number of commands), reads platform users once (one find
// and its getMores), the chunked problems and copies by _id (head and chunk), and never reads a
// CRM user's, mapping's or problem's document. A run with no change writes nothing but its own
// record and the mappings copy's head (it follows the mappings' generation, which every commit
// bumps). Both bulk modes are held to the same budget.
func TestSyncUsersCommandBudget(t *testing.T) {
	for _, mode := range []mongostore.BulkWrites{mongostore.PerDocument, mongostore.DeleteInsert} {
		t.Run(string(mode), func(t *testing.T) { testCommandBudget(t, mode) })
	}
}

func testCommandBudget(t *testing.T, mode mongostore.BulkWrites) {
	const users = 800
	const every = 8 // every 8th CRM user changes (the inactive ones skipped): k = 100 per provider
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	js := harness.JetStream(t)
	kvs := js.KV(t)
	counter := mongodb.NewCommandCounter()
	mc, err := mongodb.Connect(ctx, mongodb.Options{URI: harness.Mongo(t), Database: "budget", Monitor: counter.Monitor(), OperationTimeout: 4 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close(context.WithoutCancel(ctx))
	if err := mongodb.EnsureIndexes(ctx, mc.DB, append(append([]mongodb.Index{}, tenantstore.Indexes...), mongostore.Indexes...)); err != nil {
		t.Fatal(err)
	}

	t1, f1 := true, false
	var sfUsers []sfsim.SeedUser
	var owners []hssim.Owner
	var platform []domain.PlatformUser
	for i := range users {
		email := fmt.Sprintf("u%d@budget.test", i)
		active := &t1
		if i%40 == 39 {
			active = &f1
		}
		sfUsers = append(sfUsers, sfsim.SeedUser{Username: fmt.Sprintf("u%d@budget.sf", i), Email: email, FirstName: "U", LastName: fmt.Sprint(i), IsActive: active})
		owners = append(owners, hssim.Owner{Email: email, FirstName: "U", LastName: fmt.Sprint(i), Type: hssim.OwnerPerson, UserID: int64(1000 + i), Archived: i%40 == 39})
		platform = append(platform, domain.PlatformUser{Tenant: "bt", ID: fmt.Sprintf("p%05d", i), Email: email, FirstName: "U", LastName: fmt.Sprint(i), Status: "active", Kind: "user"})
	}
	sf, err := syncbed.Salesforce(sfUsers)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	hs, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-budget"}, BurstLimit: -1, DailyLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	if _, err := hs.Start(""); err != nil {
		t.Fatal(err)
	}
	if err := hs.Load(hssim.Seed{Owners: owners}); err != nil {
		t.Fatal(err)
	}

	bed := syncbed.New(mc.DB, js.JS, kvs[streams.MappingsBucket], mode, "pat-budget")
	store, tenants := bed.Store, bed.Tenants
	if err := store.InsertPlatformUsers(ctx, platform); err != nil {
		t.Fatal(err)
	}
	sb := syncbed.Sandboxes{SFOrgID: sf.OrgID(), SFURL: sf.URL(), HSURL: hs.URL(), HSPortalID: hs.PortalID(), HSAppID: hs.AppID()}
	if err := tenants.Put(ctx, syncbed.Tenant("bt", "Budget", sb, true)); err != nil {
		t.Fatal(err)
	}
	runner := bed.Runner(ctx, syncusers.Options{})

	run := func(name string) (map[mongodb.CommandKind]mongodb.CommandCount, *domain.SyncRun) {
		t.Helper()
		counter.Reset()
		rec, _, err := runner.Run(ctx, domain.SyncRequest{Tenant: "bt", Trigger: domain.TriggerAPI})
		if err != nil {
			t.Fatalf("%s run: %v", name, err)
		}
		if rec.Status != domain.RunSucceeded {
			t.Fatalf("%s run: %s %s", name, rec.Status, rec.Error)
		}
		counts := counter.Snapshot()
		var b strings.Builder
		mongodb.Fprint(&b, counts)
		t.Logf("%s run: MongoDB commands\n%s", name, b.String())
		return counts, rec
	}
	run("first")

	// k changes per provider, a mix of every kind: deactivation with a new active namesake
	// (remap), deactivation (removal), email change (removal), a new active duplicate (conflict).
	sfOK := func(_ sfsim.User, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	hsOK := func(_ hssim.Owner, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	k := 0
	byEmail := map[string]string{}
	for _, u := range sf.Users() {
		byEmail[u.Email] = u.ID
	}
	hsByEmail := map[string]string{}
	for _, o := range hs.Owners() {
		hsByEmail[o.Email] = o.ID
	}
	for i := 1; i < users; i += every {
		if i%40 == 39 {
			continue
		}
		email := fmt.Sprintf("u%d@budget.test", i)
		k++
		switch k % 4 {
		case 0:
			sfOK(sf.UpdateUser(byEmail[email], func(u *sfsim.User) { u.IsActive = false }))
			sfOK(sf.CreateUser(sfsim.User{Username: fmt.Sprintf("u%d-new@budget.sf", i), Email: email, LastName: "New", IsActive: true}))
			hsOK(hs.ArchiveOwner(hsByEmail[email]))
			hsOK(hs.CreateOwner(hssim.Owner{Email: email, LastName: "New", Type: hssim.OwnerPerson, UserID: int64(200000 + i)}))
		case 1:
			sfOK(sf.UpdateUser(byEmail[email], func(u *sfsim.User) { u.IsActive = false }))
			hsOK(hs.ArchiveOwner(hsByEmail[email]))
		case 2:
			sfOK(sf.UpdateUser(byEmail[email], func(u *sfsim.User) { u.Email = fmt.Sprintf("moved%d@budget.test", i) }))
			hsOK(hs.UpdateOwner(hsByEmail[email], func(o *hssim.Owner) { o.Email = fmt.Sprintf("moved%d@budget.test", i) }))
		case 3:
			sfOK(sf.CreateUser(sfsim.User{Username: fmt.Sprintf("u%d-dup@budget.sf", i), Email: email, LastName: "Dup", IsActive: true}))
			hsOK(hs.CreateOwner(hssim.Owner{Email: email, LastName: "Dup", Type: hssim.OwnerPerson, UserID: int64(300000 + i)}))
		}
	}
	counts, rec := run("second")
	changed := 0
	for _, p := range rec.Providers {
		changed += p.Outcome.ChangesTotal
	}
	if changed < k {
		t.Fatalf("second run: %d mapping changes for %d CRM changes per provider: the data set does not exercise the budget", changed, k)
	}
	checkBudget(t, "second", counts, k, len(rec.Providers))

	counts, _ = run("unchanged")
	for kind, c := range counts {
		if kind.Collection == mongostore.MappingSets && kind.Name == "update" && c.Commands <= len(rec.Providers) {
			continue // the head takes the new generation
		}
		if mongodb.Writes[kind.Name] && dataCollections[kind.Collection] {
			t.Errorf("unchanged run: %d %s commands on %s (%d documents), want none", c.Commands, kind.Name, kind.Collection, c.Documents)
		}
	}
	checkBudget(t, "unchanged", counts, 0, len(rec.Providers))
}

// fanout bounds the stored documents one CRM change rewrites one by one: the CRM user (and a new
// namesake) and the mapping(s) it moves. Problems and the copies are chunks.
const fanout = 4

func checkBudget(t *testing.T, name string, counts map[mongodb.CommandKind]mongodb.CommandCount, k, providers int) {
	t.Helper()
	// c: per provider, CRM user and mapping documents may take one command per kind of write
	// (delete, replace/park, insert) even for a single change, provisions one (a finished
	// request), the CRM directory copy three (mark the changed users, the delta, the head), the
	// mappings copy two (delta, head) and the problems two (delta, head).
	const perProviderFixed = 3 + 3 + 1 + 3 + 2 + 2
	writes := 0
	for kind, c := range counts {
		if mongodb.Writes[kind.Name] && dataCollections[kind.Collection] {
			writes += c.Commands
		}
	}
	budget := providers*perProviderFixed + (providers*k*fanout+mongostore.MaxStatements-1)/mongostore.MaxStatements
	if writes > budget {
		t.Errorf("%s run: %d write commands on the data collections for k=%d changes per provider, budget c + k·fanout/batch = %d", name, writes, k, budget)
	}
	// Each collection is read once per provider (platform users once per run); getMore continues
	// the same read. The chunked sets are read by _id: the head, (at this size) one chunk and the
	// delta, and the delta again before writing it; the documents of single CRM users, mappings
	// and problems are not read at all.
	reads := map[string]int{}
	for kind, c := range counts {
		if mongodb.Reads[kind.Name] {
			reads[kind.Collection] += c.Commands
		}
	}
	limits := map[string]int{mongostore.PlatformUsers: 1, mongostore.CRMUsers: 0, mongostore.Mappings: 0,
		mongostore.Problems: 0, mongostore.Provisions: providers, mongostore.ProblemSets: 4 * providers, mongostore.CRMDirectory: 4 * providers,
		mongostore.MappingSets: 4 * providers,
		// the mappings' generation: read with the copy and again before writing it, bumped once
		mongostore.KVState: 2 * providers}
	for coll, n := range reads {
		limit, ok := limits[coll]
		if !ok {
			limit = 1 + providers // the tenant, the run's bookkeeping: a lookup each, not a scan per user
		}
		if n > limit {
			t.Errorf("%s run: %d reads of %s, want at most %d", name, n, coll, limit)
		}
	}
	// The run's own record: a fixed number of saves plus at most one per CRM page (throttled).
	book := 0
	for kind, c := range counts {
		if mongodb.Writes[kind.Name] && !dataCollections[kind.Collection] {
			book += c.Commands
		}
	}
	if book > 60 {
		t.Errorf("%s run: %d writes of the run record, lock and generation, want at most 60", name, book)
	}
}
