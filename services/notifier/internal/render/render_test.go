package render

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"
	"google.golang.org/protobuf/types/known/timestamppb"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0 = time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	sf = ownersyncv1.Provider_PROVIDER_SALESFORCE
	hs = ownersyncv1.Provider_PROVIDER_HUBSPOT
)

func report(dry bool, providers ...*ownersyncv1.ProviderReport) *ownersyncv1.SyncReport {
	return &ownersyncv1.SyncReport{
		Meta:       &ownersyncv1.EventMeta{EventId: "report:run-7", TenantId: "acme"},
		RunId:      "run-7",
		Trigger:    ownersyncv1.SyncTrigger_SYNC_TRIGGER_SCHEDULE,
		Providers:  providers,
		StartedAt:  timestamppb.New(t0),
		FinishedAt: timestamppb.New(t0.Add(3 * time.Second)),
		DryRun:     dry,
		TenantName: "Acme Corp",
		AdminUrl:   "https://admin.example.com",
	}
}

func changes(n int) []*ownersyncv1.SyncChange {
	out := make([]*ownersyncv1.SyncChange, n)
	for i := range out {
		out[i] = &ownersyncv1.SyncChange{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED,
			PlatformUserId: fmt.Sprintf("u-%d", i), CrmUserId: fmt.Sprintf("005%015d", i),
			Email: fmt.Sprintf("user%d@example.com", i), Name: fmt.Sprintf("User %d", i), Reason: "matched by email"}
	}
	return out
}

func syncErrors(n int) []*ownersyncv1.SyncError {
	out := make([]*ownersyncv1.SyncError, n)
	for i := range out {
		out[i] = &ownersyncv1.SyncError{Code: "crm_user_not_found", PlatformUserId: fmt.Sprintf("u-%d", i),
			Email: fmt.Sprintf("gone%d@example.com", i), Message: fmt.Sprintf("No Salesforce user has the email gone%d@example.com.", i),
			Fix: "Create the user in Salesforce or map it manually."}
	}
	return out
}

// contains/lacks are substrings the HTML and the text part must (not) hold.
type expect struct {
	subject   string
	contains  []string // in both parts
	lacks     []string // in neither part
	htmlOnly  []string // raw HTML
	textOnly  []string
	changes   int // change rows in the HTML
	errorRows int // error rows in the HTML
}

func TestReport(t *testing.T) {
	tests := []struct {
		name   string
		report *ownersyncv1.SyncReport
		opts   Options
		want   expect
	}{
		{
			name:   "no provider",
			report: report(false),
			want: expect{
				subject:  "[ownersync] Acme Corp: no provider sync synced no provider",
				contains: []string{"No provider was synced in this run", "run-7", "schedule", "Sun, 22 Nov 2026 09:30:00 UTC", "(3s)"},
				lacks:    []string{"Dry run", "DRY RUN", "Errors ("},
			},
		},
		{
			name:   "empty provider succeeded",
			report: report(false, &ownersyncv1.ProviderReport{Provider: sf, Counts: &ownersyncv1.SyncCounts{}}),
			want: expect{
				subject:  "[ownersync] Acme Corp: Salesforce sync succeeded (0 mapped, 0 new, 0 remapped, 0 removed)",
				contains: []string{"Salesforce", "Mapped", "Unmapped CRM users", "https://admin.example.com/admin/t/acme/mappings?provider=salesforce"},
				lacks:    []string{"Changes (", "Errors (", "failed"},
				textOnly: []string{"Mapped                         0  \n", "Unmapped platform users        0  \n"},
			},
		},
		{
			name: "large report capped",
			report: report(false, &ownersyncv1.ProviderReport{Provider: sf,
				Counts:  &ownersyncv1.SyncCounts{Mapped: 5000, Created: 1200, Errors: 300, UnmappedPlatform: 40, Pulled: 5100},
				Changes: changes(500), ChangesTotal: 1200, Errors: syncErrors(300), ErrorsTotal: 300}),
			opts: Options{MaxChanges: 50, MaxErrors: 100},
			want: expect{
				subject: "[ownersync] Acme Corp: Salesforce sync completed with 300 errors (5000 mapped, 1200 new, 0 remapped, 0 removed)",
				contains: []string{"Changes (1200)", "Errors (300)", "User 49", "gone99@example.com",
					"and 1150 more (1200 in total)", "and 200 more (300 in total)",
					"https://admin.example.com/admin/t/acme/runs/run-7",
					"https://admin.example.com/admin/t/acme/errors?provider=salesforce"},
				lacks:     []string{"User 50", "gone100@example.com"},
				textOnly:  []string{"Mapped                      5000  ##############################\n", "Newly mapped                1200  #######\n"},
				changes:   50,
				errorRows: 100,
			},
		},
		{
			name: "dry run",
			report: report(true, &ownersyncv1.ProviderReport{Provider: hs,
				Counts: &ownersyncv1.SyncCounts{Mapped: 3, Created: 3}, Changes: changes(3), ChangesTotal: 3}),
			want: expect{
				subject:  "[ownersync] DRY RUN: Acme Corp: HubSpot sync succeeded (3 mapped, 3 new, 0 remapped, 0 removed)",
				htmlOnly: []string{"<strong>Dry run:</strong> nothing was written"},
				textOnly: []string{"DRY RUN: nothing was written"},
				lacks:    []string{"more ("},
				changes:  3,
			},
		},
		{
			name: "errors only",
			report: report(false, &ownersyncv1.ProviderReport{Provider: sf,
				Counts: &ownersyncv1.SyncCounts{Errors: 2, Conflicts: 1}, Errors: syncErrors(2), ErrorsTotal: 2}),
			want: expect{
				subject:   "[ownersync] Acme Corp: Salesforce sync completed with 2 errors and 1 conflict (0 mapped, 0 new, 0 remapped, 0 removed)",
				contains:  []string{"Errors (2)", "No Salesforce user has the email gone1@example.com.", "Create the user in Salesforce or map it manually.", "crm_user_not_found"},
				lacks:     []string{"Changes (", "more ("},
				textOnly:  []string{"  Fix: Create the user in Salesforce or map it manually.\n"},
				errorRows: 2,
			},
		},
		{
			name: "errors counted but not listed",
			report: report(false, &ownersyncv1.ProviderReport{Provider: sf,
				Counts: &ownersyncv1.SyncCounts{Errors: 4}, ErrorsTotal: 4}),
			want: expect{
				subject:  "[ownersync] Acme Corp: Salesforce sync completed with 4 errors (0 mapped, 0 new, 0 remapped, 0 removed)",
				contains: []string{"4 errors.", "https://admin.example.com/admin/t/acme/errors?provider=salesforce"},
			},
		},
		{
			name: "failed provider",
			report: report(false, &ownersyncv1.ProviderReport{Provider: sf, Counts: &ownersyncv1.SyncCounts{},
				Failure: "POST /services/oauth2/token: 400 invalid_grant"}),
			want: expect{
				subject:  "[ownersync] Acme Corp: Salesforce sync failed",
				contains: []string{"Pulling users from Salesforce failed.", "Nothing was changed for Salesforce in this run.", "400 invalid_grant"},
			},
		},
		{
			name: "one of two providers failed",
			report: report(false,
				&ownersyncv1.ProviderReport{Provider: sf, Counts: &ownersyncv1.SyncCounts{Mapped: 10}},
				&ownersyncv1.ProviderReport{Provider: hs, Failure: "GET /crm/v3/owners: 401"}),
			want: expect{
				subject:  "[ownersync] Acme Corp: Salesforce + HubSpot sync partly failed (10 mapped, 0 new, 0 remapped, 0 removed)",
				contains: []string{"Pulling users from HubSpot failed.", "GET /crm/v3/owners: 401"},
				lacks:    []string{"Pulling users from Salesforce failed."},
			},
		},
		{
			name: "no admin url",
			report: func() *ownersyncv1.SyncReport {
				r := report(false, &ownersyncv1.ProviderReport{Provider: sf, Counts: &ownersyncv1.SyncCounts{Errors: 150},
					Errors: syncErrors(150), ErrorsTotal: 150})
				r.AdminUrl = ""
				return r
			}(),
			want: expect{
				contains:  []string{"and 50 more (150 in total)"},
				lacks:     []string{"http://", "https://", "href="},
				errorRows: 100,
				subject:   "[ownersync] Acme Corp: Salesforce sync completed with 150 errors (0 mapped, 0 new, 0 remapped, 0 removed)",
			},
		},
		{
			name: "admin url from options and local time",
			report: func() *ownersyncv1.SyncReport {
				r := report(false)
				r.AdminUrl, r.TenantName = "", ""
				return r
			}(),
			opts: Options{AdminURL: "http://localhost:8081/prefix/", TenantName: "Acme (options)", Location: time.FixedZone("CET", 3600)},
			want: expect{
				subject:  "[ownersync] Acme (options): no provider sync synced no provider",
				contains: []string{"http://localhost:8081/prefix/admin/t/acme/", "Sun, 22 Nov 2026 10:30:00 CET"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.To = []string{"admin@acme.example"}
			e, err := Report(tt.report, opts)
			if err != nil {
				t.Fatalf("Report: %v", err)
			}
			checkEmail(t, e, tt.want)
			if diff := cmp.Diff([]string{"admin@acme.example"}, e.To); diff != "" {
				t.Errorf("To (-want +got):\n%s", diff)
			}
			if got, want := e.MessageID, "report.run-7.acme@ownersync.local"; got != want {
				t.Errorf("MessageID = %q, want %q", got, want)
			}
			if got, want := e.Headers["X-Ownersync-Dry-Run"] == "true", tt.report.GetDryRun(); got != want {
				t.Errorf("dry-run header = %v, want %v", got, want)
			}
		})
	}
}

func checkEmail(t *testing.T, e Email, want expect) {
	t.Helper()
	if e.Subject != want.subject {
		t.Errorf("Subject:\n got %q\nwant %q", e.Subject, want.subject)
	}
	for _, s := range want.contains {
		if !strings.Contains(e.HTML, htmlEscapeForCheck(s)) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	for _, s := range want.htmlOnly { // raw HTML
		if !strings.Contains(e.HTML, s) {
			t.Errorf("HTML lacks %q", s)
		}
	}
	for _, s := range append(append([]string(nil), want.contains...), want.textOnly...) {
		if !strings.Contains(e.Text, s) {
			t.Errorf("text lacks %q", s)
		}
	}
	for _, s := range want.lacks {
		if strings.Contains(e.HTML, htmlEscapeForCheck(s)) || strings.Contains(e.Text, s) {
			t.Errorf("email contains %q", s)
		}
	}
	if got := strings.Count(e.HTML, `font-weight:bold;">newly mapped</span>`); got != want.changes {
		t.Errorf("HTML lists %d changes, want %d", got, want.changes)
	}
	if got := strings.Count(e.HTML, "border-left:3px solid #c62828"); got != want.errorRows {
		t.Errorf("HTML lists %d errors, want %d", got, want.errorRows)
	}
	checkSafeHTML(t, e.HTML)
}

// htmlEscapeForCheck turns plain expectations into what html/template writes for them.
func htmlEscapeForCheck(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&#39;", `"`, "&#34;", "<", "&lt;", ">", "&gt;", "+", "&#43;").Replace(s)
}

// checkSafeHTML parses the document and fails on anything a mail client would execute or fetch:
// script/iframe/object elements, event-handler attributes, non-http(s) links, remote images.
func checkSafeHTML(t *testing.T, doc string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(doc))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		switch tok.Data {
		case "script", "iframe", "object", "embed", "img", "link", "form", "svg", "style":
			t.Errorf("HTML has a <%s> element", tok.Data)
		}
		for _, a := range tok.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("HTML has event handler %s=%q on <%s>", a.Key, a.Val, tok.Data)
			}
			if a.Key == "href" && !strings.HasPrefix(a.Val, "https://") && !strings.HasPrefix(a.Val, "http://") {
				t.Errorf("HTML links to %q", a.Val)
			}
			if a.Key == "style" && strings.Contains(strings.ToLower(a.Val), "url(") {
				t.Errorf("HTML style loads %q", a.Val)
			}
		}
	}
}

func TestReportEscapesHostileInput(t *testing.T) {
	hostile := []string{
		`<script>alert(1)</script>`,
		`"><img src=x onerror=alert(2)>`,
		`' onmouseover='alert(3)`,
		`</td></tr></table><a href="javascript:alert(4)">click</a>`,
	}
	var chs []*ownersyncv1.SyncChange
	var errs []*ownersyncv1.SyncError
	for i, h := range hostile {
		chs = append(chs, &ownersyncv1.SyncChange{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_REMAPPED,
			Name: h, Email: fmt.Sprintf(`"%s"@evil.example`, h), PlatformUserId: h, CrmUserId: h, PreviousCrmUserId: h, Reason: h})
		errs = append(errs, &ownersyncv1.SyncError{Code: h, Email: h, PlatformUserId: h, CrmUserId: h, Message: fmt.Sprintf("%d %s", i, h), Fix: h})
	}
	r := report(false, &ownersyncv1.ProviderReport{Provider: sf, Counts: &ownersyncv1.SyncCounts{Errors: 4},
		Changes: chs, ChangesTotal: 4, Errors: errs, ErrorsTotal: 4, Failure: hostile[0]})
	r.TenantName = "Evil\r\nBcc: victim@example.com <b>\u202Egnp.exe"
	r.RunId = `run"/><script>x</script>`
	r.Meta.TenantId = "acme"
	r.AdminUrl = "javascript:alert(5)//"

	e, err := Report(r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkSafeHTML(t, e.HTML)
	for _, h := range hostile {
		if strings.Contains(e.HTML, h) {
			t.Errorf("HTML contains %q unescaped", h)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", "&#39; onmouseover=&#39;alert(3)"} {
		if !strings.Contains(e.HTML, want) {
			t.Errorf("HTML lacks escaped %q", want)
		}
	}
	if strings.ContainsAny(e.Subject, "\r\n\u202E") {
		t.Errorf("subject %q holds line breaks or a bidi override", e.Subject)
	}
	if want := "[ownersync] Evil Bcc: victim@example.com <b>gnp.exe: Salesforce sync failed"; e.Subject != want {
		t.Errorf("Subject = %q, want %q", e.Subject, want)
	}
	if strings.Contains(e.HTML, "\u202E") || strings.Contains(e.Text, "\u202E") {
		t.Error("bidi override survived")
	}
	if strings.Contains(e.Text, "\r") {
		t.Error("text part holds a carriage return from input")
	}
	// The text part shows the values as they are (no HTML there) but on one line each.
	if !strings.Contains(e.Text, "- remapped: <script>alert(1)</script> <\"<script>alert(1)</script>\"@evil.example>") {
		t.Errorf("text part lost the hostile name verbatim:\n%s", e.Text)
	}
	if ok, _ := regexp.MatchString(`^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+$`, e.MessageID); !ok {
		t.Errorf("MessageID %q has unsafe characters", e.MessageID)
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{name: "plain", in: "Ada Lovelace", max: 20, want: "Ada Lovelace"},
		{name: "line breaks collapse", in: "a\r\nb\n\tc  d", max: 20, want: "a b c d"},
		{name: "controls", in: "a\x00b\x1bc\x7fd", max: 20, want: "a b c d"},
		{name: "bidi removed", in: "abc\u202Efdp.exe\u2066x\u2069", max: 20, want: "abcfdp.exex"},
		{name: "line separators", in: "a\u2028b\u2029c", max: 20, want: "a b c"},
		{name: "truncated", in: "abcdefghij", max: 5, want: "abcd…"},
		{name: "invalid utf8", in: "a\xffb", max: 5, want: "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in, tt.max); got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got, want := cleanBlock("line 1\r\nline 2\n\tindented\x00\u202E\n\n", 100), "line 1\nline 2\n\tindented"; got != want {
		t.Errorf("cleanBlock = %q, want %q", got, want)
	}
}

func TestMessageID(t *testing.T) {
	tests := []struct {
		kind, id, tenant, domain, want string
	}{
		{"report", "run-7", "acme", "ownersync.local", "report.run-7.acme@ownersync.local"},
		{"report", "01J8ZQ.X_y", "t1", "mail.example.com", "report.01J8ZQ.X_y.t1@mail.example.com"},
		{"report", "run/7 <x>", "acme", "ownersync.local", "report.run_7__x_-b550f9e00127.acme@ownersync.local"},
	}
	for _, tt := range tests {
		if got := messageID(tt.kind, tt.id, tt.tenant, tt.domain); got != tt.want {
			t.Errorf("messageID(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if a, b := messageID("report", "run/7", "t", "d"), messageID("report", "run:7", "t", "d"); a == b {
		t.Errorf("distinct ids share Message-ID %q", a)
	}
}

func TestBars(t *testing.T) {
	got := bars([]bar{{Label: "a", Value: 200}, {Label: "b", Value: 1}, {Label: "c", Value: 0}, {Label: "d", Value: 100}})
	want := []bar{
		{Label: "a", Value: 200, Pct: 100, Rest: 0, Text: strings.Repeat("#", 30)},
		{Label: "b", Value: 1, Pct: 1, Rest: 99, Text: "#"},
		{Label: "c", Value: 0, Pct: 0, Rest: 100, Text: ""},
		{Label: "d", Value: 100, Pct: 50, Rest: 50, Text: strings.Repeat("#", 15)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bars (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bar{{Label: "z", Rest: 100}}, bars([]bar{{Label: "z"}})); diff != "" {
		t.Errorf("all-zero bars (-want +got):\n%s", diff)
	}
}

func TestLink(t *testing.T) {
	tests := []struct {
		base string
		segs []string
		want string
	}{
		{"https://admin.example.com", []string{"v1", "tenants", "acme", "errors"}, "https://admin.example.com/v1/tenants/acme/errors"},
		{"https://admin.example.com/base/", []string{"admin", "t", "a b/c", ""}, "https://admin.example.com/base/admin/t/a%20b%2Fc/"},
		{"javascript:alert(1)", []string{"x"}, ""},
		{"/relative", []string{"x"}, ""},
		{"", []string{"x"}, ""},
	}
	for _, tt := range tests {
		if got := link(tt.base, nil, tt.segs...); got != tt.want {
			t.Errorf("link(%q, %q) = %q, want %q", tt.base, tt.segs, got, tt.want)
		}
	}
}

func TestAlerts(t *testing.T) {
	now := t0
	alerts := SampleAlerts(now)
	// Arrival order differs from occurrence order; the digest lists oldest first.
	shuffled := []*ownersyncv1.Alert{alerts[2], alerts[0], alerts[3], alerts[1]}
	e, err := Alerts("demo", shuffled, Window{Since: now.Add(-time.Hour), Until: now}, Options{To: []string{"ops@demo.example"}, TenantName: "Demo Company", AdminURL: "http://localhost:8081"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[ownersync] Demo Company: 4 alerts (1 critical): Salesforce refused an owner change: INACTIVE_OWNER_OR_USER, …"; e.Subject != want {
		t.Errorf("Subject:\n got %q\nwant %q", e.Subject, want)
	}
	order := []string{"INACTIVE_OWNER_OR_USER", "HubSpot rejected", "quota 95% used", "dead-letter queue"}
	for _, part := range []string{e.Text, e.HTML} {
		last := -1
		for _, s := range order {
			i := strings.Index(part, s)
			if i < 0 || i < last {
				t.Errorf("%q missing or out of order", s)
			}
			last = i
		}
	}
	for _, s := range []string{"Record: salesforce/contact/003000000000001AAA", "Payload excerpt", "From Sun, 22 Nov 2026 08:30:00 UTC to Sun, 22 Nov 2026 09:30:00 UTC"} {
		if !strings.Contains(e.Text, s) || !strings.Contains(stripTags(e.HTML), s) {
			t.Errorf("digest lacks %q", s)
		}
	}
	if !strings.Contains(e.HTML, "{&#34;errors&#34;:[{&#34;statusCode&#34;:&#34;INACTIVE_OWNER_OR_USER&#34;") {
		t.Error("payload excerpt not escaped into the HTML")
	}
	checkSafeHTML(t, e.HTML)

	// Same alerts, another order: same Message-ID; one alert fewer: another one.
	again, _ := Alerts("demo", alerts, Window{}, Options{})
	fewer, _ := Alerts("demo", alerts[:3], Window{}, Options{})
	if e.MessageID != again.MessageID || e.MessageID == fewer.MessageID {
		t.Errorf("Message-IDs: %q, reordered %q, fewer %q", e.MessageID, again.MessageID, fewer.MessageID)
	}
	if !strings.HasPrefix(e.MessageID, "alerts.") || !strings.HasSuffix(e.MessageID, ".demo@ownersync.local") {
		t.Errorf("MessageID = %q", e.MessageID)
	}

	if _, err := Alerts("demo", nil, Window{}, Options{}); err == nil {
		t.Error("empty digest rendered, want error")
	}
}

func TestAlertsCapAndHostile(t *testing.T) {
	var alerts []*ownersyncv1.Alert
	for i := range 130 {
		alerts = append(alerts, &ownersyncv1.Alert{
			Meta:           &ownersyncv1.EventMeta{EventId: fmt.Sprintf("a%d", i), TenantId: "acme", OccurredAt: timestamppb.New(t0.Add(time.Duration(i) * time.Second))},
			Severity:       ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING,
			Kind:           ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED,
			Provider:       hs,
			Summary:        fmt.Sprintf("alert %03d <script>alert(%d)</script>", i, i),
			PayloadExcerpt: `{"name":"</pre><script>steal()</script>"}` + strings.Repeat("x", 5000),
			Record:         `hubspot/contact/"><img src=x>`,
		})
	}
	e, err := Alerts("acme", alerts, Window{}, Options{MaxAlerts: 20, AdminURL: "https://admin.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	checkSafeHTML(t, e.HTML)
	for _, s := range []string{"alert 019", "and 110 more (130 in total)", "https://admin.example.com/admin/t/acme/"} {
		if !strings.Contains(e.Text, s) || !strings.Contains(e.HTML, s) {
			t.Errorf("digest lacks %q", s)
		}
	}
	if strings.Contains(e.Text, "alert 020") {
		t.Error("digest lists more than MaxAlerts")
	}
	if strings.Contains(e.HTML, "<script>") || strings.Contains(e.HTML, `"><img`) {
		t.Error("hostile alert content reached the HTML unescaped")
	}
	if n := strings.Count(e.Text, "x"); n > 20*maxPayload+1000 {
		t.Errorf("payload excerpts not truncated: %d x's", n)
	}
}

// TestSampleGolden pins the whole plain-text part and subject of the sample report; run with
// -update after an intended template change and review the diff.
func TestSampleGolden(t *testing.T) {
	r := SampleReport(t0)
	r.AdminUrl = "https://admin.example.com"
	e, err := Report(r, Options{MaxChanges: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := "Subject: " + e.Subject + "\nMessage-ID: " + e.MessageID + "\n\n" + e.Text
	path := filepath.Join("testdata", "sample_report.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("sample report text (-want +got):\n%s", diff)
	}
	html, err := Preview(r, Options{MaxChanges: 3})
	if err != nil || html != e.HTML {
		t.Errorf("Preview differs from the report's HTML part (err %v)", err)
	}
}

func BenchmarkReportLarge(b *testing.B) {
	r := report(false, &ownersyncv1.ProviderReport{Provider: sf,
		Counts:  &ownersyncv1.SyncCounts{Mapped: 5000, Created: 1200, Errors: 300},
		Changes: changes(500), ChangesTotal: 1200, Errors: syncErrors(300), ErrorsTotal: 300})
	for b.Loop() {
		if _, err := Report(r, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmailLinksGoToConsolePages: every link of the report and the alert digest opens a console page
// (a browser has no API token: /v1/ links answered 401; issue 16, the admin's first hour).
func TestEmailLinksGoToConsolePages(t *testing.T) {
	sf := ownersyncv1.Provider_PROVIDER_SALESFORCE
	e, err := Report(report(false, &ownersyncv1.ProviderReport{Provider: sf,
		Counts: &ownersyncv1.SyncCounts{Errors: 2, Mapped: 1}, Errors: syncErrors(2), ErrorsTotal: 2}), Options{AdminURL: "https://admin.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Alerts("acme", []*ownersyncv1.Alert{{Summary: "a"}}, Window{}, Options{AdminURL: "https://admin.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"report html": e.HTML, "report text": e.Text, "digest html": d.HTML, "digest text": d.Text} {
		links := 0
		for _, part := range strings.Split(body, "https://admin.example.com")[1:] {
			links++
			if !strings.HasPrefix(part, "/admin/") {
				t.Errorf("%s links to %q, not a console page", name, "https://admin.example.com"+part[:min(len(part), 40)])
			}
		}
		if links == 0 {
			t.Errorf("%s has no link to the console", name)
		}
	}
}

// TestErrorListCountsLikeTheCounts: the report's error list says how many errors and how many
// conflicts the provider has — the numbers of its counts and of the subject — labels each item
// with its kind and names the user (issue 16: "9 errors and 3 conflicts" above "Errors (8)").
func TestErrorListCountsLikeTheCounts(t *testing.T) {
	errs := syncErrors(2)
	errs[0].Name = "Ada Lovelace"
	errs = append(errs, &ownersyncv1.SyncError{Code: "email_conflict", PlatformUserId: "u-9", Email: "team@example.com",
		Name: "Team Inbox", Conflict: true, Message: "2 platform users share this email", Fix: "give each a distinct email"})
	e, err := Report(report(false, &ownersyncv1.ProviderReport{Provider: sf,
		Counts: &ownersyncv1.SyncCounts{Errors: 2, Conflicts: 1, Mapped: 1}, Errors: errs, ErrorsTotal: 3}), Options{AdminURL: "https://admin.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Subject, "completed with 2 errors and 1 conflict") {
		t.Errorf("subject %q", e.Subject)
	}
	for part, body := range map[string]string{"text": e.Text, "html": e.HTML} {
		for _, want := range []string{"Errors (2) and conflicts (1)", "Ada Lovelace", "Team Inbox"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s part lacks %q", part, want)
			}
		}
	}
	for _, want := range []string{"- error: Ada Lovelace: No Salesforce user", "- conflict: Team Inbox: 2 platform users"} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, e.Text)
		}
	}
}

// stripTags returns the HTML without its tags (text and entities left), to find text that markup
// such as <time> splits.
func stripTags(h string) string { return regexp.MustCompile(`<[^>]*>`).ReplaceAllString(h, "") }
