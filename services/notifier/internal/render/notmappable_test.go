package render

import (
	"strings"
	"testing"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

// TestNotMappableUsersAreShownApart: Salesforce users who are not people are listed in their own
// section with the reason, not among the errors, and do not make the run look failed (issue 16).
func TestNotMappableUsersAreShownApart(t *testing.T) {
	r := report(false, &ownersyncv1.ProviderReport{Provider: sf,
		Counts: &ownersyncv1.SyncCounts{Mapped: 3, Pulled: 6, NotMappable: 3},
		NotMappable: []*ownersyncv1.SyncNotMappable{
			{CrmUserId: "005000000000007AAA", Name: "Integration User", Email: "int@acme.example", UserType: "Standard",
				License: "Salesforce Integration", Reason: "an integration user (Salesforce Integration licence), used by other systems, not by a person"},
			{CrmUserId: "005000000000008AAA", Name: "Automated Process", UserType: "AutomatedProcess",
				Reason: "Salesforce's Automated Process user, which runs flows and platform events"},
		},
		NotMappableTotal: 3,
	})
	e, err := Report(r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Subject, "error") || strings.Contains(e.Text, "Errors (") {
		t.Errorf("not mappable users counted as errors: subject %q\n%s", e.Subject, e.Text)
	}
	for part, body := range map[string]string{"html": e.HTML, "text": e.Text} {
		for _, want := range []string{"Not mappable (3)", "Integration User", "int@acme.example", "005000000000007AAA",
			"Salesforce Integration", "used by other systems, not by a person", "Automated Process", "AutomatedProcess",
			"and 1 more", "/admin/t/acme/runs/run-7#not-mappable-salesforce"} {
			if !strings.Contains(body, want) && !strings.Contains(body, strings.ReplaceAll(want, "'", "&#39;")) {
				t.Errorf("%s part lacks %q", part, want)
			}
		}
	}
}
