package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
)

// TestErrorHeadingsNameTheUser: an error's heading says who it is about (name, email, platform
// user id, CRM user id) instead of hiding them in the collapsed details, and links to the page
// where it is fixed (issue 16, the admin's first hour).
func TestErrorHeadingsNameTheUser(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	r := b.get("/admin/t/acme/p/salesforce/errors")
	wantStatus(t, r, http.StatusOK)
	cards := regexp.MustCompile(`(?s)<li class="card[^"]*">\s*<h2>(.*?)</h2>\s*<p class="fix">(.*?)</p>`).FindAllStringSubmatch(r.body, -1)
	want := []struct{ name, email, platformID, crmID, fix string }{
		{"Cyd Lovelace", "user002@acme.example", "u002", "", "/admin/t/acme/p/salesforce/map?platform_user_id=u002"},
		{"Dee Lovelace", "user003@acme.example", "u003", consoletest.SFUserID(3), "/admin/t/acme/p/salesforce/map?platform_user_id=u003"},
	}
	if len(cards) != len(want) {
		t.Fatalf("%d error cards, want %d", len(cards), len(want))
	}
	for _, w := range want {
		found := false
		for _, c := range cards {
			if !strings.Contains(c[1], w.email) {
				continue
			}
			found = true
			for _, s := range []string{w.name, w.platformID, w.crmID} {
				if !strings.Contains(c[1], s) {
					t.Errorf("heading %q does not name %q", c[1], s)
				}
			}
			if !strings.Contains(c[2], `href="`+w.fix+`"`) {
				t.Errorf("fix %q does not link to %s", c[2], w.fix)
			}
		}
		if !found {
			t.Errorf("no heading names %s", w.email)
		}
	}
}
