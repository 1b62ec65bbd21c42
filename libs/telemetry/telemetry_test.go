package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLogsCarryTraceIDsAndMetricsServe(t *testing.T) {
	var buf bytes.Buffer
	env := map[string]string{"OWNERSYNC_LOG_LEVEL": "debug"}
	tel, err := Setup(context.Background(), Options{Service: "test", Getenv: func(k string) string { return env[k] }, LogOutput: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	ctx, span := tel.Tracer("t").Start(context.Background(), "op")
	tel.Logger.InfoContext(ctx, "hello")
	span.End()
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log is not JSON: %v: %s", err, buf.String())
	}
	if line["trace_id"] != span.SpanContext().TraceID().String() || line["service"] != "test" {
		t.Errorf("log line = %v", line)
	}
	c, _ := tel.Meter("t").Int64Counter("ownersync_test_total")
	c.Add(ctx, 3)
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "ownersync_test_total 3") {
		t.Errorf("metrics missing counter:\n%s", rec.Body.String())
	}
}

func TestBadLogLevel(t *testing.T) {
	_, err := Setup(context.Background(), Options{Service: "x", Getenv: func(k string) string {
		if k == "OWNERSYNC_LOG_LEVEL" {
			return "loud"
		}
		return ""
	}})
	if err == nil {
		t.Fatal("want error for bad level")
	}
}
