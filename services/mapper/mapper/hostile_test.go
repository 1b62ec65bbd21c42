package mapper_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/mapper"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestHostileInputsAgainstRunningMapper runs issue 13's tenant-configuration cases (items 1-3)
// against mapper.Run with its production policy (secret namespace, CRM hosts): each hostile save
// gets its refusal and writes nothing — both tenants read back byte for byte as before — and
// unauthenticated or oversized bodies are refused without the heap growing past a small ratio of
// where it started.
func TestHostileInputsAgainstRunningMapper(t *testing.T) {
	infra := harness.Start(t)
	seed := `tenants:
  - id: acme
    name: Acme
    salesforce:
      enabled: true
      org_id: 00D5g000004XyZaEAK
      instance_url: https://acme.my.salesforce.com
      auth: {flow: client_credentials, client_id: c, client_secret_ref: "env:OWNERSYNC_SECRET_ACME_SF"}
  - id: globex
    name: Globex
    hubspot:
      enabled: true
      portal_id: 4412345
      client_secret_ref: "env:OWNERSYNC_SECRET_GLOBEX_HS"
      auth: {kind: private_app, token_ref: "env:OWNERSYNC_SECRET_GLOBEX_HS_TOKEN"}
`
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	const acmeTok = "acme-tenant-token-0123456789"
	addr := harness.Service(t, "mapper", mapper.Run, infra.Env(map[string]string{
		"OWNERSYNC_OPERATOR_TOKEN": operatorToken,
		"OWNERSYNC_TENANT_TOKENS":  "acme=" + acmeTok,
		"OWNERSYNC_TENANTS_FILE":   file,
	}))
	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	state := func() string {
		_, a := do("GET", "/v1/tenants/acme", operatorToken, "")
		_, g := do("GET", "/v1/tenants/globex", operatorToken, "")
		return a + "\n" + g
	}
	before := state()
	heapBefore := heapInUse()
	big := `{"name":"` + strings.Repeat("A", 8<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		mention                         string
	}{
		{"tenant token: the operator's token as a client secret", "PATCH", "/v1/tenants/acme", acmeTok,
			`{"salesforce":{"auth":{"client_secret_ref":"env:OWNERSYNC_OPERATOR_TOKEN"}}}`, 403, "salesforce.auth.client_secret_ref"},
		{"tenant token: a collector as instance", "PATCH", "/v1/tenants/acme", acmeTok,
			`{"salesforce":{"instance_url":"https://collector.example"}}`, 403, "salesforce.instance_url"},
		{"tenant token: PUT {}", "PUT", "/v1/tenants/acme", acmeTok, `{}`, 403, "salesforce"},
		{"tenant token: another tenant", "PATCH", "/v1/tenants/globex", acmeTok, `{"name":"x"}`, 403, ""},
		{"operator: PUT {}", "PUT", "/v1/tenants/acme", operatorToken, `{}`, 409, "connection_removal"},
		{"operator: a reference outside the namespace", "PATCH", "/v1/tenants/acme", operatorToken,
			`{"salesforce":{"auth":{"client_secret_ref":"file:/proc/self/environ"}}}`, 400, "outside the operator's secret namespace"},
		{"operator: a host that is not Salesforce's", "PATCH", "/v1/tenants/acme", operatorToken,
			`{"salesforce":{"instance_url":"http://127.0.0.1:9"}}`, 400, "salesforce.instance_url"},
		{"operator: another tenant's org", "PATCH", "/v1/tenants/globex", operatorToken,
			`{"salesforce":{"enabled":true,"org_id":"00D5g000004XyZa","instance_url":"https://globex.my.salesforce.com","auth":{"flow":"client_credentials","client_id":"g","client_secret_ref":"env:OWNERSYNC_SECRET_G"}}}`,
			409, "source_claimed"},
		{"no token: an 8 MiB body", "PATCH", "/v1/tenants/acme", "", big, 401, ""},
		{"operator: an 8 MiB body", "PATCH", "/v1/tenants/acme", operatorToken, big, 413, ""},
		{"unknown token", "PUT", "/v1/tenants/acme", "not-a-token-of-anyone", `{}`, 401, ""},
		{"tenant token: the operator's tenant list", "GET", "/v1/tenants", acmeTok, "", 403, ""},
		{"tenant token: a shared key of its choosing", "PATCH", "/v1/tenants/acme", acmeTok,
			`{"salesforce":{"shared_key_ref":"env:OWNERSYNC_SECRET_ACME_SF"}}`, 403, "salesforce.shared_key_ref"},
	} {
		for range 5 {
			status, body := do(tc.method, tc.path, tc.token, tc.body)
			if status != tc.status || !strings.Contains(body, tc.mention) {
				t.Fatalf("%s: %d %s, want %d mentioning %q", tc.name, status, body, tc.status, tc.mention)
			}
		}
		if after := state(); after != before {
			t.Fatalf("%s changed a tenant:\nbefore %s\nafter  %s", tc.name, before, after)
		}
	}
	heapAfter := heapInUse()
	t.Logf("heap in use %d MB before the hostile requests, %d MB after", heapBefore>>20, heapAfter>>20)
	if ratio := float64(heapAfter) / float64(heapBefore); ratio > 3 {
		t.Errorf("heap grew %.1f× under hostile requests", ratio)
	}
	// The one accepted change: the tenant's own key rotation, which answers the key once.
	status, body := do("POST", "/v1/tenants/acme/salesforce/shared-key", acmeTok, "")
	if status != http.StatusCreated || !strings.Contains(body, `"webhook_url":"http://localhost:8080/webhooks/salesforce?key=`) {
		t.Errorf("rotation = %d %s", status, body)
	}
}

// heapInUse is the heap in use after a collection (the mapper runs in this process).
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
