package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ownersync/ownersync/libs/telemetry/logctx"
	"github.com/ownersync/ownersync/libs/telemetry/otlpsink"
)

func TestLogsCarryTraceIDsAndMetricsServe(t *testing.T) {
	var buf bytes.Buffer
	tel, err := Setup(context.Background(), Options{Service: "test", LogLevel: slog.LevelDebug, LogOutput: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	ctx, span := tel.Tracer("t").Start(context.Background(), "op")
	tel.Logger.DebugContext(ctx, "hello")
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
	if body := scrape(t, tel); !strings.Contains(body, "ownersync_test_total 3") {
		t.Errorf("metrics missing counter:\n%s", body)
	}
}

func scrape(t *testing.T, tel *Telemetry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestSecondsHistogramBuckets: a histogram in seconds gets boundaries in seconds. With OTel's
// default boundaries (0, 5, 10 … 10000, meant for milliseconds) a 0.2 s handler lands in the
// first bucket with every other message and no percentile can be read.
func TestSecondsHistogramBuckets(t *testing.T) {
	tel, err := Setup(context.Background(), Options{Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	h, _ := tel.Meter("t").Float64Histogram("ownersync_message_handle_seconds", metric.WithUnit("s"))
	h.Record(context.Background(), 0.2)
	h.Record(context.Background(), 3)
	body := scrape(t, tel)
	for _, want := range []string{
		`ownersync_message_handle_seconds_bucket{le="0.1"} 0`,
		`ownersync_message_handle_seconds_bucket{le="0.25"} 1`,
		`ownersync_message_handle_seconds_bucket{le="2.5"} 1`,
		`ownersync_message_handle_seconds_bucket{le="5"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(body, "ownersync_message_handle_seconds"))
		}
	}
}

// TestDropTenantLabel: the switch removes the tenant attribute and keeps the others.
func TestDropTenantLabel(t *testing.T) {
	for _, drop := range []bool{false, true} {
		tel, err := Setup(context.Background(), Options{Service: "test", DropTenantLabel: drop})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := tel.Meter("t").Int64Counter("ownersync_x_total")
		c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("tenant", "acme"), attribute.String("provider", "hubspot")))
		body := grep(scrape(t, tel), "ownersync_x_total")
		want := `ownersync_x_total{provider="hubspot",tenant="acme"} 1`
		if drop {
			want = `ownersync_x_total{provider="hubspot"} 1`
		}
		if !strings.Contains(body, want) {
			t.Errorf("drop=%v: want %s in\n%s", drop, want, body)
		}
		_ = tel.Shutdown(context.Background())
	}
}

func grep(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestOTelEnvironment: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER work as the specification says, against an in-process OTLP receiver.
func TestOTelEnvironment(t *testing.T) {
	sink := otlpsink.New()
	srv := httptest.NewServer(sink)
	defer srv.Close()
	run := func(env map[string]string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		tel, err := Setup(context.Background(), Options{Service: "builtin", Getenv: os.Getenv})
		if err != nil {
			t.Fatal(err)
		}
		_, span := tel.Tracer("t").Start(context.Background(), "op-"+env["OTEL_SERVICE_NAME"])
		span.End()
		c, _ := tel.Meter("t").Int64Counter("ownersync_env_total")
		c.Add(context.Background(), 1)
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	run(map[string]string{"OTEL_SERVICE_NAME": "renamed", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=sre"})
	run(map[string]string{"OTEL_SERVICE_NAME": "quiet", "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})

	got := sink.Spans()
	if len(got) != 1 {
		t.Fatalf("spans = %+v, want one (OTEL_TRACES_EXPORTER=none exports nothing)", got)
	}
	s := got[0]
	if s.Service != "renamed" || s.Resource["deployment.environment"] != "test" || s.Resource["team"] != "sre" {
		t.Errorf("span resource = %v", s.Resource)
	}
	if svcs := sink.MetricServices("ownersync_env_total"); len(svcs) != 1 || svcs[0] != "renamed" {
		t.Errorf("metric exported by %v, want [renamed]", svcs)
	}
}

// TestPropagatorAndErrorHandler: the global propagator reads traceparent and baggage, and
// OpenTelemetry's own errors are logged as JSON.
func TestPropagatorAndErrorHandler(t *testing.T) {
	var buf bytes.Buffer
	tel, err := Setup(context.Background(), Options{Service: "test", LogOutput: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	fields := strings.Join(otel.GetTextMapPropagator().Fields(), ",")
	if !strings.Contains(fields, "traceparent") || !strings.Contains(fields, "baggage") {
		t.Errorf("propagator fields = %s", fields)
	}
	otel.Handle(errors.New("exporter unreachable"))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log is not JSON: %v: %q", err, buf.String())
	}
	if line["error"] != "exporter unreachable" || line["component"] != "opentelemetry" {
		t.Errorf("log line = %v", line)
	}
}

// TestLogLinesCarryContextAttributes: attributes put in a context with logctx.With appear on
// every line logged with that context, beside the trace id, by any logger of the service; a key
// the line or the logger's With already sets is not repeated; a later logctx.With replaces a key.
func TestLogLinesCarryContextAttributes(t *testing.T) {
	var buf bytes.Buffer
	tel, err := Setup(context.Background(), Options{Service: "test", LogOutput: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	ctx, span := tel.Tracer("t").Start(context.Background(), "process")
	defer span.End()
	ctx = logctx.With(ctx, slog.String("tenant", "acme"), slog.String("provider", "hubspot"), slog.String("event_id", "e1"))
	ctx = logctx.With(ctx, slog.String("event_id", "e2"))
	tel.Logger.InfoContext(ctx, "plain")
	tel.Logger.With("component", "writer").WarnContext(ctx, "own tenant", "tenant", "acme")
	tel.Logger.With("provider", "salesforce").InfoContext(ctx, "logger provider")
	tel.Logger.Info("no context")
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.Contains(l, `"msg"`) || strings.Contains(l, "opentelemetry") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if c := strings.Count(l, `"tenant"`); c > 1 || strings.Count(l, `"provider"`) > 1 {
			t.Errorf("a key repeated: %s", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("lines: %v", lines)
	}
	trace := span.SpanContext().TraceID().String()
	for i, want := range []map[string]any{
		{"tenant": "acme", "provider": "hubspot", "event_id": "e2", "trace_id": trace},
		{"tenant": "acme", "provider": "hubspot", "event_id": "e2", "trace_id": trace, "component": "writer"},
		{"tenant": "acme", "provider": "salesforce", "event_id": "e2", "trace_id": trace},
		{"tenant": nil, "event_id": nil, "trace_id": nil},
	} {
		for k, v := range want {
			if lines[i][k] != v {
				t.Errorf("line %d %q: %s = %v, want %v", i, lines[i]["msg"], k, lines[i][k], v)
			}
		}
	}
}
