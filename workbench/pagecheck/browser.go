package pagecheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
)

// ErrNoChromium is returned by Browser when Debian's Chromium is not installed.
var ErrNoChromium = errors.New("chromium is not installed (Debian: apt-get install -y chromium; make test installs it as root)")

// ChromiumPath finds Debian's Chromium (package chromium); empty when it is not installed.
func ChromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// Browser starts one headless Chromium with its profile in dir, at laptop size; tests open tabs
// in it with chromedp.NewContext. cancel stops it.
func Browser(dir string) (ctx context.Context, cancel context.CancelFunc, err error) {
	exe := ChromiumPath()
	if exe == "" {
		return nil, nil, ErrNoChromium
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.WindowSize(1280, 800),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	cancel = func() { cancelBrowser(); cancelAlloc() }
	if err := chromedp.Do(bctx); err != nil {
		cancel()
		return nil, nil, err
	}
	return bctx, cancel, nil
}

// TB is the part of testing.TB that Tab needs (pagecheck itself does not import testing).
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Skip(args ...any)
	Fatalf(format string, args ...any)
}

// SkipEnv is the one explicit way to run the suite without Chromium: with it set to 1 and
// Chromium missing, browser tests skip saying so; without it a missing Chromium fails them
// (scripts/ensure-chromium.sh installs it for make test).
const SkipEnv = "OWNERSYNC_SKIP_BROWSER_TESTS"

// SkipMessage is what a browser test says when it skips under SkipEnv.
const SkipMessage = SkipEnv + "=1 and chromium is not installed: browser test skipped"

// SkipAllowed reports whether a missing Chromium (err from Browser) may skip browser tests.
func SkipAllowed(err error) bool {
	return errors.Is(err, ErrNoChromium) && os.Getenv(SkipEnv) == "1"
}

// Tab starts a Chromium for one test and returns a context with a 45 s budget for its tab; a
// missing Chromium fails the test unless SkipAllowed.
func Tab(t TB) context.Context {
	t.Helper()
	bctx, cancel, err := Browser(t.TempDir())
	if SkipAllowed(err) {
		t.Skip(SkipMessage)
	}
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(bctx, 45*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}
