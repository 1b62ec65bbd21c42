package console_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
)

// TestFailedWritesOnOverviewAndTheirPage: the overview shows the failed record writes and the
// dead letters with their counts and links; the Failed writes page lists each with the record
// (linked to its history), the owner, the CRM's error code and a suggested fix, and the writer's
// dead letters with a way to replay them (issue 16, the admin's first hour).
func TestFailedWritesOnOverviewAndTheirPage(t *testing.T) {
	env := start(t, nil, console.Config{})
	b := signedIn(t, env, consoletest.AcmeToken)
	ov := b.get("/admin/t/acme/")
	wantStatus(t, ov, http.StatusOK)
	wantContains(t, ov.body, `id="count-failed-writes" href="/admin/t/acme/failed-writes">2<`,
		`id="count-dead-letters" href="/admin/t/acme/dlq">`+strconv.Itoa(len(consoletest.DeadLetterSeed()))+`<`)

	r := b.get("/admin/t/acme/failed-writes")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `data-total="2"`,
		`href="/admin/t/acme/history?id=003000000000007AAA&amp;provider=salesforce&amp;type=contact"`,
		consoletest.SFUserID(3), `<code class="error-code">INACTIVE_OWNER_OR_USER</code>`,
		"The owner is inactive in Salesforce: reactivate the user",
		`href="/admin/t/acme/p/hubspot/mappings?q=u902"`, "no CRM call",
		"Map the platform user to an active HubSpot user, or set an active fallback owner in Settings",
		`href="/admin/t/acme/dlq?service=writer"`)
	rows := regexp.MustCompile(`(?s)<tbody>(.*?)</tbody>`).FindStringSubmatch(r.body)
	if rows == nil || strings.Count(rows[1], "<tr>") != 2 {
		t.Fatalf("want two failed writes listed:\n%s", r.body)
	}
	if i, j := strings.Index(rows[1], "003000000000007AAA"), strings.Index(rows[1], "501"); i < 0 || j < 0 || i > j {
		t.Errorf("failed writes are not newest first")
	}
}
