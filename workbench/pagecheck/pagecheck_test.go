package pagecheck_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ownersync/ownersync/workbench/pagecheck"
)

const bad = `<!DOCTYPE html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"></head><body style="margin:0">
<div style="width:500px">wide</div>
<input id="q" type="text">
<label>Name <input id="name"></label>
<input id="hidden" type="hidden">
<input id="aria" aria-label="Search">
<img id="logo" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<img id="deco" alt="" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<a id="jump" href="#" tabindex="2">first</a>
<p id="grey" style="color:#9e9e9e">pale grey text</p>
<div style="background:#1565c0"><p id="ok-on-blue" style="color:#fff">white on blue</p></div>
<h1 id="big" style="color:#767676;font-size:32px">large grey heading</h1>
</body></html>`

const good = `<!DOCTYPE html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<label for="q">Search</label> <input id="q"><img alt="logo" src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><p style="color:#616161">readable</p></body></html>`

// TestCheckFindsEachProblem: every kind of problem is found on a page made of them, and a
// clean page has none.
func TestCheckFindsEachProblem(t *testing.T) {
	ctx := pagecheck.Tab(t)
	page := bad
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, page) }))
	defer srv.Close()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 700, chromedp.EmulateScale(1), chromedp.EmulateMobile), chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	f, err := pagecheck.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.Problems(), "\n")
	for _, want := range []string{
		"scrolls sideways: scrollWidth 500 > clientWidth 375",
		"form field without a label: input#q",
		"image without alt: img#logo",
		"positive tabindex (breaks the focus order): a#jump",
		"contrast 2.68:1 < 4.5:1 for rgb(158, 158, 158) on rgb(255, 255, 255): p#grey",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q", want)
		}
	}
	for _, notWanted := range []string{"input#name", "input#hidden", "input#aria", "img#deco", "ok-on-blue", "h1#big"} {
		if strings.Contains(got, notWanted) {
			t.Errorf("problems name %s, which is fine", notWanted)
		}
	}
	if t.Failed() {
		t.Logf("problems:\n%s", got)
	}
	page = good
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if f, err := pagecheck.Check(ctx); err != nil || len(f.Problems()) > 0 {
		t.Errorf("a clean page: %v, %v", f.Problems(), err)
	}
}
