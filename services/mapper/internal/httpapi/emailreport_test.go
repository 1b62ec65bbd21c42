package httpapi_test

import (
	"strings"
	"testing"
)

// TestDryRunEmailReportParameter is issue 13 item 10 (mapper part): POST sync-users takes
// email_report=true with dry_run=true and passes it to the core; without a dry run it is refused
// (other runs are always emailed when reports are on).
func TestDryRunEmailReportParameter(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/tenants/acme/sync-users?dry_run=true&email_report=true", acmeToken, "")
	if r.Status != 202 && r.Status != 200 {
		t.Fatalf("dry run with email = %d %s", r.Status, r.Body)
	}
	calls := e.svc.TakeCalls()
	if len(calls) != 1 || !strings.Contains(calls[0], "DryRun:true EmailReport:true") {
		t.Errorf("core calls = %v, want one dry run asking for email", calls)
	}
	if r := e.do("POST", "/v1/tenants/acme/sync-users?email_report=true", acmeToken, ""); r.Status != 400 || r.errorCode() != "invalid_email_report" {
		t.Errorf("email_report without dry_run = %d %s, want 400 invalid_email_report", r.Status, r.Body)
	}
	if r := e.do("POST", "/v1/tenants/acme/sync-users?dry_run=true&email_report=maybe", acmeToken, ""); r.Status != 400 {
		t.Errorf("email_report=maybe = %d, want 400", r.Status)
	}
	if calls := e.svc.TakeCalls(); len(calls) != 0 {
		t.Errorf("refused requests reached the core: %v", calls)
	}
}
