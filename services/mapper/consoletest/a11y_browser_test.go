package consoletest_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/workbench/pagecheck"
)

// consolePages are every page of the console an admin reaches, with the name of its screenshot.
var consolePages = []struct{ path, name string }{
	{"/admin/t/acme/", "overview"},
	{"/admin/t/acme/p/salesforce/mappings", "mappings"},
	{"/admin/t/acme/p/hubspot/mappings", "mappings-hubspot"},
	{"/admin/t/acme/p/salesforce/unmapped-platform", "unmapped-platform"},
	{"/admin/t/acme/p/salesforce/unmapped-crm", "unmapped-crm"},
	{"/admin/t/acme/p/salesforce/errors", "errors"},
	{"/admin/t/acme/p/salesforce/map?platform_user_id=u901", "map"},
	{"/admin/t/acme/sync", "sync"},
	{"/admin/t/acme/runs/run-0", "run"},
	{"/admin/t/acme/settings", "settings"},
	{"/admin/t/acme/history?provider=salesforce&type=contact&id=003000000000001AAA", "history"},
	{"/admin/t/acme/dlq", "dlq"},
	{"/admin/t/acme/p/salesforce/errors?q=Lovelace&kind=error", "errors-search"},
	{"/admin/t/acme/failed-writes", "failed-writes"},
	{"/admin/t/acme/tokens", "tokens"},
	{"/admin/t/acme/connections", "connections"},
	{"/admin/", "tenants"},
	{"/admin/t/acme/nope", "not-found"},
}

// TestBrowserEveryPageAtPhoneWidth visits every console page at 375 px (a phone) and at laptop
// width, and fails on what an admin on a phone or with a screen reader trips over: sideways
// scrolling, form fields without a label, images without alt, a positive tabindex and text below
// 4.5:1 contrast (pagecheck). The sign-in page is checked before signing in. Screenshots of the
// phone views go with the others (issue 16).
func TestBrowserEveryPageAtPhoneWidth(t *testing.T) {
	b := newTab(t, consoletest.NewDemo(30), console.Config{PlatformUserURL: "https://platform.example/admin/users/{id}"})
	audit := func(path string) {
		t.Helper()
		f, err := pagecheck.Check(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ps := f.Problems(); len(ps) > 0 {
			t.Errorf("%s:\n  %s", path, strings.Join(ps, "\n  "))
		}
	}
	for _, width := range []int64{375, 1280} {
		b.viewport(width, 812, width < 600)
		b.do(chromedp.Navigate(b.env.URL + "/admin/signin"))
		b.waitFor("#token")
		audit("/admin/signin")
		if width < 600 {
			b.shot("phone-signin")
		}
	}
	b.signIn(consoletest.OperatorToken)
	for _, width := range []int64{375, 1280} {
		b.viewport(width, 812, width < 600)
		for _, p := range consolePages {
			b.open(p.path)
			audit(p.path)
			if width < 600 {
				b.shot("phone-" + p.name)
			}
		}
	}
}
