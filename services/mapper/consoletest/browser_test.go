package consoletest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/pagecheck"
)

var (
	mongoURI string
	// browserCtx is the running Chromium every test opens its tabs in; nil when chromium is absent.
	browserCtx context.Context
	noBrowser  string
	shotDir    string
)

// repoRoot is the directory holding go.work (screenshots go to <root>/screenshots).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

// TestMain starts FerretDB and, when chromium is installed, one headless Chromium for every test.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "consoletest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	uri, stop, err := harness.PackageMongo()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	mongoURI = uri

	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shotDir = filepath.Join(root, "screenshots")
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// A missing browser fails the package: the console's browser tests are part of the suite,
	// and a suite that quietly skips them proves nothing about the console. Only an explicit
	// OWNERSYNC_SKIP_BROWSER_TESTS=1 (a developer without root on a machine without chromium)
	// runs the rest and skips them, saying so (pagecheck.SkipAllowed).
	bctx, cancelBrowser, err := pagecheck.Browser(dir)
	if pagecheck.SkipAllowed(err) {
		noBrowser = pagecheck.SkipMessage
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "start chromium:", err, "— the console's browser tests need it; set "+pagecheck.SkipEnv+"=1 to skip them knowingly.")
		return 1
	}
	defer cancelBrowser()
	browserCtx = bctx
	return m.Run()
}

// tab is one browser tab on a console.
type tab struct {
	t   *testing.T
	ctx context.Context
	env *consoletest.Env
}

// newTab serves a console and opens a tab at laptop width; every action of the test must finish
// within 45 s.
func newTab(t *testing.T, svc *consoletest.Service, cfg console.Config) *tab {
	t.Helper()
	if browserCtx == nil {
		t.Skip(noBrowser)
	}
	env := consoletest.Start(t, mongoURI, svc, cfg)
	tctx, cancelTab := chromedp.NewContext(browserCtx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tctx, 45*time.Second)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, env: env}
	tb.viewport(1280, 800, false)
	return tb
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	b.waitFor(sel)
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).innerText`, sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *tab) viewport(w, h int64, mobile bool) {
	b.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateScale(1), chromedp.EmulateMobile)
	}
	b.do(chromedp.EmulateViewport(w, h, opts...))
}

func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.env.URL + path))
	b.waitFor("main")
}

// waitJS evaluates cond until it is true; evaluation errors while a page loads are retried.
func (b *tab) waitJS(cond string) error {
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return nil
		}
		last = err
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a page condition, not a wait for an outcome
	}
	if last == nil {
		last = errors.New("condition stayed false")
	}
	return last
}

// waitText waits until the element's text contains want.
func (b *tab) waitText(sel, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return document.readyState === "complete" && !!e && e.textContent.includes(%q); })()`, sel, want)
	if err := b.waitJS(js); err != nil {
		got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || "(absent)"`, sel)))
		b.t.Fatalf("%s never contained %q; it has %q (%v)", sel, want, got, err)
	}
}

// waitFor waits until an element matches sel.
func (b *tab) waitFor(sel string) {
	b.t.Helper()
	if err := b.waitJS(fmt.Sprintf(`document.readyState === "complete" && !!document.querySelector(%q)`, sel)); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + " :: " + document.body.innerText.slice(0, 300)`))
		b.t.Fatalf("%s never appeared: %v; page %s", sel, err, loc)
	}
}

// shot saves a full-page PNG under <repo>/screenshots.
func (b *tab) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(shotDir, "console-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

func (b *tab) signIn(token string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.env.URL + "/admin/"))
	b.waitFor("#token")
	b.do(chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS(`form[action="/admin/signin"] button`)))
	b.waitFor("form.signout")
}

func TestBrowserSignInSearchAndPage(t *testing.T) {
	b := newTab(t, nil, console.Config{})
	b.do(chromedp.Navigate(b.env.URL + "/admin/t/acme/p/salesforce/mappings"))
	b.waitFor("#token")
	b.shot("signin")
	b.do(chromedp.SendKeys(chromedp.ID("token"), "wrong-token-0123456789"), chromedp.Click(chromedp.CSS(`form[action="/admin/signin"] button`)))
	b.waitText("#signin-problem", "not accepted")

	b.signIn(consoletest.OperatorToken)
	b.waitText(".tenant-list", "Acme Corp")
	b.shot("tenants")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/admin/t/acme/"]`)))
	b.waitText("h1", "Overview")
	b.waitText("#last-sync", "2026-11-20 09:30:04 UTC")
	b.shot("overview")

	b.do(chromedp.Click(chromedp.CSS(`a[href="/admin/t/acme/p/salesforce/mappings"]`)))
	b.waitText("#totals", "Showing 1–25 of 60")
	b.shot("mappings")
	b.do(chromedp.SendKeys(chromedp.ID("q"), "Ada"), chromedp.Click(chromedp.CSS(`form.search button`)))
	b.waitText("#totals", "Showing 1–6 of 6")
	if got := b.text("table.mappings tbody tr:first-child td:first-child"); got != "Ada" {
		t.Errorf("first name of the first match = %q, want Ada", got)
	}
	b.open("/admin/t/acme/p/salesforce/mappings?per_page=2&q=Ada")
	b.do(chromedp.Click(chromedp.CSS(`a[rel="next"]`)))
	b.waitText(".pager", "Page 2 of 3")
	b.waitText("#totals", "Showing 3–4 of 6")
	b.shot("search-page-2")

	// The conflict's reason opens from its details element.
	b.open("/admin/t/acme/p/salesforce/mappings?status=conflict")
	b.do(chromedp.Click(chromedp.CSS("table.mappings details summary")))
	b.waitText("table.mappings details p", "two active Salesforce users")
	b.shot("conflict-reason")
}

func TestBrowserUnmappedViewsAndPhoneWidth(t *testing.T) {
	svc := consoletest.NewDemo(30)
	b := newTab(t, svc, console.Config{PlatformUserURL: "https://platform.example/admin/users/{id}"})
	b.signIn(consoletest.AcmeToken)
	b.waitText("h1", "Overview")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/admin/t/acme/p/salesforce/unmapped-platform"]`)))
	b.waitText("h1", "Unmapped platform users (3)")
	href, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(`a[href^="https://platform.example"]`), "href"))
	if err != nil || href.Value != "https://platform.example/admin/users/u901" {
		t.Errorf("fix link = %+v, %v", href, err)
	}
	b.shot("unmapped-platform")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/admin/t/acme/p/salesforce/unmapped-crm"]`)))
	b.waitText("h1", "Unmapped Salesforce users (2)")
	// The hostile name is text, not markup: no script element came from it.
	b.waitText("main table", consoletest.Hostile)
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script").length`))
	if err != nil || n != 0 {
		t.Errorf("scripts inside main = %d, %v", n, err)
	}
	b.shot("unmapped-crm")
	b.open("/admin/t/acme/p/salesforce/errors")
	b.waitText("main", "Suggested fix")
	b.shot("errors")

	b.viewport(375, 812, true)
	for _, p := range []struct{ path, name string }{
		{"/admin/t/acme/", "phone-overview"}, {"/admin/t/acme/p/salesforce/mappings", "phone-mappings"},
		{"/admin/t/acme/p/salesforce/unmapped-platform", "phone-unmapped-platform"}, {"/admin/t/acme/settings", "phone-settings"},
	} {
		b.open(p.path)
		// Nothing may be wider than the phone: no horizontal scrolling of the page.
		w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if w > 375 {
			t.Errorf("%s is %d px wide at a 375 px viewport", p.path, w)
		}
		b.shot(p.name)
	}
}

func TestBrowserSyncUsers(t *testing.T) {
	svc := consoletest.NewDemo(40)
	svc.Steps = 4
	b := newTab(t, svc, console.Config{PollInterval: 300 * time.Millisecond})
	b.signIn(consoletest.OperatorToken)
	b.open("/admin/t/acme/sync")
	b.shot("sync")
	b.do(chromedp.Click(chromedp.ID("dry_run")), chromedp.Click(chromedp.ID("sync-users")))
	b.waitText("h1", "Sync Users run (dry run)")
	b.shot("sync-running")
	// The page's script polls the progress and reloads when the run ends.
	b.waitText("#progress-h", "Finished")
	b.waitText("#run-state", "succeeded")
	b.waitText("#run-phase", "done")
	b.shot("sync-finished")
	calls := svc.Calls("StartSync")
	if len(calls) != 1 || !strings.Contains(calls[0], "Trigger:manual DryRun:true EmailReport:false") {
		t.Errorf("StartSync calls = %v", calls)
	}
	b.open("/admin/t/acme/sync")
	b.waitText("table.runs", "manual (dry run)")
	b.shot("sync-runs")
}

func TestBrowserSyncUsersWithoutJavaScript(t *testing.T) {
	svc := consoletest.NewDemo(10)
	svc.Steps = 3
	b := newTab(t, svc, console.Config{PollInterval: time.Second})
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.signIn(consoletest.OperatorToken)
	b.open("/admin/t/acme/sync")
	b.do(chromedp.Click(chromedp.ID("sync-users")))
	// The meta refresh inside <noscript> reloads the page every second until the run ends.
	b.waitText("#progress-h", "Finished")
	b.shot("sync-finished-nojs")
}

func TestBrowserChangeSetting(t *testing.T) {
	b := newTab(t, nil, console.Config{})
	b.signIn(consoletest.AcmeToken)
	b.open("/admin/t/acme/settings")
	b.waitText("#settings-salesforce", "env:ACME_SF_SECRET")
	b.shot("settings")
	b.do(chromedp.SetValue(chromedp.ID("schedule_interval"), "1m"), chromedp.Click(chromedp.ID("save-settings")))
	b.waitText("#settings-problems", "must be a duration of at least 5m0s")
	b.shot("settings-invalid")
	b.do(
		chromedp.SetValue(chromedp.ID("schedule_interval"), "45m"),
		chromedp.SetValue(chromedp.ID("salesforce_direction"), "crm_to_platform"),
		chromedp.SetValue(chromedp.ID("salesforce_fallback"), consoletest.SFUserID(7)),
		chromedp.Click(chromedp.ID("save-settings")),
	)
	b.waitText(".flash", "Settings saved.")
	b.shot("settings-saved")
	got, err := b.env.Tenants.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.Schedule.Interval != "45m" || got.Salesforce.Direction != tenant.CRMToPlatform || got.Salesforce.FallbackOwnerID != consoletest.SFUserID(7) {
		t.Errorf("stored schedule %+v, salesforce %+v", got.Schedule, got.Salesforce.Settings)
	}
}

func TestBrowserMapManually(t *testing.T) {
	svc := consoletest.NewDemo(20)
	b := newTab(t, svc, console.Config{})
	b.signIn(consoletest.OperatorToken)
	b.open("/admin/t/acme/p/salesforce/unmapped-platform")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/admin/t/acme/p/salesforce/map?platform_user_id=u902"]`)))
	b.waitText("h1", "Map a user manually")
	b.do(chromedp.SendKeys(chromedp.ID("crm_user_id"), consoletest.SFUserID(902)), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	b.waitText("#email-warning", "The emails differ")
	b.shot("map-warning")
	b.do(chromedp.Click(chromedp.CSS(`#email-warning input[name=confirm]`)), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)))
	b.waitText(".flash", "The users are now mapped.")
	b.waitText("table.mappings", "Otto")
	b.shot("map-done")
	want := "MapManually acme salesforce u902 " + consoletest.SFUserID(902) + " operator:"
	if calls := svc.Calls("MapManually"); len(calls) != 1 || !strings.HasPrefix(calls[0], want) {
		t.Errorf("MapManually calls = %v, want one starting %q", calls, want)
	}
}

// acceptDialogs answers every JavaScript confirm of the tab with accept and sends its message
// on the returned channel.
func (b *tab) acceptDialogs(accept bool) <-chan string {
	msgs := make(chan string, 8)
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case msgs <- ev.Message:
			default:
			}
			if _, err := chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept}); err != nil {
				return
			}
		}
	}()
	return msgs
}

func TestBrowserUnmapAndReplayAskFirst(t *testing.T) {
	svc := consoletest.NewDemo(8)
	b := newTab(t, svc, console.Config{})
	b.signIn(consoletest.OperatorToken)
	msgs := b.acceptDialogs(true)

	b.open("/admin/t/acme/p/salesforce/mappings?q=u005")
	b.waitText("#totals", "of 1")
	b.do(chromedp.Click(chromedp.CSS(`table.mappings button.danger`)))
	select {
	case m := <-msgs:
		if !strings.Contains(m, "u005") {
			t.Errorf("confirm message = %q", m)
		}
	case <-b.ctx.Done():
		t.Fatal("no confirmation was asked")
	}
	b.waitText(".flash", "The mapping was removed.")
	if calls := svc.Calls("Unmap"); len(calls) != 1 || !strings.HasPrefix(calls[0], "Unmap acme salesforce u005 operator:") {
		t.Errorf("Unmap calls = %v", calls)
	}
	b.shot("unmapped-done")

	b.open("/admin/t/acme/history?provider=salesforce&type=contact&id=003000000000001AAA")
	b.waitText("main table", "assigned")
	b.shot("history")

	b.open("/admin/t/acme/dlq")
	b.shot("dlq")
	b.do(chromedp.Click(chromedp.ID("dl-4")), chromedp.Click(chromedp.CSS(`form[action$="/dlq/replay"] button`)))
	<-msgs
	b.waitText(".flash", "Replayed 1 dead letter(s).")
	b.waitText("h1", "Dead letters (1)")
	b.shot("dlq-replayed")
}

// TestBrowserErrorsAndFailedWrites follows the overview's counts: Conflicts opens the Errors page
// filtered to conflicts, a search narrows the list and the CSV export keeps the search; Failed
// writes opens the failed record writes with their CRM error codes (issue 16). Screenshots
// console-errors-conflicts, console-errors-search and console-failed-writes.
func TestBrowserErrorsAndFailedWrites(t *testing.T) {
	b := newTab(t, consoletest.NewDemo(30), console.Config{})
	b.signIn(consoletest.AcmeToken)
	b.waitText("h1", "Overview")
	b.do(chromedp.Click(chromedp.ID("count-conflicts-salesforce")))
	b.waitText("#problem-counts", "1 error, 1 conflict")
	if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("li.card").length`)); err != nil || n != 1 {
		t.Errorf("conflict cards = %d, %v; want 1", n, err)
	}
	b.waitText("li.card h2", "Cyd Lovelace")
	b.shot("errors-conflicts")

	b.open("/admin/t/acme/p/salesforce/errors")
	b.do(chromedp.SendKeys(chromedp.ID("q"), "Dee"), chromedp.Click(chromedp.CSS(`form.search button`)))
	b.waitText("#totals", "Showing 1 that match")
	b.waitText("li.card h2", "Dee Lovelace")
	href, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("export-csv"), "href"))
	if err != nil || !strings.HasSuffix(href.Value, "/errors.csv?q=Dee") {
		t.Errorf("CSV link = %+v, %v; want the search kept", href, err)
	}
	b.shot("errors-search")

	b.open("/admin/t/acme/")
	b.waitText("#count-failed-writes", "2")
	b.do(chromedp.Click(chromedp.ID("count-failed-writes")))
	b.waitText("h1", "Failed writes")
	b.waitText("table.failed-writes", "INACTIVE_OWNER_OR_USER")
	b.shot("failed-writes")
}
