package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestAutoProvisioningEndToEnd drives docs/architecture.md#rule-7-auto-provisioning on the dev
// stack: with auto-provisioning on for HubSpot, a contact given to a new HubSpot owner whom no
// platform user matches makes mapper ask the platform for a user; the platform creates it without a
// team, mapper maps it auto_provisioned and pending_team, the writer's assignments to it are held
// by the platform, and once the user has a team the held assignment is applied and the mapping is
// synced.
func TestAutoProvisioningEndToEnd(t *testing.T) {
	s := startDemo(t)
	waitFirstSync(t, s)
	ctx := context.Background()
	crm, plat := s.Sandboxes(), s.Platform()

	// Turn auto-provisioning on for HubSpot: read the configuration, flip the flag, put it back.
	var cfg map[string]any
	if code := getJSON(t, s, "/v1/tenants/acme", &cfg); code != http.StatusOK {
		t.Fatalf("GET tenant: %d", code)
	}
	hs, ok := cfg["hubspot"].(map[string]any)
	if !ok {
		t.Fatalf("tenant has no hubspot section: %v", cfg)
	}
	hs["auto_provisioning"] = true
	body, _ := json.Marshal(cfg)
	req, _ := http.NewRequest(http.MethodPut, s.URLs["mapper"]+"/v1/tenants/acme", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Opts.OperatorToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT tenant: %d", resp.StatusCode)
	}

	// A new, active HubSpot owner nobody on the platform matches, given a contact.
	owner, err := crm.HubSpot.CreateOwner(hssim.Owner{Email: "ada.provisioned@acme.example", FirstName: "Ada", LastName: "Provisioned",
		Type: hssim.OwnerPerson, UserID: 99001})
	if err != nil {
		t.Fatal(err)
	}
	contacts := crm.HubSpot.Contacts()
	if len(contacts) < 2 {
		t.Fatalf("demo seed has %d HubSpot contacts, want at least 2", len(contacts))
	}
	if err := crm.HubSpot.SetContactOwner(contacts[0].ID, owner.ID, 9001); err != nil {
		t.Fatal(err)
	}

	// The platform consumed the provisioning request: the user exists, without a team.
	puID := "prov-hubspot-" + owner.ID
	harness.Eventually(t, 20*time.Second, "platform user provisioned", func() bool {
		_, ok := plat.User(puID)
		return ok
	})
	if u, _ := plat.User(puID); u.TeamID != "" || u.Email != "ada.provisioned@acme.example" {
		t.Errorf("provisioned user = %+v, want the owner's email and no team", u)
	}

	// Mapper mapped it from platform.user.changed: auto_provisioned, pending_team.
	mappingOf := func() (status, madeBy string) {
		var page struct {
			Items []struct {
				PlatformUserID string `json:"platform_user_id"`
				CRMUserID      string `json:"crm_user_id"`
				Status         string `json:"status"`
				MadeBy         string `json:"made_by"`
			} `json:"items"`
		}
		getJSON(t, s, "/v1/tenants/acme/mappings?provider=hubspot&q=ada.provisioned", &page)
		for _, m := range page.Items {
			if m.PlatformUserID == puID && m.CRMUserID == owner.ID {
				return m.Status, m.MadeBy
			}
		}
		return "", ""
	}
	harness.Eventually(t, 20*time.Second, "mapping pending_team", func() bool {
		st, by := mappingOf()
		return st == "pending_team" && by == "auto_provisioned"
	})

	// A later owner change to that owner reaches the platform as an assignment, which it holds.
	if err := crm.HubSpot.SetContactOwner(contacts[1].ID, owner.ID, 9001); err != nil {
		t.Fatal(err)
	}
	held := func() bool {
		for _, a := range plat.Assignments() {
			if a.CRMRecordID == contacts[1].ID && a.OwnerUserID == puID && a.Held {
				return true
			}
		}
		return false
	}
	harness.Eventually(t, 20*time.Second, "assignment held for the user without a team", held)
	for _, r := range plat.Records() {
		if r.CRMRecordIDs["hubspot"] == contacts[1].ID && r.OwnerUserID == puID {
			t.Fatalf("record %s got the owner before the user had a team", r.ID)
		}
	}

	// The user gets a team: the held assignment is applied and the mapping is synced.
	u, _ := plat.User(puID)
	u.TeamID = "team-sales"
	if err := plat.PutUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 20*time.Second, "record owned by the provisioned user", func() bool {
		for _, r := range plat.Records() {
			if r.CRMRecordIDs["hubspot"] == contacts[1].ID && r.OwnerUserID == puID {
				return true
			}
		}
		return false
	})
	harness.Eventually(t, 20*time.Second, "mapping synced once the user has a team", func() bool {
		st, by := mappingOf()
		return st == "synced" && by == "auto_provisioned"
	})
}
