package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
)

// Propagator is the W3C trace-context + baggage propagator used on message headers.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Publisher publishes protobuf events to JetStream and waits for the stream's acknowledgement.
type Publisher struct {
	js      jetstream.JetStream
	tracer  trace.Tracer
	timeout time.Duration
	latency metric.Float64Histogram
}

// PublishDuration is the metric name of Observe's histogram.
const PublishDuration = "ownersync_publish_duration_seconds"

// Observe records the time each publish waits for JetStream's acknowledgement, by the subject's
// first token (crm, platform, owner, alert, dlq …) and result (stored, duplicate, error). Call it
// before the publisher is used.
func (p *Publisher) Observe(mp metric.MeterProvider) {
	p.latency, _ = mp.Meter("github.com/ownersync/ownersync/libs/natsbus").Float64Histogram(PublishDuration, metric.WithUnit("s"),
		metric.WithDescription("Publish to JetStream until the stream acknowledged it."))
}

// NewPublisher returns a publisher; timeout bounds each publish (default 5 s).
func NewPublisher(js jetstream.JetStream, tp trace.TracerProvider, timeout time.Duration) *Publisher {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Publisher{js: js, tracer: tp.Tracer("github.com/ownersync/ownersync/libs/natsbus"), timeout: timeout}
}

// ErrNoMsgID is returned when an event has no id: every ownersync message deduplicates on Nats-Msg-Id.
var ErrNoMsgID = errors.New("publish: empty message id")

// Publish marshals m and publishes it on subject with Nats-Msg-Id = msgID. It returns after
// JetStream stored the message; duplicate reports that the stream already had msgID in its
// duplicate window (nothing new was stored, which is success).
func (p *Publisher) Publish(ctx context.Context, subject, msgID string, m proto.Message) (duplicate bool, err error) {
	return p.PublishWithHeaders(ctx, subject, msgID, m, nil)
}

// PublishWithHeaders is Publish with extra message headers (they cannot replace the content and
// event type headers).
func (p *Publisher) PublishWithHeaders(ctx context.Context, subject, msgID string, m proto.Message, headers map[string]string) (duplicate bool, err error) {
	if msgID == "" {
		return false, ErrNoMsgID
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	msg.Header.Set(streams.HeaderContentType, streams.ContentTypeProto)
	msg.Header.Set(streams.HeaderEventType, string(m.ProtoReflect().Descriptor().FullName()))
	return p.PublishMsg(ctx, msg, msgID)
}

// PublishMsg publishes a prepared message (dead letters, replays) with the trace context of ctx.
func (p *Publisher) PublishMsg(ctx context.Context, msg *nats.Msg, msgID string) (duplicate bool, err error) {
	ctx, span := p.tracer.Start(ctx, "publish "+msg.Subject, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject),
			attribute.String("messaging.message.id", msgID)))
	defer span.End()
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	Propagator.Inject(ctx, propagation.HeaderCarrier(msg.Header))
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > p.timeout {
		// A caller's earlier deadline already bounds the publish (ingress sets one per request);
		// another timer would only cost.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	start := time.Now()
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if p.latency != nil {
		result := "stored"
		switch {
		case err != nil:
			result = "error"
		case ack.Duplicate:
			result = "duplicate"
		}
		root, _, _ := strings.Cut(msg.Subject, ".")
		p.latency.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("subject", root), attribute.String("result", result)))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return false, fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	span.SetAttributes(attribute.Bool("messaging.duplicate", ack.Duplicate))
	return ack.Duplicate, nil
}
