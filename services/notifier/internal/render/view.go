package render

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ownersync/ownersync/libs/provider"
)

// The view model below is what the templates see. It holds only plain Go values, already cleaned
// of control characters and truncated, so templates never reach into proto messages and the same
// data feeds the HTML and the plain-text parts.

// reportView is one Sync Users run as the email shows it.
type reportView struct {
	TenantID   string
	TenantName string
	RunID      string
	Trigger    string
	DryRun     bool
	Started    stamp
	Finished   stamp
	Duration   string
	Outcome    outcome
	Providers  []providerView
	// ProviderNames joins the providers' names for headings ("Salesforce + HubSpot").
	ProviderNames string
	Totals        counts
	Links         reportLinks
}

type reportLinks struct {
	Console string // the tenant's page in the admin console
	Run     string // the run in the admin API (full change list)
}

// outcome is the run's overall result in words and colour.
type outcome struct {
	Label string // "succeeded", "completed with 3 errors", "failed", …
	Color string
	OK    bool
}

type providerView struct {
	Key     string // "salesforce"
	Name    string // "Salesforce"
	Failure string
	Counts  counts
	Bars    []bar

	Changes      []changeView
	ChangesTotal int
	ChangesMore  int

	Errors      []errorView
	ErrorsTotal int
	ErrorsMore  int

	// NotMappable are the CRM users who are not people (integration, automated, Chatter-only).
	NotMappable      []notMappableView
	NotMappableTotal int
	NotMappableMore  int
	NotMappableURL   string // admin console: the run's page, at the provider's not mappable list

	ErrorsURL   string // admin console: every error of this provider
	MappingsURL string // admin console: the provider's mappings
}

type counts struct {
	Mapped, Created, Remapped, Removed, Conflicts, Errors, UnmappedPlatform, UnmappedCRM, Pulled, NotMappable int
}

func (c *counts) add(o counts) {
	c.Mapped += o.Mapped
	c.Created += o.Created
	c.Remapped += o.Remapped
	c.Removed += o.Removed
	c.Conflicts += o.Conflicts
	c.Errors += o.Errors
	c.UnmappedPlatform += o.UnmappedPlatform
	c.UnmappedCRM += o.UnmappedCRM
	c.Pulled += o.Pulled
	c.NotMappable += o.NotMappable
}

// bar is one row of the visual summary: a label, a value and a width relative to the largest value.
type bar struct {
	Label string
	Value int
	Pct   int    // 0–100, width of the coloured cell
	Rest  int    // 100-Pct, width of the empty cell
	Color string // a fixed colour from this package, never input
	Text  string // the bar for the plain-text part, e.g. "#######"
}

type changeView struct {
	Kind       string // "created", "remapped", …
	Color      string
	Name       string
	Email      string
	PlatformID string
	CRMID      string
	PreviousID string
	Reason     string
	// CRMURL and PreviousURL are the CRM users' pages in the CRM, when known.
	CRMURL      string
	PreviousURL string
}

// notMappableView is a CRM user who is not a person, with the reason.
type notMappableView struct {
	Name     string
	Email    string
	CRMID    string
	UserType string
	License  string
	Reason   string
	CRMURL   string // the user's page in the CRM, when known
}

type errorView struct {
	// Kind is "error" or "conflict": what the problem counts as in the provider's counts.
	Kind       string
	Name       string
	Code       string
	Message    string
	Fix        string
	Email      string
	PlatformID string
	CRMID      string
	CRMURL     string // the CRM user's page in the CRM, when known
}

// alertsView is one alert digest.
type alertsView struct {
	TenantID   string
	TenantName string
	Since      stamp
	Until      stamp
	Alerts     []alertView
	Total      int
	More       int
	Critical   int
	Warning    int
	Links      alertLinks
}

type alertLinks struct {
	Console string
	Errors  string
}

type alertView struct {
	Time     stamp
	Severity string
	Color    string
	Kind     string
	Provider string
	Summary  string
	Details  string
	Record   string
	Payload  string
	EventID  string
}

// Colours used by the templates; fixed here so no input ever reaches a style attribute.
const (
	colorGreen  = "#2e7d32"
	colorBlue   = "#1565c0"
	colorPurple = "#6a1b9a"
	colorGrey   = "#757575"
	colorAmber  = "#b45309" // 5:1 on white (WCAG AA for small bold text); #ef6c00 was 3.1:1
	colorRed    = "#c62828"
	colorTeal   = "#00838f"
)

// Field limits: CRM data is untrusted and may be arbitrarily long.
const (
	maxField   = 300
	maxText    = 2000
	maxPayload = 2000
	textBarLen = 30
)

// clean makes an untrusted single-line value safe to show: control and bidirectional-override
// characters become spaces or disappear, runs of white space collapse, and the value is cut at max
// runes with an ellipsis. Escaping for HTML is left to html/template.
func clean(s string, max int) string {
	return truncate(strings.Join(strings.Fields(stripControls(s, false)), " "), max)
}

// cleanBlock is clean for multi-line values (details, payload excerpts): newlines and tabs stay.
func cleanBlock(s string, max int) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return truncate(strings.TrimRight(stripControls(s, true), " \n\t"), max)
}

func stripControls(s string, keepLines bool) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case keepLines && (r == '\n' || r == '\t'):
			return r
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case isBidiControl(r):
			return -1
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return ' '
		}
		return r
	}, s)
}

// isBidiControl reports the characters that reorder displayed text (used to disguise names and
// links, "Trojan Source").
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') || r == '\u200E' || r == '\u200F' || r == '\u061C'
}

func truncate(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// bars scales values to the largest one; a non-zero value always gets at least 1%.
func bars(items []bar) []bar {
	largest := 0
	for _, b := range items {
		largest = max(largest, b.Value)
	}
	for i := range items {
		b := &items[i]
		if largest > 0 && b.Value > 0 {
			b.Pct = max(1, b.Value*100/largest)
		}
		b.Rest = 100 - b.Pct
		n := 0
		if largest > 0 && b.Value > 0 {
			n = max(1, b.Value*textBarLen/largest)
		}
		b.Text = strings.Repeat("#", n)
	}
	return items
}

func summaryBars(c counts) []bar {
	return bars([]bar{
		{Label: "Mapped", Value: c.Mapped, Color: colorGreen},
		{Label: "Newly mapped", Value: c.Created, Color: colorBlue},
		{Label: "Remapped", Value: c.Remapped, Color: colorPurple},
		{Label: "Removed", Value: c.Removed, Color: colorGrey},
		{Label: "Conflicts", Value: c.Conflicts, Color: colorAmber},
		{Label: "Errors", Value: c.Errors, Color: colorRed},
		{Label: "Unmapped platform users", Value: c.UnmappedPlatform, Color: colorTeal},
		{Label: "Unmapped CRM users", Value: c.UnmappedCRM, Color: colorTeal},
	})
}

func outcomeOf(v *reportView) outcome {
	failed := 0
	for _, p := range v.Providers {
		if p.Failure != "" {
			failed++
		}
	}
	n := len(v.Providers)
	switch {
	case n == 0:
		return outcome{Label: "synced no provider", Color: colorGrey}
	case failed == n:
		return outcome{Label: "failed", Color: colorRed}
	case failed > 0:
		return outcome{Label: "partly failed", Color: colorRed}
	}
	var problems []string
	if e := v.Totals.Errors; e > 0 {
		problems = append(problems, plural(e, "error", "errors"))
	}
	if c := v.Totals.Conflicts; c > 0 {
		problems = append(problems, plural(c, "conflict", "conflicts"))
	}
	if len(problems) > 0 {
		return outcome{Label: "completed with " + strings.Join(problems, " and "), Color: colorAmber}
	}
	return outcome{Label: "succeeded", Color: colorGreen, OK: true}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func providerName(key string) string {
	switch provider.Provider(key) {
	case provider.Salesforce:
		return "Salesforce"
	case provider.HubSpot:
		return "HubSpot"
	case "":
		return "Unknown provider"
	}
	return key
}

// stamp is a time as the email shows it: in the tenant's time zone, with the UTC time for the
// HTML part's hover (title) and for the text part when the zone is not UTC.
type stamp struct {
	Local string // in the tenant's zone, "Sun, 22 Nov 2026 10:30:00 CET"; "unknown" for a zero time
	UTC   string // "Sun, 22 Nov 2026 09:30:00 UTC"; empty for a zero time
	ISO   string // RFC 3339 in UTC, for <time datetime>
	// Clock is the UTC time of day ("09:30:00 UTC") when the zone is not UTC, for the text part.
	Clock string
}

// String is the local time (what templates print by default).
func (s stamp) String() string { return s.Local }

// Text is the local time followed by the UTC time of day when they differ, for the text part.
func (s stamp) Text() string {
	if s.Clock == "" {
		return s.Local
	}
	return s.Local + " (" + s.Clock + ")"
}

func formatTime(t time.Time, loc *time.Location) stamp {
	if t.IsZero() {
		return stamp{Local: "unknown"}
	}
	u := t.UTC()
	s := stamp{Local: t.In(loc).Format("Mon, 02 Jan 2006 15:04:05 MST"), UTC: u.Format("Mon, 02 Jan 2006 15:04:05 UTC"), ISO: u.Format(time.RFC3339)}
	if loc != time.UTC && loc.String() != "UTC" {
		s.Clock = u.Format("15:04:05 UTC")
	}
	return s
}

func formatDuration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() || end.Before(start) {
		return "unknown"
	}
	d := end.Sub(start)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// link joins the admin base URL with path segments (each escaped) and a query; empty without a base
// or when the base is not an absolute http(s) URL.
func link(base string, query url.Values, segments ...string) string {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	p := strings.TrimRight(u.Path, "/")
	raw := strings.TrimRight(u.EscapedPath(), "/")
	for _, s := range segments {
		p += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	u.Path, u.RawPath = p, raw
	u.RawQuery = query.Encode()
	u.Fragment = ""
	return u.String()
}

func sortedAlerts(in []alertView, times []time.Time) []alertView {
	idx := make([]int, len(in))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return times[idx[a]].Before(times[idx[b]]) })
	out := make([]alertView, len(in))
	for i, j := range idx {
		out[i] = in[j]
	}
	return out
}
