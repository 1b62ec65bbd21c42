package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
)

// TestErrorHeadingsNameTheUser: an error's heading says who it is about (email, platform user id,
// CRM user id) instead of hiding them in the collapsed details (issue 16, the admin's first hour).
func TestErrorHeadingsNameTheUser(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)
	r := b.get("/admin/t/acme/p/salesforce/errors")
	wantStatus(t, r, http.StatusOK)
	h2 := regexp.MustCompile(`(?s)<li class="card">\s*<h2>(.*?)</h2>`).FindAllStringSubmatch(r.body, -1)
	if len(h2) == 0 {
		t.Fatal("no error cards")
	}
	for _, h := range h2 {
		if !strings.Contains(h[1], "user002@acme.example") || !strings.Contains(h[1], "u002") {
			t.Errorf("heading %q does not name the user", h[1])
		}
	}
}
