// Package telemetry sets up OpenTelemetry tracing and metrics and the JSON slog logger of a
// service. Traces and metrics go over OTLP/HTTP when the standard OTEL_* variables name an
// endpoint; metrics are always served on /metrics from the service's own Prometheus registry, so
// several services can run in one process (the dev stack) without sharing global state.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

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
	// Service is service.name.
	Service string
	// Version is service.version.
	Version string
	// Getenv reads OTEL_* and OWNERSYNC_LOG_LEVEL.
	Getenv func(string) string
	// LogOutput receives JSON logs (stdout).
	LogOutput io.Writer
}

// Setup builds the logger and providers. OTLP export is on when OTEL_EXPORTER_OTLP_ENDPOINT (or the
// per-signal variant) is set and OTEL_SDK_DISABLED is not "true"; otherwise traces are not recorded.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	getenv := o.Getenv
	level := new(slog.LevelVar)
	if v := getenv("OWNERSYNC_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("OWNERSYNC_LOG_LEVEL %q: %w", v, err)
		}
	}
	out := o.LogOutput
	if out == nil {
		out = io.Discard
	}
	base := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})
	t := &Telemetry{Logger: slog.New(traceHandler{base}).With("service", o.Service)}

	res := resource.NewSchemaless(
		attribute.String("service.name", o.Service),
		attribute.String("service.version", o.Version),
	)
	if extra := getenv("OTEL_RESOURCE_ATTRIBUTES"); extra != "" {
		var kv []attribute.KeyValue
		for _, p := range strings.Split(extra, ",") {
			if k, v, ok := strings.Cut(p, "="); ok {
				kv = append(kv, attribute.String(strings.TrimSpace(k), strings.TrimSpace(v)))
			}
		}
		res, _ = resource.Merge(res, resource.NewSchemaless(kv...))
	}

	t.Registry = prometheus.NewRegistry()
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}

	disabled := strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true")
	otlp := !disabled && (getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "")
	if otlp {
		// The exporters read the standard OTEL_EXPORTER_OTLP_* variables from the process
		// environment themselves; the dev stack runs them off.
		te, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(te), sdktrace.WithResource(res))
		t.TracerProvider = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" {
			me, err := otlpmetrichttp.New(ctx)
			if err != nil {
				return nil, fmt.Errorf("otlp metric exporter: %w", err)
			}
			mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me)))
		}
	} else {
		// Spans still carry trace ids through NATS headers and logs, but nothing is exported.
		t.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
			sdktrace.WithResource(res))
		if disabled {
			t.TracerProvider = noop.NewTracerProvider()
		}
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	return t, nil
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

// traceHandler adds trace_id and span_id of the record's context to every log line.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(a)}
}
func (h traceHandler) WithGroup(n string) slog.Handler { return traceHandler{h.Handler.WithGroup(n)} }
