package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// oneTenant is the tenant configuration source of these tests: acme with Salesforce connected and
// rule 4 on.
type oneTenant struct{ t *tenant.Tenant }

func (o oneTenant) Get(_ context.Context, id string) (*tenant.Tenant, error) {
	if id != o.t.ID {
		return nil, tenant.ErrNotFound
	}
	return o.t, nil
}

// userEvent is one complete CRM user state, as a User Outbound Message carries it.
type userEvent struct {
	id   string
	user domain.CRMUser
}

// TestShuffledUserEventsEqualReconcile is issue 14 item 4's property: CRM user events fed
// shuffled, concurrently and some twice through the core end where Sync Users would leave them —
// the usable mappings equal what mapping.Reconcile makes of the final stored state — and no
// rule-4 remap is usable while several active users have its email. Each seed is a tenant whose
// two mapped Salesforce users may be deactivated (and reactivated), and whose emails get new users
// (some deactivated again), as in the Outbound Message that showed the race: two new active users
// with the email of a mapped user, and that user's deactivation.
func TestShuffledUserEventsEqualReconcile(t *testing.T) {
	ctx := context.Background()
	cs := newCoreStack(t, "order")
	store, view, w := cs.store, cs.view, cs.w

	const sf = "salesforce"
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for seed := range uint64(6) {
		tenantID := fmt.Sprintf("order%d", seed)
		ten := &tenant.Tenant{ID: tenantID, Salesforce: &tenant.SFConfig{OrgID: "00D000000000001",
			Settings: tenant.Settings{Enabled: true, RemapOnDeactivation: true}}}
		svc := app.New(app.Options{Writer: w, Store: store, View: view, Tenants: oneTenant{ten}, LockWait: time.Minute})

		user := func(id, email string, active bool, at time.Time) domain.CRMUser {
			return domain.CRMUser{CRMUser: mapping.CRMUser{ID: id, Email: email, FirstName: "F", LastName: id, Active: active, Kind: mapping.CRMKindUser},
				SourceTime: at}
		}
		// The stored start: p1 and p2 mapped by email to A0 and B0.
		emails := map[string]string{"A0": "ada@acme.test", "A1": "ada@acme.test", "A2": "ada@acme.test", "B0": "bob@acme.test", "B1": "bob@acme.test"}
		final := map[string]bool{}
		var initial []mapping.Mapping
		for p, c := range map[string]string{"p1": "A0", "p2": "B0"} {
			email := emails[c]
			if _, err := store.UpsertPlatformUser(ctx, domain.PlatformUser{Tenant: tenantID, ID: p, Email: email, Status: "active", Kind: "user", TeamID: "t", SourceTime: t0}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := store.PutCRMUser(ctx, tenantID, sf, user(c, email, true, t0)); err != nil {
				t.Fatal(err)
			}
			final[c] = true
			initial = append(initial, mapping.Mapping{Provider: sf, PlatformUserID: p, CRMUserID: c, Email: email,
				Status: mapping.StatusSynced, MadeBy: mapping.MadeByEmail, CreatedAt: t0, UpdatedAt: t0})
		}
		if err := w.Commit(ctx, changes.Commit{Tenant: tenantID, Provider: sf, Upserts: initial, EventID: "seed-" + tenantID}); err != nil {
			t.Fatal(err)
		}

		// The events, in the order the CRM made them (source times one second apart).
		rng := rand.New(rand.NewPCG(seed, 14))
		var evs []userEvent
		at := t0
		add := func(id string, active bool) {
			at = at.Add(time.Second)
			evs = append(evs, userEvent{id: fmt.Sprintf("ev-%s-%d", tenantID, len(evs)), user: user(id, emails[id], active, at)})
			final[id] = active
		}
		for _, id := range []string{"A1", "A2", "B1"} {
			if rng.IntN(10) < 8 {
				add(id, true)
			}
		}
		for _, id := range []string{"A0", "B0"} {
			if rng.IntN(10) < 8 {
				add(id, false)
				if rng.IntN(10) < 2 {
					add(id, true)
				}
			}
		}
		for _, id := range []string{"A1", "A2", "B1"} {
			if _, created := final[id]; created && rng.IntN(10) < 3 {
				add(id, false)
			}
		}
		// Delivered shuffled, some twice, several at once.
		deliveries := append([]userEvent(nil), evs...)
		for _, ev := range evs {
			if rng.IntN(10) < 3 {
				deliveries = append(deliveries, ev)
			}
		}
		rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		var wg sync.WaitGroup
		errs := make(chan error, len(deliveries))
		sem := make(chan struct{}, 4)
		for _, ev := range deliveries {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				errs <- svc.CRMUserChanged(ctx, tenantID, sf, ev.id, ev.user, nil)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
		}

		// The stored users are the last state of each; the mappings are Sync Users' fixpoint.
		crm, err := store.CRMUsers(ctx, tenantID, sf)
		if err != nil {
			t.Fatal(err)
		}
		var in mapping.Input
		in.Provider, in.Settings, in.Now = sf, mapping.Settings{RemapOnDeactivation: true}, t0.Add(time.Hour)
		for id, active := range final {
			if u, ok := crm[id]; !ok || u.Active != active {
				t.Fatalf("seed %d: stored %s = %+v (stored %v), want active %v", seed, id, u, ok, active)
			}
			in.CRMUsers = append(in.CRMUsers, crm[id].CRMUser)
		}
		platform, err := store.PlatformUsers(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range platform {
			in.PlatformUsers = append(in.PlatformUsers, u.Rules())
		}
		if in.Mappings, err = store.Mappings(ctx, tenantID, sf); err != nil {
			t.Fatal(err)
		}
		got, want := usable(in.Mappings), usable(mapping.Reconcile(in).Mappings)
		story := fmt.Sprintf("events in CRM order %s, delivered %s; final active %v; mappings %+v", ids(evs), ids(deliveries), final, in.Mappings)
		if !slices.Equal(got, want) {
			t.Errorf("seed %d: usable mappings after the events %v, Reconcile over the final state %v\n%s", seed, got, want, story)
		}
		for _, m := range in.Mappings {
			if !m.Usable() || m.MadeBy != mapping.MadeByRemapInactive {
				continue
			}
			n := 0
			for id, active := range final {
				if active && emails[id] == m.Email {
					n++
				}
			}
			if n != 1 {
				t.Errorf("seed %d: %s remapped to %s while %d active users have %s\n%s", seed, m.PlatformUserID, m.CRMUserID, n, m.Email, story)
			}
		}
	}
}

func usable(ms []mapping.Mapping) []string {
	var out []string
	for _, m := range ms {
		if m.Usable() {
			out = append(out, m.PlatformUserID+"→"+m.CRMUserID)
		}
	}
	sort.Strings(out)
	return out
}

func ids(evs []userEvent) string {
	var out []string
	for _, ev := range evs {
		state := "inactive"
		if ev.user.Active {
			state = "active"
		}
		out = append(out, ev.user.ID+" "+state)
	}
	return fmt.Sprint(out)
}
