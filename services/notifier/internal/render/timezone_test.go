package render

import (
	"strings"
	"testing"
	"time"
)

// TestTimesInTheTenantsTimeZone: the report and the alert digest show times in the tenant's time
// zone (Options.Location), with the UTC time on hover in the HTML part (<time datetime title>) and
// beside it in the text part (issue 16).
func TestTimesInTheTenantsTimeZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Report(report(false), Options{Location: berlin})
	if err != nil {
		t.Fatal(err)
	}
	wantHTML := `<time datetime="2026-11-22T09:30:00Z" title="Sun, 22 Nov 2026 09:30:00 UTC">Sun, 22 Nov 2026 10:30:00 CET</time>`
	if !strings.Contains(e.HTML, wantHTML) {
		t.Errorf("report HTML lacks %s", wantHTML)
	}
	if want := "Started:  Sun, 22 Nov 2026 10:30:00 CET (09:30:00 UTC)"; !strings.Contains(e.Text, want) {
		t.Errorf("report text lacks %q:\n%s", want, e.Text)
	}
	d, err := Alerts("acme", SampleAlerts(t0), Window{Since: t0.Add(-time.Hour), Until: t0}, Options{Location: berlin})
	if err != nil {
		t.Fatal(err)
	}
	if want := `title="Sun, 22 Nov 2026 09:30:00 UTC">Sun, 22 Nov 2026 10:30:00 CET</time>`; !strings.Contains(d.HTML, want) {
		t.Errorf("digest HTML lacks %s", want)
	}
	if want := "10:30:00 CET (09:30:00 UTC)"; !strings.Contains(d.Text, want) {
		t.Errorf("digest text lacks %q", want)
	}
	// In UTC the text part does not repeat the time.
	u, err := Report(report(false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u.Text, "Started:  Sun, 22 Nov 2026 09:30:00 UTC\n") {
		t.Errorf("UTC report text:\n%s", u.Text)
	}
}
