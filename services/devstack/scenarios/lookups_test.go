package scenarios

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// TestRecordLookups is issue 14 items 2 and 6 on the dev stack. Platform changes that name their
// record only by email are written to both CRMs after batched lookups — HubSpot batch reads with
// idProperty=email, never one GET per email, and Salesforce SOQL queries with Email IN (…), fewer
// than the records — and a HubSpot owner change of a contact the platform has no link for reaches
// the platform with the contact's email, read from HubSpot.
func TestRecordLookups(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	ada := e.sfUser("ada.lovelace@acme.example.sf")
	const hsAda = "71234501"

	t.Run("email-only platform changes", func(t *testing.T) {
		const n = 30
		e.sf.Log().Reset()
		e.hs.Log().Reset()
		sfIDs, hsIDs := make([]string, n), make([]string, n)
		for i := range n {
			email := fmt.Sprintf("lookup%02d@example.org", i)
			c, err := e.sf.CreateRecord(sfsim.Record{Type: "Contact", Email: email, LastName: "Lookup"})
			if err != nil {
				t.Fatal(err)
			}
			h, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": email, "lastname": "Lookup"}})
			if err != nil {
				t.Fatal(err)
			}
			sfIDs[i], hsIDs[i] = c.ID, h.ID
		}
		for i := range n {
			if err := e.p.PutRecord(ctx, platformsim.Record{ID: fmt.Sprintf("pr-lookup-%02d", i), Type: "contact",
				Email: fmt.Sprintf("lookup%02d@example.org", i), OwnerUserID: "pu-ada-lovelace"}); err != nil {
				t.Fatal(err)
			}
		}
		harness.EventuallyState(t, 30*time.Second, "every record owned by Ada in both CRMs", func() (bool, string) {
			for i := range n {
				r, _ := e.sf.Record(sfIDs[i])
				h, _ := e.hs.Contact(hsIDs[i])
				if r.OwnerID != ada.ID || h.Properties[hssim.OwnerProperty] != hsAda {
					return false, fmt.Sprintf("record %d: salesforce owner %s, hubspot owner %s", i, r.OwnerID, h.Properties[hssim.OwnerProperty])
				}
			}
			return true, ""
		})
		reads := e.hs.Log().Matching("POST", "/crm/v3/objects/contacts/batch/read")
		var byEmail int
		for _, en := range e.hs.Log().Matching("GET", "/crm/v3/objects/contacts/") {
			if strings.Contains(en.Path, "@") {
				byEmail++
			}
		}
		var soql int
		for _, en := range e.sf.Log().Matching("GET", "/services/data/") {
			if strings.Contains(en.Query, "Email+IN") || strings.Contains(en.Query, "Email%20IN") {
				soql++
			}
		}
		t.Logf("%d records: %d HubSpot batch reads, %d Salesforce Email IN queries", n, len(reads), soql)
		if byEmail != 0 {
			t.Errorf("%d HubSpot single-contact reads by email, want none", byEmail)
		}
		if len(reads) == 0 || len(reads) >= n || soql == 0 || soql >= n {
			t.Errorf("%d HubSpot batch reads and %d Salesforce queries for %d records: lookups are not batched", len(reads), soql, n)
		}
	})

	t.Run("HubSpot change of a contact the platform does not know names its email", func(t *testing.T) {
		h, err := e.hs.CreateContact(hssim.Contact{Properties: map[string]string{"email": "unlinked@example.org", "lastname": "Unlinked"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.hs.SetContactOwner(h.ID, hsAda, 0); err != nil {
			t.Fatal(err)
		}
		harness.EventuallyState(t, 30*time.Second, "platform record of contact "+h.ID+" with its email", func() (bool, string) {
			r, ok := platformRecordFor(e.p, "hubspot", h.ID)
			return ok && r.Email == "unlinked@example.org" && r.OwnerUserID == "pu-ada-lovelace", fmt.Sprintf("%+v (exists %v)", r, ok)
		})
	})
}
