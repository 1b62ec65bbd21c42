package salesforce

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/telemetry"
)

// TestCallMetrics: token, composite update and query calls are counted by operation and outcome,
// Sforce-Limit-Info becomes the quota gauges and an update records how many records it carried.
func TestCallMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/services/oauth2/token":
			_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","instance_url":"http://` + r.Host + `"}`))
		case strings.HasSuffix(r.URL.Path, "/composite/sobjects"):
			w.Header().Set(LimitHeader, "api-usage=950/1000")
			_, _ = w.Write([]byte(`[{"id":"003000000000001AAA","success":true,"errors":[]},{"id":"003000000000002AAA","success":true,"errors":[]}]`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]`))
		}
	}))
	defer srv.Close()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Service: "t"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{InstanceURL: srv.URL, APIVersion: "62.0", ClientCredentials: &ClientCredentials{ClientID: "id", ClientSecret: "s"},
		Metrics: crmcall.NewMetrics(tel.MeterProvider), Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.UpdateOwners(ctx, []OwnerUpdate{
		{ObjectType: "Contact", ID: "003000000000001AAA", OwnerID: "005000000000001AAA"},
		{ObjectType: "Contact", ID: "003000000000002AAA", OwnerID: "005000000000001AAA"},
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.QueryUsers(ctx, func([]User) error { return nil })

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`ownersync_crm_calls_total{operation="token",outcome="2xx",provider="salesforce",tenant="acme"} 1`,
		`ownersync_crm_calls_total{operation="composite_update",outcome="2xx",provider="salesforce",tenant="acme"} 1`,
		`ownersync_crm_calls_total{operation="query",outcome="5xx",provider="salesforce",tenant="acme"} 1`,
		`ownersync_crm_quota_used{provider="salesforce",tenant="acme"} 950`,
		`ownersync_crm_quota_remaining{provider="salesforce",tenant="acme"} 50`,
		`ownersync_crm_records_per_call_sum{operation="composite_update",provider="salesforce",tenant="acme"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(body, "\n") {
			if strings.Contains(l, "ownersync_crm") {
				t.Log(l)
			}
		}
	}
}
