package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// Writer metric names (dashboards and alert rules refer to them).
const (
	ChangesTotal       = "ownersync_writer_changes_total"
	BatchLingerSeconds = "ownersync_writer_batch_linger_seconds"
	BatchSize          = "ownersync_writer_batch_records"
	CRMWritesTotal     = "ownersync_writer_crm_writes_total"
)

// BatchTraceIDKey is the attribute a change's span gets with the trace id of the batch that
// wrote it; the batch span links back to each change.
const BatchTraceIDKey = "ownersync.batch.trace_id"

// observed counts each change by verdict (its history outcome) and traces, times and logs the
// CRM writes: it sits between the engine and the batcher (Submit) and around the flush.
type observed struct {
	bt      *batcher.Batcher[crmwrite.BatchKey, crmwrite.Write, crmwrite.Written]
	tracer  trace.Tracer
	log     *slog.Logger
	changes metric.Int64Counter
	linger  metric.Float64Histogram
	size    metric.Int64Histogram
	writes  metric.Int64Counter

	mu      sync.Mutex
	pending map[pendingKey]pendingWrite
}

type pendingKey struct {
	batch  crmwrite.BatchKey
	record string
}

// pendingWrite is what Submit saw of a write: when, and the span of the change that asked for it.
type pendingWrite struct {
	at   time.Time
	span trace.Span
}

func newObserved(mp metric.MeterProvider, tp trace.TracerProvider, log *slog.Logger) *observed {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/ownersync/ownersync/services/writer")
	o := &observed{tracer: tp.Tracer("github.com/ownersync/ownersync/services/writer"), log: log, pending: map[pendingKey]pendingWrite{}}
	o.changes, _ = m.Int64Counter(ChangesTotal, metric.WithDescription("Owner changes by origin and verdict (applied, fallback, skipped, echo, stale, duplicate, unchanged, superseded, not_found, failed, redelivered)."))
	o.linger, _ = m.Float64Histogram(BatchLingerSeconds, metric.WithUnit("s"), metric.WithDescription("Time the oldest write of a batch waited before the batch was flushed."))
	o.size, _ = m.Int64Histogram(BatchSize, metric.WithUnit("{record}"), metric.WithDescription("Writes per CRM batch."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 25, 50, 100, 200))
	o.writes, _ = m.Int64Counter(CRMWritesTotal, metric.WithDescription("CRM record writes by result (written, superseded, failed)."))
	return o
}

// Record counts the change's verdict and passes the history entry on.
func (o *observed) history(h writeback.History) writeback.History {
	return historyFunc(func(ctx context.Context, e writeback.Entry) error {
		o.changes.Add(ctx, 1, metric.WithAttributes(attribute.String("tenant", e.Tenant), attribute.String("provider", string(e.Provider)),
			attribute.String("origin", string(e.Origin)), attribute.String("verdict", string(e.Outcome))))
		return h.Record(ctx, e)
	})
}

type historyFunc func(ctx context.Context, e writeback.Entry) error

func (f historyFunc) Record(ctx context.Context, e writeback.Entry) error { return f(ctx, e) }

// Submit remembers when and from which change the write came, then queues it.
func (o *observed) Submit(ctx context.Context, key crmwrite.BatchKey, recordID string, w crmwrite.Write) *batcher.Future[crmwrite.Written] {
	o.mu.Lock()
	o.pending[pendingKey{key, recordID}] = pendingWrite{at: time.Now(), span: trace.SpanFromContext(ctx)}
	o.mu.Unlock()
	return o.bt.Submit(ctx, key, recordID, w)
}

type flushFunc = func(ctx context.Context, k crmwrite.BatchKey, b []batcher.Item[crmwrite.Write]) ([]batcher.Result[crmwrite.Written], error)

// flush wraps the CRM flush in a batch span linked to every change it carries (each change's span
// gets the batch's trace id), records the batch's linger and size, and logs each write at debug.
func (o *observed) flush(next flushFunc) flushFunc {
	return func(ctx context.Context, k crmwrite.BatchKey, b []batcher.Item[crmwrite.Write]) ([]batcher.Result[crmwrite.Written], error) {
		now := time.Now()
		oldest := now
		links := make([]trace.Link, 0, len(b))
		var spans []trace.Span
		o.mu.Lock()
		for _, it := range b {
			pk := pendingKey{k, it.RecordID}
			if p, ok := o.pending[pk]; ok {
				delete(o.pending, pk)
				if p.at.Before(oldest) {
					oldest = p.at
				}
				if sc := p.span.SpanContext(); sc.IsValid() {
					links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("ownersync.record_id", it.RecordID)}})
					spans = append(spans, p.span)
				}
			}
		}
		o.mu.Unlock()
		kv := []attribute.KeyValue{attribute.String("tenant", k.Tenant), attribute.String("provider", string(k.Provider)),
			attribute.String("record_type", string(k.RecordType))}
		o.linger.Record(ctx, now.Sub(oldest).Seconds(), metric.WithAttributes(kv...))
		o.size.Record(ctx, int64(len(b)), metric.WithAttributes(kv...))

		ctx, span := o.tracer.Start(ctx, "crm write batch "+string(k.Provider), trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithLinks(links...), trace.WithAttributes(append(kv, attribute.Int("ownersync.batch.size", len(b)))...))
		defer span.End()
		batchTrace := span.SpanContext().TraceID().String()
		for _, s := range spans {
			s.SetAttributes(attribute.String(BatchTraceIDKey, batchTrace))
		}
		res, err := next(ctx, k, b)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		for i, it := range b {
			result := "written"
			var itemErr error = err
			if err == nil && i < len(res) {
				itemErr = res[i].Err
				if res[i].Superseded {
					result = "superseded"
				}
			}
			if itemErr != nil {
				result = "failed"
			}
			o.writes.Add(ctx, 1, metric.WithAttributes(append(kv, attribute.String("result", result))...))
			o.log.DebugContext(ctx, "crm write", "tenant", k.Tenant, "provider", string(k.Provider), "record_type", string(k.RecordType),
				"record_id", it.RecordID, "owner_id", it.Value.OwnerID, "event_id", it.Value.TraceID, "result", result, "error", errString(itemErr))
		}
		return res, err
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
