package devstack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// TestOwnerChangesBothWays drives the writer on the dev stack: a HubSpot owner change becomes an
// owner assignment on the platform; a platform owner change is written to Salesforce and HubSpot in
// one call each, and the sandboxes' Outbound Message and webhook for that write are recognised as
// our echo, so nothing flows back.
func TestOwnerChangesBothWays(t *testing.T) {
	s := startDemo(t)
	waitFirstSync(t, s)
	ctx := context.Background()
	crm, plat := s.Sandboxes(), s.Platform()

	// HubSpot → platform: move a contact to Grace Hopper's owner in the HubSpot UI.
	var grace string
	for _, ow := range crm.HubSpot.Owners() {
		if ow.Email == "grace.hopper@acme.example" && !ow.Archived {
			grace = ow.ID
		}
	}
	contact := crm.HubSpot.Contacts()[0]
	if err := crm.HubSpot.SetContactOwner(contact.ID, grace, 9001); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 20*time.Second, "owner assignment applied on the platform", func() bool {
		for _, a := range plat.Assignments() {
			if a.CRMRecordID == contact.ID && a.OwnerUserID == "pu-grace-hopper" {
				return true
			}
		}
		return false
	})

	// Platform → CRMs: a platform contact whose email both CRMs know gets Alan Turing as owner.
	var sfContact string
	email := contact.Properties["email"]
	for _, r := range crm.Salesforce.Records("Contact") {
		if strings.EqualFold(r.Email, email) {
			sfContact = r.ID
		}
	}
	if sfContact == "" {
		t.Skipf("demo seed has no Salesforce contact with HubSpot contact's email %s", email)
	}
	sfCalls := len(crm.Salesforce.Log().Matching("PATCH", "/services/data/"))
	hsCalls := len(crm.HubSpot.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update"))
	if err := plat.PutRecord(ctx, platformsim.Record{ID: "pr-demo-1", Type: "contact", Email: email, OwnerUserID: "pu-alan-turing"}); err != nil {
		t.Fatal(err)
	}
	var alanSF, alanHS string
	for _, u := range crm.Salesforce.Users() {
		if u.Email == "alan.turing@acme.example" && u.IsActive {
			alanSF = u.ID
		}
	}
	for _, ow := range crm.HubSpot.Owners() {
		if ow.Email == "alan.turing@acme.example" && !ow.Archived {
			alanHS = ow.ID
		}
	}
	// The mapping view contract across services: the writer finds Alan's CRM users through the
	// entries mapper wrote to the mappings bucket (libs/mappingkv).
	harness.Eventually(t, 20*time.Second, "owner written to both CRMs", func() bool {
		r, _ := crm.Salesforce.Record(sfContact)
		c, _ := crm.HubSpot.Contact(contact.ID)
		return r.OwnerID == alanSF && c.Properties["hubspot_owner_id"] == alanHS
	})
	// The sandboxes fire an Outbound Message and a webhook for our own writes; the writer records
	// them as echoes in the records' history and writes nothing back.
	echoed := func(provider, id string) func() bool {
		return func() bool {
			var h struct {
				Items []struct {
					Outcome string `json:"outcome"`
				} `json:"items"`
			}
			getJSON(t, s, "/v1/tenants/acme/records/"+provider+"/contact/"+id+"/history", &h)
			for _, e := range h.Items {
				if e.Outcome == "echo" {
					return true
				}
			}
			return false
		}
	}
	harness.Eventually(t, 20*time.Second, "Salesforce echo recorded", echoed("salesforce", sfContact))
	harness.Eventually(t, 20*time.Second, "HubSpot echo recorded", echoed("hubspot", contact.ID))
	if n := len(crm.Salesforce.Log().Matching("PATCH", "/services/data/")) - sfCalls; n != 1 {
		t.Errorf("Salesforce write calls = %d, want exactly 1", n)
	}
	if n := len(crm.HubSpot.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update")) - hsCalls; n != 1 {
		t.Errorf("HubSpot batch calls = %d, want exactly 1", n)
	}
	if r, _ := plat.Record("pr-demo-1"); r.OwnerUserID != "pu-alan-turing" {
		t.Errorf("platform record owner = %s after the echoes, want pu-alan-turing", r.OwnerUserID)
	}

	// The ownership_history contract across services: the document the writer stored for the
	// platform change (libs/ownerhistory.Doc) comes back whole through mapper's API, including the
	// platform record id and the source time that mapper's own copy of the shape used to drop.
	var h struct {
		Items []struct {
			Tenant           string    `json:"tenant"`
			Provider         string    `json:"provider"`
			RecordType       string    `json:"record_type"`
			RecordID         string    `json:"record_id"`
			Direction        string    `json:"direction"`
			Outcome          string    `json:"outcome"`
			OwnerAfter       string    `json:"owner_after"`
			PlatformUserID   string    `json:"platform_user_id"`
			PlatformRecordID string    `json:"platform_record_id"`
			OccurredAt       time.Time `json:"occurred_at"`
		} `json:"items"`
	}
	getJSON(t, s, "/v1/tenants/acme/records/salesforce/contact/"+sfContact+"/history", &h)
	found := false
	for _, e := range h.Items {
		if e.Direction != "platform_to_crm" || e.Outcome != "applied" {
			continue
		}
		found = true
		if e.Tenant != "acme" || e.Provider != "salesforce" || e.RecordType != "contact" || e.RecordID != sfContact ||
			e.OwnerAfter != alanSF || e.PlatformUserID != "pu-alan-turing" || e.PlatformRecordID != "pr-demo-1" || e.OccurredAt.IsZero() {
			t.Errorf("history entry of the platform change as mapper reads it = %+v; want record %s, owner %s, platform user pu-alan-turing, platform record pr-demo-1 and a source time",
				e, sfContact, alanSF)
		}
	}
	if !found {
		t.Errorf("mapper's history of %s has no applied platform_to_crm entry: %+v", sfContact, h.Items)
	}
}

// startDemo starts the dev stack with its demo tenant in t's temp dir; it stops at cleanup.
func startDemo(t *testing.T) *devstack.Stack {
	t.Helper()
	o := devstack.Options{DataDir: t.TempDir(), Demo: true, OperatorToken: devstack.DevOperatorToken, PlatformToken: devstack.DevPlatformToken}
	s, err := devstack.Start(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func waitFirstSync(t *testing.T, s *devstack.Stack) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "first Sync Users finished", func() bool {
		var ov struct {
			LastSync *struct {
				State string `json:"state"`
			} `json:"last_sync"`
		}
		getJSON(t, s, "/v1/tenants/acme/users/overview", &ov)
		return ov.LastSync != nil && ov.LastSync.State == "succeeded"
	})
}
