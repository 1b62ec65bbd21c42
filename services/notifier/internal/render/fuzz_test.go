package render

import (
	"strings"
	"testing"
	"unicode"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

// FuzzReportSafe feeds arbitrary CRM strings through the report and alert templates and checks
// that nothing executable or fetchable reaches the HTML and no line breaks reach the subject.
func FuzzReportSafe(f *testing.F) {
	f.Add("Ada Lovelace", "ada@example.com", "matched by email", "Acme", `{"a":1}`)
	f.Add(`<script>alert(1)</script>`, `"><img src=x onerror=alert(2)>`, `</td></tr></table><a href="javascript:x">`, "Evil\r\nBcc: x@y", "</pre><script>")
	f.Add("\u202Egnp.exe", "a'b@c", "<style>@import url(http://x)</style>", "\x00\x1b[31m", "<!--")
	f.Fuzz(func(t *testing.T, name, email, reason, tenant, payload string) {
		r := report(false, &ownersyncv1.ProviderReport{Provider: sf, Counts: &ownersyncv1.SyncCounts{Errors: 1},
			Changes: []*ownersyncv1.SyncChange{{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED, Name: name, Email: email, Reason: reason, CrmUserId: payload}},
			Errors:  []*ownersyncv1.SyncError{{Code: name, Email: email, Message: reason, Fix: payload}}, Failure: payload})
		r.TenantName = tenant
		r.RunId = name
		e, err := Report(r, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkSafeHTML(t, e.HTML)
		checkLine(t, "subject", e.Subject)
		checkLine(t, "message id", e.MessageID)

		a, err := Alerts("acme", []*ownersyncv1.Alert{{Meta: &ownersyncv1.EventMeta{EventId: name}, Summary: name, Details: reason,
			PayloadExcerpt: payload, Record: email}}, Window{}, Options{TenantName: tenant})
		if err != nil {
			t.Fatal(err)
		}
		checkSafeHTML(t, a.HTML)
		checkLine(t, "alert subject", a.Subject)
	})
}

func checkLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || isBidiControl(r) }) >= 0 {
		t.Errorf("%s %q holds control characters", what, s)
	}
}
