package mapper_test

import (
	"github.com/ownersync/ownersync/libs/provider"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestSyncUsersListsUsersWhoAreNotPeople is issue 16 end to end: against the Salesforce sandbox,
// Sync Users pulls each user's licence (Profile.UserLicense.Name) and the Automated Process user
// (no profile); the integration user who carries a person's email does not make that email
// ambiguous, the person is mapped, and the run lists both non-people as not mappable with the
// reason, apart from the errors (and the report.sync event carries them to the email).
func TestSyncUsersListsUsersWhoAreNotPeople(t *testing.T) {
	s := startStack(t)
	integ, err := s.sf.CreateUser(sfsim.User{Username: "integration@acme.test.sf", Email: "dan@acme.test", LastName: "Integration",
		IsActive: true, License: "Salesforce Integration"})
	if err != nil {
		t.Fatal(err)
	}
	auto, err := s.sf.CreateUser(sfsim.User{Username: "autoproc@00d.test.sf", LastName: "Automated Process", IsActive: true, UserType: "AutomatedProcess"})
	if err != nil {
		t.Fatal(err)
	}
	s.platformUser("p-dan", "dan@acme.test", "Dan", ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER)
	harness.Eventually(t, 10*time.Second, "platform user stored", func() bool {
		var o struct {
			Providers []struct {
				PlatformUsers int `json:"platform_users"`
			} `json:"providers"`
		}
		s.api(http.MethodGet, "/v1/tenants/acme/users/overview", &o)
		return len(o.Providers) > 0 && o.Providers[0].PlatformUsers == 1
	})
	r := s.sync("")
	var full struct {
		Providers []struct {
			Provider    provider.Provider `json:"provider"`
			Errors      int               `json:"errors"`
			NotMappable []struct {
				CRMUserID string `json:"crm_user_id"`
				UserType  string `json:"user_type"`
				License   string `json:"license"`
				Reason    string `json:"reason"`
			} `json:"not_mappable"`
			NotMappableTotal int `json:"not_mappable_total"`
		} `json:"providers"`
	}
	if code := s.api(http.MethodGet, "/v1/tenants/acme/sync-runs/"+r.ID, &full); code != http.StatusOK || r.State != "succeeded" {
		t.Fatalf("run %+v: %d", r, code)
	}
	var got map[string]string
	for _, p := range full.Providers {
		if p.Provider != "salesforce" {
			continue
		}
		got = map[string]string{}
		for _, n := range p.NotMappable {
			got[n.CRMUserID] = n.UserType + "/" + n.License
			if n.Reason == "" {
				t.Errorf("%s has no reason", n.CRMUserID)
			}
		}
		if p.NotMappableTotal != 2 {
			t.Errorf("not_mappable_total = %d, want 2", p.NotMappableTotal)
		}
	}
	want := map[string]string{integ.ID: "Standard/Salesforce Integration", auto.ID: "AutomatedProcess/"}
	if len(got) != 2 || got[integ.ID] != want[integ.ID] || got[auto.ID] != want[auto.ID] {
		t.Errorf("not mappable = %v, want %v", got, want)
	}
	var page struct {
		Items []mappingItem `json:"items"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/mappings?provider=salesforce", &page)
	dan, _ := s.sf.UserByUsername("dan@acme.test.sf")
	found := false
	for _, m := range page.Items {
		found = found || m.PlatformUserID == "p-dan" && m.CRMUserID == dan.ID && m.Status == "synced"
	}
	if !found {
		t.Errorf("p-dan is not mapped to Dan: %+v", page.Items)
	}
	var problems struct {
		Items []struct {
			Code      string `json:"code"`
			CRMUserID string `json:"crm_user_id"`
		} `json:"items"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/errors?provider=salesforce", &problems)
	for _, p := range problems.Items {
		if p.CRMUserID == integ.ID || p.CRMUserID == auto.ID || p.Code == "ambiguous_email" && p.CRMUserID == dan.ID {
			t.Errorf("error %+v about a user who is not a person", p)
		}
	}
	var ov struct {
		Providers []struct {
			Provider    provider.Provider `json:"provider"`
			NotMappable int               `json:"not_mappable"`
			UnmappedCRM int               `json:"unmapped_crm"`
		} `json:"providers"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/users/overview", &ov)
	for _, p := range ov.Providers {
		if p.Provider == "salesforce" && p.NotMappable != 2 {
			t.Errorf("overview: %d not mappable Salesforce users, want 2", p.NotMappable)
		}
	}
	reports := s.messages("report.sync.acme", func() proto.Message { return &ownersyncv1.SyncReport{} })
	if len(reports) == 0 {
		t.Fatal("no report.sync event")
	}
	last := reports[len(reports)-1].(*ownersyncv1.SyncReport)
	for _, p := range last.GetProviders() {
		if p.GetProvider() == ownersyncv1.Provider_PROVIDER_SALESFORCE && (len(p.GetNotMappable()) != 2 || p.GetCounts().GetNotMappable() != 2) {
			t.Errorf("report event's not mappable = %v (count %d)", p.GetNotMappable(), p.GetCounts().GetNotMappable())
		}
	}
}
