package hubspot

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/crmcall"
	"github.com/ownersync/ownersync/libs/telemetry"
)

// TestCallMetrics: every call is counted by operation and outcome (207 partial, 429, a 4xx code),
// a 429 counts a pause, the rate-limit headers become quota and window gauges, and a batch
// records how many records it carried.
func TestCallMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderMax, "190")
		w.Header().Set(HeaderRemaining, "17")
		w.Header().Set(HeaderDaily, "1000")
		w.Header().Set(HeaderDailyRemaining, "80")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/batch/update"):
			w.WriteHeader(http.StatusMultiStatus)
			_, _ = w.Write([]byte(`{"status":"COMPLETE","results":[],"numErrors":1,"errors":[{"status":"error","category":"OBJECT_NOT_FOUND","message":"x","context":{"ids":["2"]}}]}`))
		case r.URL.Path == "/crm/v3/owners":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"status":"error","message":"limit","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":"error","message":"nope","category":"OBJECT_NOT_FOUND"}`))
		}
	}))
	defer srv.Close()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Service: "t"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{BaseURL: srv.URL, AccessToken: "tok", Metrics: crmcall.NewMetrics(tel.MeterProvider), Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, _ = c.BatchUpdateOwners(ctx, []OwnerUpdate{{ContactID: "1", OwnerID: "9", TraceID: "a"}, {ContactID: "2", OwnerID: "9", TraceID: "b"}})
	_ = c.ListOwners(ctx, false, func([]Owner) error { return nil })
	_, _ = c.GetOwner(ctx, "77", false)

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`ownersync_crm_calls_total{operation="batch_update",outcome="207",provider="hubspot",tenant="acme"} 1`,
		`ownersync_crm_calls_total{operation="owners_list",outcome="429",provider="hubspot",tenant="acme"} 1`,
		`ownersync_crm_calls_total{operation="owner_get",outcome="404",provider="hubspot",tenant="acme"} 1`,
		`ownersync_crm_call_duration_seconds_count{operation="batch_update",outcome="207",provider="hubspot",tenant="acme"} 1`,
		`ownersync_crm_rate_limit_pauses_total{provider="hubspot",tenant="acme"} 1`,
		`ownersync_crm_rate_limit_pause_seconds_sum{provider="hubspot",tenant="acme"} 3`,
		`ownersync_crm_quota_remaining{provider="hubspot",tenant="acme"} 80`,
		`ownersync_crm_quota_used{provider="hubspot",tenant="acme"} 920`,
		`ownersync_crm_quota_limit{provider="hubspot",tenant="acme"} 1000`,
		`ownersync_crm_rate_limit_remaining{provider="hubspot",tenant="acme"} 17`,
		`ownersync_crm_rate_limit_max{provider="hubspot",tenant="acme"} 190`,
		`ownersync_crm_records_per_call_sum{operation="batch_update",provider="hubspot",tenant="acme"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(grepLines(body, "ownersync_crm"))
	}
}

func grepLines(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
