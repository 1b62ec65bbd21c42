package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/telemetry/logctx"
	"github.com/ownersync/ownersync/libs/tenant"
)

// PermanentError marks a handler error that redelivery cannot fix (bad payload, unknown tenant,
// a CRM saying the value is invalid). The consume loop terminates the message and dead-letters it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as permanent; nil stays nil, and an error that already is permanent is
// returned as it is, so that its text says "permanent: " once.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is (or wraps) a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryError asks for redelivery after a specific delay (a CRM's Retry-After, a paused tenant).
type RetryError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryError) Error() string { return fmt.Sprintf("retry in %s: %v", e.Delay, e.Err) }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter wraps err with a redelivery delay.
func RetryAfter(err error, d time.Duration) error { return &RetryError{Err: err, Delay: d} }

// Message is a delivered message with its metadata.
type Message struct {
	jetstream.Msg
	Meta *jetstream.MsgMetadata
}

// Tenant is the tenant token of the message's subject.
func (m *Message) Tenant() string { return streams.TenantOf(m.Subject()) }

// Decode unmarshals the protobuf payload; a payload that does not decode is a permanent error.
func (m *Message) Decode(into proto.Message) error {
	if err := proto.Unmarshal(m.Data(), into); err != nil {
		return Permanent(fmt.Errorf("decode %s: %w", into.ProtoReflect().Descriptor().FullName(), err))
	}
	return nil
}

// Handler processes one message. Its error decides the ack: nil → Ack; Permanent → Term plus a
// dead-letter copy; RetryAfter → NakWithDelay(delay); anything else → NakWithDelay(backoff).
// A handler must be idempotent: JetStream delivers at least once.
type Handler func(ctx context.Context, m *Message) error

// DeadLetterFunc records a dead letter where the admin sees it (in addition to the DLQ copy).
type DeadLetterFunc func(ctx context.Context, m *Message, err error)

// ConsumerOptions declare a durable pull consumer and how its loop runs.
type ConsumerOptions struct {
	// Service names the consuming service; dead letters go to dlq.<service>.<tenant>.
	Service string
	// Stream is the stream the consumer reads.
	Stream string
	// Config is the consumer's contract: Durable, FilterSubjects, AckWait, MaxDeliver, BackOff,
	// MaxAckPending. AckPolicy is always explicit.
	Config jetstream.ConsumerConfig
	// Concurrency is how many messages are handled at once (default 1).
	Concurrency int
	// NakBase and NakMax bound the exponential redelivery delay of transient errors (default 1 s, 1 min).
	NakBase, NakMax time.Duration
	// DrainTimeout bounds the wait for in-flight handlers at shutdown (default 10 s).
	DrainTimeout time.Duration
	// OnDeadLetter is called after a message was dead-lettered.
	OnDeadLetter DeadLetterFunc
	// Logger, Tracer and Meter; nil uses discard/no-op/global.
	Logger *slog.Logger
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
}

// Consumer is a declared durable consumer and its loop.
type Consumer struct {
	o       ConsumerOptions
	cons    jetstream.Consumer
	pub     *Publisher
	log     *slog.Logger
	tracer  trace.Tracer
	running atomic.Bool

	outcomes metric.Int64Counter
	duration metric.Float64Histogram
}

// NewConsumer creates or updates the durable consumer on the stream.
func NewConsumer(ctx context.Context, c *Conn, o ConsumerOptions) (*Consumer, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.NakBase <= 0 {
		o.NakBase = time.Second
	}
	if o.NakMax <= 0 {
		o.NakMax = time.Minute
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tracer == nil {
		o.Tracer = otel.GetTracerProvider()
	}
	if o.Meter == nil {
		o.Meter = otel.GetMeterProvider()
	}
	o.Config.AckPolicy = jetstream.AckExplicitPolicy
	if o.Config.MaxAckPending < o.Concurrency {
		o.Config.MaxAckPending = o.Concurrency
	}
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, o.Stream, o.Config)
	if err != nil {
		return nil, fmt.Errorf("declare consumer %s on %s: %w", o.Config.Durable, o.Stream, err)
	}
	meter := o.Meter.Meter("github.com/ownersync/ownersync/libs/natsbus")
	outcomes, _ := meter.Int64Counter("ownersync_messages_handled_total",
		metric.WithDescription("messages handled by outcome (ack, term, nak, dead_letter)"))
	duration, _ := meter.Float64Histogram("ownersync_message_handle_seconds",
		metric.WithDescription("time spent in the handler"), metric.WithUnit("s"))
	if err := observeConsumer(meter, cons, o.Stream, o.Config.Durable); err != nil {
		return nil, err
	}
	return &Consumer{
		o:        o,
		cons:     cons,
		pub:      NewPublisher(c.JS, o.Tracer, 5*time.Second),
		log:      o.Logger.With("consumer", o.Config.Durable),
		tracer:   o.Tracer.Tracer("github.com/ownersync/ownersync/libs/natsbus"),
		outcomes: outcomes,
		duration: duration,
	}, nil
}

// Running reports whether the loop is pulling messages (a readiness check).
func (c *Consumer) Running() bool { return c.running.Load() }

// Ready is a readiness check for health.Checker.
func (c *Consumer) Ready(context.Context) error {
	if !c.Running() {
		return fmt.Errorf("consumer %s not running", c.o.Config.Durable)
	}
	return nil
}

// Run pulls and handles messages until ctx is cancelled, then stops pulling and waits (up to
// DrainTimeout) for in-flight handlers, which keep a context that is not cancelled with ctx.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	it, err := c.cons.Messages(jetstream.PullMaxMessages(2 * c.o.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.o.Config.Durable, err)
	}
	c.running.Store(true)
	defer c.running.Store(false)
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()

	handleCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				break
			}
			c.log.Warn("pull failed", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.handle(handleCtx, msg, h)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.o.DrainTimeout):
		c.log.Warn("in-flight handlers did not finish before the drain timeout; they will be redelivered")
		cancelHandlers()
		<-done
	}
	return nil
}

func (c *Consumer) handle(ctx context.Context, raw jetstream.Msg, h Handler) {
	meta, err := raw.Metadata()
	if err != nil {
		c.log.Error("message without jetstream metadata", "subject", raw.Subject(), "error", err)
		_ = raw.Term()
		return
	}
	m := &Message{Msg: raw, Meta: meta}
	ctx = context.WithValue(ctx, deliveriesKey{}, meta.NumDelivered)
	ctx = Propagator.Extract(ctx, propagation.HeaderCarrier(raw.Headers()))
	// Every line about this message says which tenant, provider and event it is, whichever logger
	// of the service writes it with the handler's context; the trace id comes from ctx too.
	ids := []slog.Attr{slog.String("tenant", m.Tenant()), slog.String("provider", string(streams.ProviderOf(raw.Subject()))),
		slog.String("event_id", raw.Headers().Get(nats.MsgIdHdr))}
	ctx = logctx.With(ctx, ids...)
	log := slog.New(c.log.Handler().WithAttrs(ids)) // the consumer's own lines, with any handler
	ctx, span := c.tracer.Start(ctx, "process "+raw.Subject(), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", raw.Subject()),
			attribute.String("messaging.consumer.group.name", c.o.Config.Durable),
			attribute.Int64("messaging.nats.delivered", int64(meta.NumDelivered))))
	defer span.End()

	stopProgress := c.keepInProgress(raw)
	start := time.Now()
	herr := h(ctx, m)
	stopProgress()
	c.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("consumer", c.o.Config.Durable)))

	outcome := "ack"
	switch {
	case herr == nil:
		if err := raw.Ack(); err != nil {
			log.WarnContext(ctx, "ack failed; the message will be redelivered", "subject", raw.Subject(), "error", err)
		}
	case IsPermanent(herr) || c.lastDelivery(meta):
		outcome = "dead_letter"
		span.RecordError(herr)
		span.SetStatus(codes.Error, herr.Error())
		if !IsPermanent(herr) {
			herr = fmt.Errorf("gave up after %d deliveries: %w", meta.NumDelivered, herr)
		}
		if err := c.deadLetter(ctx, m, herr); err != nil {
			// Keep the message rather than lose it: redeliver once the DLQ is reachable.
			outcome = "nak"
			log.ErrorContext(ctx, "dead-letter copy failed; message kept for redelivery", "subject", raw.Subject(), "error", err, "cause", herr)
			_ = raw.NakWithDelay(c.o.NakBase)
			break
		}
		_ = raw.TermWithReason(truncate(herr.Error(), 200))
		log.ErrorContext(ctx, "message dead-lettered", "subject", raw.Subject(), "stream_seq", meta.Sequence.Stream,
			"deliveries", meta.NumDelivered, "error", herr)
		if c.o.OnDeadLetter != nil {
			c.o.OnDeadLetter(ctx, m, herr)
		}
	default:
		outcome = "nak"
		delay := c.nakDelay(meta.NumDelivered)
		var re *RetryError
		if errors.As(herr, &re) && re.Delay > 0 {
			delay = re.Delay
		}
		log.WarnContext(ctx, "handler failed; redelivering", "subject", raw.Subject(), "deliveries", meta.NumDelivered,
			"delay", delay.String(), "error", herr)
		_ = raw.NakWithDelay(delay)
	}
	c.outcomes.Add(ctx, 1, metric.WithAttributes(attribute.String("consumer", c.o.Config.Durable), attribute.String("outcome", outcome)))
}

type deliveriesKey struct{}

// Deliveries returns how many times the message being handled has been delivered (1 on the first
// delivery), or 0 outside a handler. Handlers use it to bound waits that redelivery implements.
func Deliveries(ctx context.Context) uint64 {
	n, _ := ctx.Value(deliveriesKey{}).(uint64)
	return n
}

// lastDelivery reports whether a transient failure on this delivery would exhaust MaxDeliver:
// the server would then drop the message, so the loop dead-letters it instead.
func (c *Consumer) lastDelivery(meta *jetstream.MsgMetadata) bool {
	return c.o.Config.MaxDeliver > 0 && meta.NumDelivered >= uint64(c.o.Config.MaxDeliver)
}

func (c *Consumer) nakDelay(delivered uint64) time.Duration {
	d := c.o.NakBase
	for i := uint64(1); i < delivered && d < c.o.NakMax; i++ {
		d *= 2
	}
	d = min(d, c.o.NakMax)
	// ±20 % jitter so that a burst of failures does not come back as a burst.
	j := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + j
}

// keepInProgress tells the server the message is still being worked on while a slow handler
// (a writer waiting for its batch) runs, so AckWait need not cover the slowest CRM call. It arms
// one timer per message (no goroutine until the timer fires), which matters at thousands of
// messages in flight.
func (c *Consumer) keepInProgress(m jetstream.Msg) (stop func()) {
	wait := c.o.Config.AckWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	every := wait / 3
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		_ = m.InProgress()
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(every)
		}
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

func (c *Consumer) deadLetter(ctx context.Context, m *Message, cause error) error {
	tid := m.Tenant()
	if tid == "" || !tenant.ValidID(tid) {
		tid = "_unknown"
	}
	dl := nats.NewMsg(streams.DeadLetter(c.o.Service, tid))
	dl.Data = m.Data()
	for k, v := range m.Headers() {
		if k == jetstream.MsgIDHeader {
			continue
		}
		dl.Header[k] = append([]string(nil), v...)
	}
	id := m.Headers().Get(jetstream.MsgIDHeader)
	dl.Header.Set(streams.HeaderDLQSubject, m.Subject())
	dl.Header.Set(streams.HeaderDLQStream, m.Meta.Stream)
	dl.Header.Set(streams.HeaderDLQSequence, strconv.FormatUint(m.Meta.Sequence.Stream, 10))
	dl.Header.Set(streams.HeaderDLQError, truncate(cause.Error(), 2000))
	dl.Header.Set(streams.HeaderDLQService, c.o.Service)
	dl.Header.Set(streams.HeaderDLQMsgID, id)
	dl.Header.Set(streams.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	_, err := c.pub.PublishMsg(ctx, dl, "dlq:"+c.o.Service+":"+m.Meta.Stream+":"+strconv.FormatUint(m.Meta.Sequence.Stream, 10))
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
