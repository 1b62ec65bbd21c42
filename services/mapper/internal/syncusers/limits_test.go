package syncusers_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncbed"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestSyncUsersBoundsStopAnEndlessCRM is issue 13 item 7: against a HubSpot that pages forever,
// a run stops at its page cap, its user cap or its deadline, fails with an error naming the bound
// and its setting, and leaves every mapping and stored CRM user as it was — Salesforce's too,
// though its pull (first) succeeded and would have changed a mapping.
func TestSyncUsersBoundsStopAnEndlessCRM(t *testing.T) {
	const users = 30
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	js := harness.JetStream(t)
	kvs := js.KV(t)
	mc, err := mongodb.Connect(ctx, mongodb.Options{URI: harness.Mongo(t), Database: "limits"})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close(context.WithoutCancel(ctx))
	if err := mongodb.EnsureIndexes(ctx, mc.DB, append(append([]mongodb.Index{}, tenantstore.Indexes...), mongostore.Indexes...)); err != nil {
		t.Fatal(err)
	}
	var sfUsers []sfsim.SeedUser
	var owners []hssim.Owner
	var platform []domain.PlatformUser
	for i := range users {
		email := fmt.Sprintf("u%d@limits.test", i)
		sfUsers = append(sfUsers, sfsim.SeedUser{Username: fmt.Sprintf("u%d@limits.sf", i), Email: email, FirstName: "U", LastName: fmt.Sprint(i)})
		owners = append(owners, hssim.Owner{Email: email, FirstName: "U", LastName: fmt.Sprint(i), Type: hssim.OwnerPerson, UserID: int64(1000 + i)})
		platform = append(platform, domain.PlatformUser{Tenant: "lt", ID: fmt.Sprintf("p%03d", i), Email: email, FirstName: "U", LastName: fmt.Sprint(i), Status: "active", Kind: "user"})
	}
	sf, err := syncbed.Salesforce(sfUsers)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	startHS := func(endless bool) *hssim.Account {
		hs, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-limits"}, BurstLimit: -1, DailyLimit: -1, EndlessOwners: endless})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hs.Close() })
		if _, err := hs.Start(""); err != nil {
			t.Fatal(err)
		}
		if err := hs.Load(hssim.Seed{Owners: owners}); err != nil {
			t.Fatal(err)
		}
		return hs
	}
	hs, endless := startHS(false), startHS(true)

	bed := syncbed.New(mc.DB, js.JS, kvs[streams.MappingsBucket], "", "pat-limits")
	store, tenants := bed.Store, bed.Tenants
	if err := store.InsertPlatformUsers(ctx, platform); err != nil {
		t.Fatal(err)
	}
	putTenant := func(hsURL string) {
		sb := syncbed.Sandboxes{SFOrgID: sf.OrgID(), SFURL: sf.URL(), HSURL: hsURL, HSPortalID: hs.PortalID(), HSAppID: hs.AppID()}
		if err := tenants.Put(ctx, syncbed.Tenant("lt", "Limits", sb, false)); err != nil {
			t.Fatal(err)
		}
	}
	putTenant(hs.URL())
	runner := func(maxUsers, maxPages int, deadline time.Duration) *syncusers.Runner {
		return bed.Runner(ctx, syncusers.Options{MaxUsers: maxUsers, MaxPages: maxPages, Deadline: deadline})
	}
	rec, _, err := runner(1000, 100, time.Minute).Run(ctx, domain.SyncRequest{Tenant: "lt", Trigger: domain.TriggerAPI})
	if err != nil || rec.Status != domain.RunSucceeded {
		t.Fatalf("first run: %v %+v", err, rec)
	}
	type state struct {
		Mappings map[provider.Provider][]mapping.Mapping
		CRMUsers map[provider.Provider]int
	}
	snapshot := func() state {
		s := state{Mappings: map[provider.Provider][]mapping.Mapping{}, CRMUsers: map[provider.Provider]int{}}
		for _, p := range mapping.Providers {
			ms, err := store.Mappings(ctx, "lt", p)
			if err != nil {
				t.Fatal(err)
			}
			s.Mappings[p] = ms
			us, err := store.CRMUsers(ctx, "lt", p)
			if err != nil {
				t.Fatal(err)
			}
			s.CRMUsers[p] = len(us)
		}
		return s
	}
	before := snapshot()
	if len(before.Mappings[mapping.HubSpot]) != users || len(before.Mappings[mapping.Salesforce]) != users {
		t.Fatalf("first run mapped %d HubSpot and %d Salesforce users, want %d each", len(before.Mappings[mapping.HubSpot]), len(before.Mappings[mapping.Salesforce]), users)
	}
	// A Salesforce change the failed runs must not apply: u0 deactivated (its mapping would go).
	for _, u := range sf.Users() {
		if u.Email == "u0@limits.test" {
			if _, err := sf.UpdateUser(u.ID, func(u *sfsim.User) { u.IsActive = false }); err != nil {
				t.Fatal(err)
			}
		}
	}
	putTenant(endless.URL())

	for _, c := range []struct {
		name               string
		maxUsers, maxPages int
		deadline           time.Duration
		what, setting      string
	}{
		{"page cap", 1 << 30, 25, 0, "pages", "OWNERSYNC_SYNC_MAX_PAGES"},
		{"user cap", 3000, 1 << 30, 0, "users", "OWNERSYNC_SYNC_MAX_USERS"},
		{"deadline", 1 << 30, 1 << 30, 2 * time.Second, "deadline", "OWNERSYNC_SYNC_RUN_DEADLINE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec, _, err := runner(c.maxUsers, c.maxPages, c.deadline).Run(ctx, domain.SyncRequest{Tenant: "lt", Trigger: domain.TriggerAPI})
			var le *syncusers.LimitError
			if !errors.As(err, &le) || le.What != c.what || le.Provider != mapping.HubSpot {
				t.Fatalf("run error = %v, want a %s LimitError for hubspot", err, c.what)
			}
			stored, gerr := store.Run(ctx, "lt", rec.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if stored.Status != domain.RunFailed || !strings.Contains(stored.Error, c.setting) || !strings.Contains(stored.Error, "HubSpot") {
				t.Errorf("stored run: %s %q, want failed naming HubSpot and %s", stored.Status, stored.Error, c.setting)
			}
			if d := cmp.Diff(before, snapshot()); d != "" {
				t.Errorf("a stopped run changed the stored state (-before +after):\n%s", d)
			}
		})
	}
}
