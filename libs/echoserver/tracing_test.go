package echoserver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/libs/telemetry"
)

// TestIncomingTraceparentHonoured: a webhook or platform event that arrives with a W3C
// traceparent continues that trace (telemetry.Setup installs the global propagator the HTTP
// middleware reads), and the server span is named after the route.
func TestIncomingTraceparentHonoured(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Service: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := New(Options{Service: "t", Addr: "127.0.0.1:0", TracerProvider: tp, MeterProvider: tel.MeterProvider})
	s.E.POST("/v1/things/:id", func(c echo.Context) error {
		return c.String(200, trace.SpanContextFromContext(c.Request().Context()).TraceID().String())
	})
	s.E.GET("/fail", func(echo.Context) error { return Errorf(502, "upstream", "down") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	addr, err := s.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", "http://"+addr.String()+"/v1/things/42", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != traceID {
		t.Errorf("handler saw trace %s, want the incoming %s", b, traceID)
	}
	resp, err = http.Get("http://" + addr.String() + "/fail")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("GET /fail = %d", resp.StatusCode)
	}
	_ = tp.ForceFlush(ctx)
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
	}
	if got := strings.Join(names, ","); got != "POST /v1/things/:id,GET /fail" {
		t.Errorf("span names = %s", got)
	}
	// The duration histogram carries the route and the final status, in seconds buckets.
	w := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{`http_route="/fail"`, `http_response_status_code="502"`, `le="0.005"`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
