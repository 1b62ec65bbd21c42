package pagecheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"

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
