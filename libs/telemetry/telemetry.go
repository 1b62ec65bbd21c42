// Package telemetry sets up OpenTelemetry tracing and metrics and the JSON slog logger of a
// service.
//
// The OpenTelemetry environment variables work as the specification says: OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES shape the resource (resource.WithFromEnv), OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER choose the exporters (contrib autoexport: otlp, console, none), and the
// OTEL_EXPORTER_OTLP_* variables configure OTLP. When OTEL_TRACES_EXPORTER is unset, traces are
// exported over OTLP only if an OTLP endpoint is named (the specification's default "otlp" would
// otherwise send every span of a laptop run to localhost:4318); the same holds for metrics.
// Metrics are always served on /metrics from the service's own Prometheus registry, so several
// services can run in one process (the dev stack) without sharing global state; hence
// OTEL_METRICS_EXPORTER=prometheus means that registry rather than a second HTTP server.
//
// Setup also installs the global text-map propagator (W3C tracecontext and baggage), so HTTP
// middleware honours an incoming traceparent, and routes OpenTelemetry's own errors to the JSON
// log.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ownersync/ownersync/libs/telemetry/logctx"
)

// SecondsBuckets are the histogram boundaries of every instrument whose unit is seconds: from a
// 5 ms handler to a 2 minute Sync Users phase. OTel's default boundaries (0, 5, 10, 25 … 10000)
// are meant for milliseconds and would put every message in the first bucket.
var SecondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// TenantLabel is the attribute key that Options.DropTenantLabel removes from every metric.
const TenantLabel = "tenant"

// Telemetry holds a service's providers and logger.
type Telemetry struct {
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Registry       *prometheus.Registry

	shutdown []func(context.Context) error
}

// Options configure Setup.
type Options struct {
	// Service is service.name unless OTEL_SERVICE_NAME overrides it.
	Service string
	// Version is service.version.
	Version string
	// Getenv reads the OTEL_* switches (OTEL_SDK_DISABLED, OTEL_METRICS_EXPORTER,
	// OTEL_EXPORTER_OTLP_*ENDPOINT). The exporters and resource.WithFromEnv read the process
	// environment themselves, as the OTel SDK does.
	Getenv func(string) string
	// LogOutput receives JSON logs (stdout).
	LogOutput io.Writer
	// LogLevel is the minimum level logged (zero: info).
	LogLevel slog.Level
	// DropTenantLabel removes the tenant attribute from every metric, for deployments with so many
	// tenants that a series per tenant is too many.
	DropTenantLabel bool
}

// globalOnce installs the global propagator and error handler once per process (the dev stack
// runs every service in one process); errorLog is the log the error handler writes to, the one of
// the service set up last.
var (
	globalOnce sync.Once
	errorLog   atomic.Pointer[slog.Logger]
)

// Setup builds the logger and providers.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	out := o.LogOutput
	if out == nil {
		out = io.Discard
	}
	level := new(slog.LevelVar)
	level.Set(o.LogLevel)
	base := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})
	t := &Telemetry{Logger: slog.New(traceHandler{Handler: base}).With("service", o.Service)}

	errorLog.Store(t.Logger.With("component", "opentelemetry"))
	globalOnce.Do(func() {
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			errorLog.Load().Warn("opentelemetry error", "error", err.Error())
		}))
	})

	// Later detectors override earlier ones: OTEL_SERVICE_NAME wins over the built-in name and
	// OTEL_RESOURCE_ATTRIBUTES adds to (or overrides) both.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", o.Service), attribute.String("service.version", o.Version)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry: the rest of the resource is still usable.
		t.Logger.Warn("resource attributes", "error", err.Error())
	}

	t.Registry = prometheus.NewRegistry()
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp),
		sdkmetric.WithView(metricView(o.DropTenantLabel))}

	disabled := strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true")
	endpoint := func(signal string) bool {
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
	}
	if disabled {
		t.TracerProvider = noop.NewTracerProvider()
	} else {
		se, err := autoexport.NewSpanExporter(ctx, autoexport.WithFallbackSpanExporter(
			func(ctx context.Context) (sdktrace.SpanExporter, error) {
				if !endpoint("TRACES") {
					return nil, nil
				}
				return autoexport.NewSpanExporter(ctx) // OTEL_TRACES_EXPORTER unset: otlp
			}))
		if err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %w", err)
		}
		topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		if se != nil && !autoexport.IsNoneSpanExporter(se) {
			topts = append(topts, sdktrace.WithBatcher(se))
		}
		// Without an exporter spans are still sampled: their trace ids travel through NATS headers
		// and appear in logs.
		tp := sdktrace.NewTracerProvider(topts...)
		t.TracerProvider = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)

		if exp := strings.TrimSpace(getenv("OTEL_METRICS_EXPORTER")); exp != "prometheus" {
			mr, err := autoexport.NewMetricReader(ctx, autoexport.WithFallbackMetricReader(
				func(ctx context.Context) (sdkmetric.Reader, error) {
					if !endpoint("METRICS") {
						return nil, nil
					}
					return autoexport.NewMetricReader(ctx) // OTEL_METRICS_EXPORTER unset: otlp
				}))
			if err != nil {
				return nil, fmt.Errorf("OTEL_METRICS_EXPORTER: %w", err)
			}
			if mr != nil && !autoexport.IsNoneMetricReader(mr) {
				mopts = append(mopts, sdkmetric.WithReader(mr))
			}
		}
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	return t, nil
}

// metricView gives every seconds histogram SecondsBuckets and, when dropTenant, removes the tenant
// attribute. It is one view so that an instrument never matches twice (two matching views would
// export the same metric twice).
func metricView(dropTenant bool) sdkmetric.View {
	deny := attribute.NewDenyKeysFilter(TenantLabel)
	return func(i sdkmetric.Instrument) (sdkmetric.Stream, bool) {
		s := sdkmetric.Stream{Name: i.Name, Description: i.Description, Unit: i.Unit}
		changed := false
		if i.Kind == sdkmetric.InstrumentKindHistogram && i.Unit == "s" {
			s.Aggregation = sdkmetric.AggregationExplicitBucketHistogram{Boundaries: SecondsBuckets}
			changed = true
		}
		if dropTenant {
			s.AttributeFilter = deny
			changed = true
		}
		return s, changed
	}
}

// MetricsHandler serves the service's Prometheus registry.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{Registry: t.Registry})
}

// Meter returns a named meter of the service.
func (t *Telemetry) Meter(name string) metric.Meter { return t.MeterProvider.Meter(name) }

// Tracer returns a named tracer of the service.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.TracerProvider.Tracer(name) }

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// traceHandler adds trace_id and span_id of the record's context to every log line, and the
// context's logctx attributes whose keys neither the line nor the logger's With set.
type traceHandler struct {
	slog.Handler
	// keys are the top-level keys the logger's With added.
	keys map[string]bool
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if extra := logctx.Attrs(ctx); len(extra) > 0 {
		set := map[string]bool{}
		r.Attrs(func(a slog.Attr) bool { set[a.Key] = true; return true })
		for _, a := range extra {
			if !set[a.Key] && !h.keys[a.Key] {
				r.AddAttrs(a)
			}
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	keys := make(map[string]bool, len(h.keys)+len(a))
	for k := range h.keys {
		keys[k] = true
	}
	for _, x := range a {
		keys[x.Key] = true
	}
	return traceHandler{h.Handler.WithAttrs(a), keys}
}

func (h traceHandler) WithGroup(n string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(n), h.keys}
}
