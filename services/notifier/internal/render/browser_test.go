package render

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ownersync/ownersync/workbench/pagecheck"
)

// browserTab opens a Chromium tab for a test (pagecheck.Tab: a missing Chromium fails it unless
// OWNERSYNC_SKIP_BROWSER_TESTS=1, as for the console's browser tests).
func browserTab(t *testing.T) context.Context { return pagecheck.Tab(t) }

// screenshotDir is <repository>/screenshots, where the console's browser tests save theirs.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			out := filepath.Join(dir, "screenshots")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			return out
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = parent
	}
}

// TestReportEmailInABrowser renders the sample report's HTML part in Chromium at an email
// client's reading-pane width (640 px) and a phone's (375 px): the reason of each change gets
// most of the table's width instead of wrapping one word per line, and the email passes
// pagecheck (no sideways scrolling, no unlabelled fields or images without alt, text contrast
// at least 4.5:1). Screenshots go with the console's (issue 16).
func TestReportEmailInABrowser(t *testing.T) {
	r := SampleReport(t0)
	r.AdminUrl = "https://admin.example.com"
	e, err := Report(r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, e.HTML)
	}))
	defer srv.Close()
	var reasons []string
	for _, p := range r.GetProviders() {
		for _, ch := range p.GetChanges() {
			reasons = append(reasons, ch.GetReason())
		}
	}
	ctx := browserTab(t)
	shots := screenshotDir(t)
	for _, width := range []int64{640, 375} {
		t.Run(fmt.Sprintf("%dpx", width), func(t *testing.T) {
			var opts []chromedp.EmulateViewportOption
			if width < 600 {
				opts = append(opts, chromedp.EmulateScale(1), chromedp.EmulateMobile)
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800, opts...), chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			for _, reason := range reasons {
				// The reason's own cell (the smallest one holding exactly its text) against the table.
				js := fmt.Sprintf(`(() => {
					const cells = [...document.querySelectorAll("td")].filter(td => td.textContent.trim() === %q);
					if (cells.length === 0) return -1;
					const td = cells[cells.length - 1];
					return td.getBoundingClientRect().width / td.closest("table").getBoundingClientRect().width;
				})()`, reason)
				share, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
				if err != nil {
					t.Fatal(err)
				}
				if share < 0 {
					t.Fatalf("no cell holds the reason %q", reason)
				}
				if share < 0.6 {
					t.Errorf("the reason %q has %.0f%% of the table's width, want at least 60%% (it wraps word by word)", reason, share*100)
				}
			}
			auditAndShoot(t, ctx, filepath.Join(shots, fmt.Sprintf("email-report-%dpx.png", width)))
		})
	}
}

// TestAlertDigestInABrowser: the alert digest passes pagecheck at 640 and 375 px.
func TestAlertDigestInABrowser(t *testing.T) {
	e, err := Alerts("demo", SampleAlerts(t0), Window{Since: t0.Add(-time.Hour), Until: t0}, Options{AdminURL: "https://admin.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, e.HTML)
	}))
	defer srv.Close()
	ctx := browserTab(t)
	shots := screenshotDir(t)
	for _, width := range []int64{640, 375} {
		t.Run(fmt.Sprintf("%dpx", width), func(t *testing.T) {
			var opts []chromedp.EmulateViewportOption
			if width < 600 {
				opts = append(opts, chromedp.EmulateScale(1), chromedp.EmulateMobile)
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800, opts...), chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			auditAndShoot(t, ctx, filepath.Join(shots, fmt.Sprintf("email-alerts-%dpx.png", width)))
		})
	}
}

// auditAndShoot runs pagecheck on the open page, fails the test on each problem and saves a
// full-page screenshot.
func auditAndShoot(t *testing.T, ctx context.Context, shot string) {
	t.Helper()
	f, err := pagecheck.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Problems() {
		t.Error(p)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", shot)
}
