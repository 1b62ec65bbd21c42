package devstack_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/devstack/devstack"
)

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// checkConnectionsPage signs in to the demo's console and checks that both CRMs can be connected
// through the sandboxes (issue 16): the dev stack configures the apps and the stored-token key.
func checkConnectionsPage(t *testing.T, s *devstack.Stack) {
	t.Helper()
	con := consoleSession(t, s)
	jar := con.hc.Jar
	page := con.get("/admin/t/acme/connections")
	for _, want := range []string{`id="connect-hubspot"`, `id="connect-salesforce"`, s.URLs["ingress"] + "/webhooks/hubspot"} {
		if !strings.Contains(page, want) {
			t.Errorf("Connections page lacks %q", want)
		}
	}
	if strings.Contains(page, "not configured") {
		t.Error("the Connections page says connecting is not configured in the dev stack")
	}
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no csrf field on the Connections page")
	}
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(s.URLs["mapper"]+"/admin/t/acme/connections/hubspot/connect", url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, s.URLs["hubspot-sandbox"]+"/oauth/authorize?") {
		t.Errorf("Connect HubSpot answered %d to %q, want the sandbox's install page", resp.StatusCode, loc)
	}
}
