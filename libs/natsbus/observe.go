package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ownersync/ownersync/libs/streams"
)

// JetStream metric names (dashboards and alert rules refer to them).
const (
	ConsumerPending     = "ownersync_consumer_pending_messages"
	ConsumerAckPending  = "ownersync_consumer_ack_pending_messages"
	ConsumerRedelivered = "ownersync_consumer_redelivered_messages"
	DLQMessages         = "ownersync_dlq_messages"
)

// sampleTimeout bounds one consumer or stream info request made while metrics are collected.
const sampleTimeout = 2 * time.Second

// observeConsumer samples the consumer's info each time metrics are collected (a scrape or an
// OTLP export): messages not yet delivered, delivered but not acknowledged, and redelivered and
// still unacknowledged.
func observeConsumer(meter metric.Meter, cons jetstream.Consumer, stream, durable string) error {
	pending, err1 := meter.Int64ObservableGauge(ConsumerPending, metric.WithDescription("Messages of the stream not yet delivered to the consumer (consumer lag)."))
	ackPending, err2 := meter.Int64ObservableGauge(ConsumerAckPending, metric.WithDescription("Messages delivered to the consumer and not yet acknowledged."))
	redelivered, err3 := meter.Int64ObservableGauge(ConsumerRedelivered, metric.WithDescription("Messages redelivered and not yet acknowledged."))
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return fmt.Errorf("consumer metrics: %w", err)
		}
	}
	attrs := metric.WithAttributes(attribute.String("consumer", durable), attribute.String("stream", stream))
	_, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
		defer cancel()
		info, err := cons.Info(ctx)
		if err != nil {
			return nil // not observed this time; NATS being away shows on readiness
		}
		o.ObserveInt64(pending, int64(info.NumPending), attrs)
		o.ObserveInt64(ackPending, int64(info.NumAckPending), attrs)
		o.ObserveInt64(redelivered, int64(info.NumRedelivered), attrs)
		return nil
	}, pending, ackPending, redelivered)
	if err != nil {
		return fmt.Errorf("consumer metrics: %w", err)
	}
	return nil
}

// ObserveDLQ reports the messages in the dead-letter stream under dlq.<service>.> each time
// metrics are collected.
func ObserveDLQ(mp metric.MeterProvider, js jetstream.JetStream, service string) error {
	meter := mp.Meter("github.com/ownersync/ownersync/libs/natsbus")
	depth, err := meter.Int64ObservableGauge(DLQMessages, metric.WithDescription("Dead letters held in the DLQ stream, by the service that dead-lettered them."))
	if err != nil {
		return fmt.Errorf("dlq metric: %w", err)
	}
	attrs := metric.WithAttributes(attribute.String("service", service))
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, sampleTimeout)
		defer cancel()
		s, err := js.Stream(ctx, streams.DLQ)
		if err != nil {
			return nil
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(streams.DeadLetter(service, ">")))
		if err != nil {
			return nil
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		o.ObserveInt64(depth, int64(n), attrs)
		return nil
	}, depth)
	if err != nil {
		return fmt.Errorf("dlq metric: %w", err)
	}
	return nil
}
