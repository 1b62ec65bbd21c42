package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// ownerWrites counts the successful owner writes a CRM sandbox received for one record (single
// PATCHes and Collections/batch calls naming it).
func ownerWrites(log *crmsim.Log, recordID string) int {
	n := 0
	for _, en := range log.Entries() {
		write := en.Method == "PATCH" || (en.Method == "POST" && (strings.Contains(en.Path, "batch/update") || strings.Contains(en.Query, "_HttpMethod=PATCH")))
		if !write || en.Status/100 != 2 {
			continue
		}
		if writtenIDs(en.Path, en.Body)[recordID] {
			n++
		}
	}
	return n
}

// writtenIDs returns the record ids a write request names, exactly: the last path segment of a
// single-record PATCH, or the ids of a Salesforce Collections body ({"records":[{"id":…}]}) or a
// HubSpot batch body ({"inputs":[{"id":…}]}). (Matching the id as a substring of the body counted
// trace ids that happened to contain the digits as writes.)
func writtenIDs(path string, body []byte) map[string]bool {
	ids := map[string]bool{}
	var b struct {
		Records []struct {
			ID string `json:"id"`
		} `json:"records"`
		Inputs []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	if json.Unmarshal(body, &b) == nil && (len(b.Records) > 0 || len(b.Inputs) > 0) {
		for _, r := range b.Records {
			ids[r.ID] = true
		}
		for _, in := range b.Inputs {
			ids[in.ID] = true
		}
		return ids
	}
	if i := strings.LastIndex(path, "/"); i >= 0 {
		ids[path[i+1:]] = true
	}
	return ids
}

// assignmentsFor lists the owner.assign messages the platform applied (or held) for a CRM record.
func assignmentsFor(p *platformsim.Platform, crmRecordID string) []platformsim.Assignment {
	var out []platformsim.Assignment
	for _, a := range p.Assignments() {
		if a.CRMRecordID == crmRecordID {
			out = append(out, a)
		}
	}
	return out
}

// platformRecordFor finds the platform record linked to a CRM record.
func platformRecordFor(p *platformsim.Platform, provider, crmRecordID string) (platformsim.Record, bool) {
	for _, r := range p.Records() {
		if r.CRMRecordIDs[provider] == crmRecordID {
			return r, true
		}
	}
	return platformsim.Record{}, false
}

// omAcked reports whether an Outbound Message naming the record was acknowledged.
func omAcked(org *sfsim.Org, recordID string) bool {
	for _, d := range org.Deliveries() {
		for _, id := range d.RecordIDs {
			if id == recordID && d.Acked {
				return true
			}
		}
	}
	return false
}

// TestSalesforcePlatformOwners is story 1: users synced by email, owners in both directions with
// exactly one write per system and no loop, the direction setting, and a new contact.
func TestSalesforcePlatformOwners(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	const sf = "salesforce"

	t.Run("users synced by email", func(t *testing.T) {
		for _, name := range []string{"ada.lovelace", "grace.hopper", "nina.simone", "oliver.reed2"} {
			u := e.sfUser(name + "@acme.example.sf")
			pid := "pu-" + strings.ReplaceAll(strings.TrimSuffix(name, "2"), ".", "-")
			if m, ok := e.mapping(sf, pid); !ok || m.CRMUserID != u.ID || m.Status != "synced" {
				t.Errorf("%s: mapping %+v (exists %v), want %s synced", pid, m, ok, u.ID)
			}
		}
	})

	ada, katherine := e.sfUser("ada.lovelace@acme.example.sf"), e.sfUser("katherine.johnson@acme.example.sf")

	t.Run("platform to Salesforce, once, no loop", func(t *testing.T) {
		c := e.sfContact("customer01@example.org")
		began := time.Now()
		if err := e.p.PutRecord(ctx, platformsim.Record{ID: "pr-c01", Type: "contact", Email: c.Email, OwnerUserID: "pu-ada-lovelace",
			CRMRecordIDs: map[string]string{sf: c.ID}}); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 20*time.Second, "Salesforce contact owned by Ada", func() (bool, string) {
			r, _ := e.sf.Record(c.ID)
			return r.OwnerID == ada.ID, "owner " + r.OwnerID
		})
		t.Logf("platform → Salesforce in %s", time.Since(began).Round(time.Millisecond))
		// Our write makes Salesforce send an Outbound Message; once it is acknowledged and its
		// history recorded as our echo, nothing more may happen.
		harness.EventuallyState(t, 20*time.Second, "the echo OM acknowledged and recorded", func() (bool, string) {
			h := e.history(sf, "contact", c.ID)
			return omAcked(e.sf, c.ID) && strings.Contains(fmt.Sprint(h), "echo"), fmt.Sprintf("acked %v history %+v", omAcked(e.sf, c.ID), h)
		})
		if n := ownerWrites(e.sf.Log(), c.ID); n != 1 {
			t.Errorf("Salesforce got %d owner writes for %s, want 1", n, c.ID)
		}
		if as := assignmentsFor(e.p, c.ID); len(as) != 0 {
			t.Errorf("the echo came back to the platform as %+v", as)
		}
	})

	t.Run("Salesforce to platform, once, no loop", func(t *testing.T) {
		c := e.sfContact("customer02@example.org")
		began := time.Now()
		if err := e.sf.SetOwner(c.ID, katherine.ID, ada.ID); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 20*time.Second, "platform record owned by Katherine", func() (bool, string) {
			r, ok := platformRecordFor(e.p, sf, c.ID)
			return ok && r.OwnerUserID == "pu-katherine-johnson", fmt.Sprintf("%+v (exists %v); assignments %+v", r, ok, assignmentsFor(e.p, c.ID))
		})
		t.Logf("Salesforce → platform in %s", time.Since(began).Round(time.Millisecond))
		harness.EventuallyState(t, 10*time.Second, "the OM acknowledged", func() (bool, string) { return omAcked(e.sf, c.ID), "not acked" })
		if as := assignmentsFor(e.p, c.ID); len(as) != 1 {
			t.Errorf("platform got %d assignments for %s, want 1: %+v", len(as), c.ID, as)
		}
		if n := ownerWrites(e.sf.Log(), c.ID); n != 0 {
			t.Errorf("ownersync wrote the Salesforce change back to Salesforce %d times", n)
		}
	})

	t.Run("new Salesforce contact reaches the platform and syncs back", func(t *testing.T) {
		barbara, ken := e.sfUser("barbara.liskov@acme.example.sf"), e.sfUser("ken.thompson@acme.example.sf")
		c, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: "new.customer@example.org", LastName: "New"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sf.SetOwner(c.ID, barbara.ID, ada.ID); err != nil {
			t.Fatal(err)
		}
		var pr platformsim.Record
		harness.EventuallyState(t, 20*time.Second, "new platform record owned by Barbara", func() (bool, string) {
			var ok bool
			pr, ok = platformRecordFor(e.p, sf, c.ID)
			return ok && pr.OwnerUserID == "pu-barbara-liskov", fmt.Sprintf("%+v (exists %v)", pr, ok)
		})
		pr.OwnerUserID = "pu-ken-thompson"
		if err := e.p.PutRecord(ctx, pr); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 20*time.Second, "new Salesforce contact owned by Ken", func() (bool, string) {
			r, _ := e.sf.Record(c.ID)
			return r.OwnerID == ken.ID, "owner " + r.OwnerID
		})
	})

	t.Run("direction crm_to_platform stops platform changes", func(t *testing.T) {
		e.setProviderSetting(sf, "direction", "crm_to_platform")
		changed := time.Now()
		// The services read tenants through a cache refreshed every 10 s: probe with one record after
		// another until a platform change reaches HubSpot (still bidirectional, the control) but not
		// Salesforce; every probe before that must have been written normally.
		var c sfsim.Record
		for i := 0; ; i++ {
			if time.Since(changed) > 20*time.Second {
				t.Fatalf("platform changes still reach Salesforce %s after the direction was set to crm_to_platform", time.Since(changed).Round(time.Millisecond))
			}
			var err error
			email := fmt.Sprintf("probe%03d@example.org", i)
			if c, err = e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: email, LastName: "Probe"}); err != nil {
				t.Fatal(err)
			}
			hsContact, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": email, "lastname": "Probe"}})
			if err != nil {
				t.Fatal(err)
			}
			before, _ := e.sf.Record(c.ID)
			if err := e.p.PutRecord(ctx, platformsim.Record{ID: fmt.Sprintf("pr-dir-%02d", i), Type: "contact", Email: c.Email, OwnerUserID: "pu-ada-lovelace",
				CRMRecordIDs: map[string]string{sf: c.ID, "hubspot": hsContact.ID}}); err != nil {
				t.Fatal(err)
			}
			harness.EventuallyState(t, 20*time.Second, "HubSpot contact "+hsContact.ID+" owned by Ada (the control)", func() (bool, string) {
				hc, _ := e.hs.Contact(hsContact.ID)
				return hc.Properties["hubspot_owner_id"] == "71234501", "owner " + hc.Properties["hubspot_owner_id"]
			})
			// The Salesforce write, when there is one, is batched with the HubSpot one: give it the
			// same chance by waiting for the record's history to show the Salesforce outcome.
			harness.EventuallyState(t, 10*time.Second, "history of "+c.ID+" records the platform change", func() (bool, string) {
				h := e.history(sf, "contact", c.ID)
				return len(h) > 0, "no history"
			})
			r, _ := e.sf.Record(c.ID)
			if r.OwnerID == before.OwnerID && ownerWrites(e.sf.Log(), c.ID) == 0 {
				t.Logf("direction crm_to_platform in effect after %s (probe %d); history %+v", time.Since(changed).Round(time.Millisecond), i, e.history(sf, "contact", c.ID))
				break
			}
			if r.OwnerID != ada.ID || ownerWrites(e.sf.Log(), c.ID) != 1 {
				t.Fatalf("probe %d before the change took effect: owner %s, %d writes", i, r.OwnerID, ownerWrites(e.sf.Log(), c.ID))
			}
		}
		// The other way still flows.
		if err := e.sf.SetOwner(c.ID, katherine.ID, ada.ID); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 20*time.Second, "platform record follows Salesforce", func() (bool, string) {
			r, ok := platformRecordFor(e.p, sf, c.ID)
			return ok && r.OwnerUserID == "pu-katherine-johnson", fmt.Sprintf("%+v", r)
		})
	})
}

// TestAutoProvisioning is story 3: with auto-provisioning on, the first owner change naming a CRM user
// with no platform user provisions one; its assignments are held until it has a team.
func TestAutoProvisioning(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	e.setProviderSetting("salesforce", "auto_provisioning", true)
	hire, err := e.sf.CreateUser(sfsim.User{Username: "new.hire@acme.example.sf", Email: "new.hire@acme.example", FirstName: "New",
		LastName: "Hire", IsActive: true, UserType: "Standard"})
	if err != nil {
		t.Fatal(err)
	}
	c := e.sfContact("customer05@example.org")
	if err := e.sf.SetOwner(c.ID, hire.ID, e.sfUser("ada.lovelace@acme.example.sf").ID); err != nil {
		t.Fatal(err)
	}
	provID := "prov-salesforce-" + hire.ID
	harness.EventuallyState(t, 20*time.Second, "platform user provisioned for "+hire.ID, func() (bool, string) {
		u, ok := e.p.User(provID)
		return ok && u.TeamID == "" && u.Email == "new.hire@acme.example", fmt.Sprintf("%+v (exists %v)", u, ok)
	})
	harness.EventuallyState(t, 20*time.Second, "mapping pending_team", func() (bool, string) {
		m, ok := e.mapping("salesforce", provID)
		return ok && m.Status == "pending_team" && m.MadeBy == "auto_provisioned" && m.CRMUserID == hire.ID, fmt.Sprintf("%+v (exists %v)", m, ok)
	})
	harness.EventuallyState(t, 20*time.Second, "owner assignment held", func() (bool, string) {
		as := assignmentsFor(e.p, c.ID)
		return len(as) == 1 && as[0].Held, fmt.Sprintf("%+v", as)
	})
	if r, ok := platformRecordFor(e.p, "salesforce", c.ID); ok && r.OwnerUserID == provID {
		t.Fatal("the held assignment was applied before the user had a team")
	}
	if ov := e.overview().of("salesforce"); ov.PendingTeam != 1 {
		t.Errorf("overview pending_team = %d, want 1", ov.PendingTeam)
	}
	u, _ := e.p.User(provID)
	u.TeamID = "team-sales"
	if err := e.p.PutUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	harness.EventuallyState(t, 20*time.Second, "held assignment released", func() (bool, string) {
		r, ok := platformRecordFor(e.p, "salesforce", c.ID)
		return ok && r.OwnerUserID == provID, fmt.Sprintf("%+v (exists %v)", r, ok)
	})
	harness.EventuallyState(t, 20*time.Second, "mapping synced once the user has a team", func() (bool, string) {
		m, ok := e.mapping("salesforce", provID)
		return ok && m.Status == "synced", fmt.Sprintf("%+v (exists %v)", m, ok)
	})
}

// TestFallbackOwner is the first half of story 4: a platform owner with no mapping makes writer use
// the tenant's fallback CRM user, and the record's history says so.
func TestFallbackOwner(t *testing.T) {
	e := start(t)
	fallback := e.sf.IntegrationUserID()
	if m, ok := e.mapping("salesforce", "pu-platform-only"); ok {
		t.Fatalf("pu-platform-only is mapped: %+v", m)
	}
	c := e.sfContact("customer06@example.org")
	if err := e.p.PutRecord(context.Background(), platformsim.Record{ID: "pr-c06", Type: "contact", Email: c.Email,
		OwnerUserID: "pu-platform-only", CRMRecordIDs: map[string]string{"salesforce": c.ID}}); err != nil {
		t.Fatal(err)
	}
	harness.EventuallyState(t, 20*time.Second, "Salesforce contact owned by the fallback "+fallback, func() (bool, string) {
		r, _ := e.sf.Record(c.ID)
		return r.OwnerID == fallback, "owner " + r.OwnerID
	})
	harness.EventuallyState(t, 10*time.Second, "history records the fallback", func() (bool, string) {
		h := e.history("salesforce", "contact", c.ID)
		for _, en := range h {
			if en.Outcome == "fallback" && en.OwnerAfter == fallback && en.PlatformUserID == "pu-platform-only" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", h)
	})
	if n := ownerWrites(e.sf.Log(), c.ID); n != 1 {
		t.Errorf("%d Salesforce writes for %s, want 1", n, c.ID)
	}
}

// TestRemapOnSalesforceDeactivation is story 5: the mapped Salesforce user is deactivated and a new
// active user with the same email appears. When the replacement exists before the deactivation
// arrives, the User Outbound Messages alone move the mapping (remap_inactive). When the
// deactivation arrives first, the mapping turns to error at once and the next Sync Users remaps it
// (docs/architecture.md#rule-5-clean-up). Either way owner writes then go to the new user.
func TestRemapOnSalesforceDeactivation(t *testing.T) {
	e := start(t)
	const sf = "salesforce"
	newUser := func(local string) sfsim.User {
		u, err := e.sf.CreateUser(sfsim.User{Username: local + "2@acme.example.sf", Email: local + "@acme.example",
			FirstName: "New", LastName: local, IsActive: true, UserType: "Standard"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	deactivate := func(id string) {
		if _, err := e.sf.UpdateUser(id, func(u *sfsim.User) { u.IsActive = false }); err != nil {
			t.Fatal(err)
		}
	}
	remapped := func(platformUser, old, nu string) func() (bool, string) {
		return func() (bool, string) {
			m, ok := e.mapping(sf, platformUser)
			return ok && m.CRMUserID == nu && m.MadeBy == "remap_inactive" && m.PreviousCRMUserID == old && m.Status == "synced",
				fmt.Sprintf("%+v (exists %v)", m, ok)
		}
	}
	writesGoTo := func(platformUser, email, nu string) {
		t.Helper()
		c := e.sfContact(email)
		if err := e.p.PutRecord(context.Background(), platformsim.Record{ID: "pr-remap-" + c.ID, Type: "contact", Email: c.Email,
			OwnerUserID: platformUser, CRMRecordIDs: map[string]string{sf: c.ID}}); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 20*time.Second, "Salesforce contact "+c.ID+" owned by the new user "+nu, func() (bool, string) {
			r, _ := e.sf.Record(c.ID)
			return r.OwnerID == nu, "owner " + r.OwnerID
		})
	}

	t.Run("replacement first: remapped by the Outbound Messages", func(t *testing.T) {
		old := e.sfUser("grace.hopper@acme.example.sf")
		began := time.Now()
		nu := newUser("grace.hopper")
		// The new user alone is ambiguous with the old active one: no remap, no new mapping.
		harness.EventuallyState(t, 20*time.Second, "the new user known to mapper", func() (bool, string) {
			for _, p := range e.problems(sf) {
				if p.CRMUserID == nu.ID || slicesContains(p.CRMUserIDs, nu.ID) {
					return true, ""
				}
			}
			for _, u := range e.unmapped("crm-users", sf) {
				if u.ID == nu.ID {
					return true, ""
				}
			}
			return false, "not listed"
		})
		deactivate(old.ID)
		harness.EventuallyState(t, 20*time.Second, "mapping remapped to "+nu.ID+" from the User OMs", remapped("pu-grace-hopper", old.ID, nu.ID))
		t.Logf("remapped %s → %s in %s without Sync Users", old.ID, nu.ID, time.Since(began).Round(time.Millisecond))
		writesGoTo("pu-grace-hopper", "customer01@example.org", nu.ID)
	})

	t.Run("deactivation first: error at once, remapped by Sync Users", func(t *testing.T) {
		old := e.sfUser("alan.turing@acme.example.sf")
		deactivate(old.ID)
		harness.EventuallyState(t, 20*time.Second, "mapping in error after the deactivation OM", func() (bool, string) {
			m, ok := e.mapping(sf, "pu-alan-turing")
			return ok && m.Status == "error", fmt.Sprintf("%+v (exists %v)", m, ok)
		})
		nu := newUser("alan.turing")
		e.syncUsers()
		if ok, state := remapped("pu-alan-turing", old.ID, nu.ID)(); !ok {
			t.Fatalf("after Sync Users: %s", state)
		}
		writesGoTo("pu-alan-turing", "customer02@example.org", nu.ID)
	})
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
