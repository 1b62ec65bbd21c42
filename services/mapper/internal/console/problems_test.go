package console_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

func errorsFixture() []domain.Problem {
	return []domain.Problem{
		{Problem: mapping.Problem{Provider: "salesforce", Code: "crm_user_not_found", Name: "Ada Lovelace", PlatformUserID: "u101", Email: "ada@acme.example",
			Message: "no active Salesforce user has this email", Fix: "create the Salesforce user"}},
		{Problem: mapping.Problem{Provider: "salesforce", Code: "email_conflict", Name: "Bob Byte", PlatformUserID: "u102", Email: "team@acme.example",
			Message: "2 platform users share this email (u102, u103)", Fix: "give each platform user a distinct email"}},
		{Problem: mapping.Problem{Provider: "salesforce", Code: "platform_user_not_found", Name: `=HYPERLINK("http://evil.example","click")`, CRMUserID: consoletest.SFUserID(7),
			Email: "+1@acme.example", Message: "-2+3 \"quoted\", with a comma\nand a new line", Fix: "@SUM(A1:A9)"}},
		{Problem: mapping.Problem{Provider: "salesforce", Code: "fallback_owner_invalid", CRMUserID: consoletest.SFUserID(8),
			Message: "fallback owner is inactive", Fix: "choose an active fallback owner"}},
	}
}

// TestErrorsSearchFilterAndExport: the Errors page counts errors and conflicts apart (the
// overview's definition), searches name, email, ids and messages, filters by kind, and exports
// what it shows as CSV (issue 16, the admin's first hour).
func TestErrorsSearchFilterAndExport(t *testing.T) {
	svc := consoletest.NewDemo(5)
	svc.SetProblems(errorsFixture())
	env := start(t, svc, console.Config{})
	b := signedIn(t, env, consoletest.OperatorToken)

	cards := func(path string) []string {
		t.Helper()
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		wantContains(t, r.body, `id="problem-counts" data-errors="3" data-conflicts="1"`)
		var out []string
		for _, part := range strings.Split(r.body, `<li class="card problem-`)[1:] {
			kind, _, _ := strings.Cut(part, `"`)
			out = append(out, kind)
		}
		return out
	}
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/admin/t/acme/p/salesforce/errors", 4},
		{"/admin/t/acme/p/salesforce/errors?kind=conflict", 1},
		{"/admin/t/acme/p/salesforce/errors?kind=error", 3},
		{"/admin/t/acme/p/salesforce/errors?q=ADA", 1},                        // name and email, any case
		{"/admin/t/acme/p/salesforce/errors?q=u103", 1},                       // in the message
		{"/admin/t/acme/p/salesforce/errors?q=" + consoletest.SFUserID(8), 1}, // CRM user id
		{"/admin/t/acme/p/salesforce/errors?q=acme.example&kind=error", 2},
		{"/admin/t/acme/p/salesforce/errors?q=nobody", 0},
	} {
		if got := cards(tt.path); len(got) != tt.want {
			t.Errorf("%s: %d cards (%v), want %d", tt.path, len(got), got, tt.want)
		}
	}
	if r := b.get("/admin/t/acme/p/salesforce/errors?kind=warning"); r.status != http.StatusBadRequest {
		t.Errorf("unknown kind: %d, want 400", r.status)
	}
	// The overview's counts link to the page filtered by kind.
	wantContains(t, b.get("/admin/t/acme/").body,
		`id="count-errors-salesforce" href="/admin/t/acme/p/salesforce/errors?kind=error">3<`,
		`id="count-conflicts-salesforce" href="/admin/t/acme/p/salesforce/errors?kind=conflict">1<`)
	// The fallback owner is fixed in the settings.
	wantContains(t, b.get("/admin/t/acme/p/salesforce/errors?kind=error").body, `class="fix-link" href="/admin/t/acme/settings"`)

	r := b.get("/admin/t/acme/p/salesforce/errors.csv")
	wantStatus(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, r.body)
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != "provider,kind,code,name,email,platform_user_id,crm_user_id,message,fix,since" {
		t.Fatalf("CSV rows: %q", rows)
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("cell %q starts a formula", cell)
			}
		}
	}
	hostile := errorsFixture()[2]
	var got []string
	for _, row := range rows[1:] {
		if row[2] == hostile.Code {
			got = row
		}
	}
	if want := []string{"'" + hostile.Name, "'" + hostile.Email, "", hostile.CRMUserID, "'" + hostile.Message, "'" + hostile.Fix}; got == nil ||
		strings.Join(got[3:9], "|") != strings.Join(want, "|") {
		t.Errorf("hostile row = %q, want name..fix %q", got, want)
	}
	// The export follows the page's filter.
	r = b.get("/admin/t/acme/p/salesforce/errors.csv?kind=conflict")
	rows, _ = csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if len(rows) != 2 || rows[1][1] != "conflict" || rows[1][3] != "Bob Byte" {
		t.Errorf("conflicts export: %q", rows)
	}
}
