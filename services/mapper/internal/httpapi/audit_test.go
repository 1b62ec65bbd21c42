package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAuditLogClientAddressIgnoresUntrustedForwarding is issue 13 item 14: the admin request log
// (the audit trail of who did what) names the client by its connection address; an
// X-Forwarded-For from a peer that is not a configured trusted proxy cannot put another address
// there (the server under test trusts no proxy, as mapper does by default).
func TestAuditLogClientAddressIgnoresUntrustedForwarding(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/tenants/acme/users/overview", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+acmeToken)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Real-IP", "203.0.113.10")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	var found bool
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "admin request" {
			continue
		}
		found = true
		if rec["client"] != "127.0.0.1" {
			t.Errorf("audit line client = %v, want the connection's 127.0.0.1: %s", rec["client"], line)
		}
	}
	if !found {
		t.Fatalf("no admin request line logged:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), "203.0.113.") {
		t.Errorf("a forwarded address from an untrusted peer reached the log:\n%s", e.logs.String())
	}
}
