package syncusers

import (
	"context"
	"github.com/ownersync/ownersync/libs/provider"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ownersync/ownersync/libs/telemetry/logctx"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// Sync Users metric names (dashboards and alert rules refer to them).
const (
	RunsTotal        = "ownersync_mapper_sync_runs_total"
	PhaseSeconds     = "ownersync_mapper_sync_phase_seconds"
	UsersPulledTotal = "ownersync_mapper_sync_users_pulled_total"
	MappingsByStatus = "ownersync_mapper_mappings"
)

// observer holds the run's instruments and tracer; the zero Options give no-ops.
type observer struct {
	tracer   trace.Tracer
	runs     metric.Int64Counter
	phase    metric.Float64Histogram
	pulled   metric.Int64Counter
	mappings metric.Int64Gauge
}

func newObserver(mp metric.MeterProvider, tp trace.TracerProvider) observer {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	m := mp.Meter("github.com/ownersync/ownersync/services/mapper/syncusers")
	var o observer
	o.tracer = tp.Tracer("github.com/ownersync/ownersync/services/mapper/syncusers")
	o.runs, _ = m.Int64Counter(RunsTotal, metric.WithDescription("Sync Users runs by trigger (manual, schedule, api) and outcome (succeeded, partial, failed)."))
	o.phase, _ = m.Float64Histogram(PhaseSeconds, metric.WithUnit("s"), metric.WithDescription("Time of each Sync Users phase (pull, match, write) per provider."))
	o.pulled, _ = m.Int64Counter(UsersPulledTotal, metric.WithDescription("CRM users read by Sync Users."))
	o.mappings, _ = m.Int64Gauge(MappingsByStatus, metric.WithDescription("Users by mapping status after the tenant's latest Sync Users run (mapped, conflict, error, unmapped_platform, unmapped_crm)."))
	return o
}

// startRun starts the run's root span. The run is its own trace (a background run outlives the
// request that started it); the request's span, when there is one, is linked.
func (o observer) startRun(ctx context.Context, run *domain.SyncRun) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithAttributes(attribute.String("tenant", run.Tenant),
		attribute.String("ownersync.sync.run_id", run.ID), attribute.String("ownersync.sync.trigger", run.Trigger), attribute.Bool("ownersync.sync.dry_run", run.DryRun))}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	// Every line logged with the run's context names the tenant and the run.
	ctx = logctx.With(ctx, slog.String("tenant", run.Tenant), slog.String("run_id", run.ID))
	return o.tracer.Start(ctx, "sync users", opts...)
}

// endRun counts the run by trigger and outcome and ends its span.
func (o observer) endRun(ctx context.Context, span trace.Span, run *domain.SyncRun, err error) {
	status := run.Status
	if err != nil {
		status = domain.RunFailed
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	o.runs.Add(ctx, 1, metric.WithAttributes(attribute.String("tenant", run.Tenant), attribute.String("trigger", run.Trigger), attribute.String("outcome", status)))
	span.SetAttributes(attribute.String("ownersync.sync.outcome", status))
	span.End()
}

// startPhase starts a child span of one provider's phase.
func (o observer) startPhase(ctx context.Context, provider provider.Provider, phase string) (context.Context, trace.Span) {
	ctx = logctx.With(ctx, slog.String("provider", string(provider)))
	return o.tracer.Start(ctx, "sync users "+phase+" "+string(provider), trace.WithAttributes(attribute.String("provider", string(provider)), attribute.String("ownersync.sync.phase", phase)))
}

// endPhase records the phase's duration and ends its span.
func (o observer) endPhase(ctx context.Context, span trace.Span, tenantID string, provider provider.Provider, phase string, ms int64, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	o.phase.Record(ctx, float64(ms)/1000, metric.WithAttributes(attribute.String("tenant", tenantID), attribute.String("provider", string(provider)), attribute.String("phase", phase)))
	span.End()
}

// providerDone records the users pulled and the mapping statuses of a provider's finished part.
func (o observer) providerDone(ctx context.Context, tenantID string, provider provider.Provider, c report.Counts) {
	kv := []attribute.KeyValue{attribute.String("tenant", tenantID), attribute.String("provider", string(provider))}
	o.pulled.Add(ctx, int64(c.Pulled), metric.WithAttributes(kv...))
	for status, n := range map[string]int{"mapped": c.Mapped, "conflict": c.Conflicts, "error": c.Errors,
		"unmapped_platform": c.UnmappedPlatform, "unmapped_crm": c.UnmappedCRM} {
		o.mappings.Record(ctx, int64(n), metric.WithAttributes(append(kv, attribute.String("status", status))...))
	}
}
