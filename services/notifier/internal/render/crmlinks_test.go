package render

import (
	"strings"
	"testing"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

// TestCRMUsersLinkToTheCRM: in the HTML part, the CRM user ids of changes, errors and not
// mappable users link to their page in the CRM (Options.CRMUserURL); the ids stay text when there
// is no page (issue 16).
func TestCRMUsersLinkToTheCRM(t *testing.T) {
	r := SampleReport(t0)
	urlOf := func(p, id string) string {
		if p != "salesforce" {
			return ""
		}
		return "https://acme.my.salesforce.com/lightning/r/User/" + id + "/view"
	}
	e, err := Report(r, Options{CRMUserURL: urlOf})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"005000000000001AAA", "005000000000009AAA", "005000000000006AAA", "005000000000010AAA"} {
		want := `<a href="https://acme.my.salesforce.com/lightning/r/User/` + id + `/view" style="color:#1565c0;">` + id + `</a>`
		if !strings.Contains(e.HTML, want) {
			t.Errorf("HTML lacks %s", want)
		}
	}
	if strings.Contains(e.HTML, `71234501/view`) || !strings.Contains(e.HTML, "71234501") {
		t.Error("a HubSpot owner without a page is not plain text")
	}
	plain, err := Report(&ownersyncv1.SyncReport{Providers: r.GetProviders()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.HTML, "lightning/r/User") {
		t.Error("links without Options.CRMUserURL")
	}
}
