package natsbus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/telemetry"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestConsumerAndDLQMetrics: pending and ack-pending come from the consumer's info, the DLQ depth
// from the dead-letter stream, the publish latency from each publish; and a redelivery's log line
// carries the message's trace id, tenant, provider and event id.
func TestConsumerAndDLQMetrics(t *testing.T) {
	c := startBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	tel, err := telemetry.Setup(ctx, telemetry.Options{Service: "writer", LogOutput: &logs})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	pub := natsbus.NewPublisher(c.JS, tel.TracerProvider, time.Second)
	pub.Observe(tel.MeterProvider)
	cons, err := natsbus.NewConsumer(ctx, c, natsbus.ConsumerOptions{
		Service: "writer", Stream: streams.CRM,
		Config: jetstream.ConsumerConfig{Durable: "observe-test", FilterSubjects: []string{"crm.owner.changed.>"},
			AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 10},
		Concurrency: 4,
		NakBase:     time.Hour, Logger: tel.Logger, Tracer: tel.TracerProvider, Meter: tel.MeterProvider,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"e1", "e2", "e3"} {
		if _, err := pub.Publish(ctx, streams.CrmOwnerChanged("acme", "hubspot"), id, userEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"d1", "d2"} {
		msg := nats.NewMsg(streams.DeadLetter("writer", "acme"))
		msg.Data = []byte("x")
		if _, err := pub.PublishMsg(ctx, msg, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := natsbus.ObserveDLQ(tel.MeterProvider, c.JS, "writer"); err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		rec := httptest.NewRecorder()
		tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	body := scrape()
	for _, want := range []string{
		`ownersync_consumer_pending_messages{consumer="observe-test",stream="CRM"} 3`,
		`ownersync_consumer_ack_pending_messages{consumer="observe-test",stream="CRM"} 0`,
		`ownersync_dlq_messages{service="writer"} 2`,
		`ownersync_publish_duration_seconds_count{result="stored",subject="crm"} 3`,
		`ownersync_publish_duration_seconds_count{result="stored",subject="dlq"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// One message failing transiently: delivered and held for redelivery, it stays ack-pending;
	// the log line about it carries its identity.
	fail := make(chan struct{}, 3)
	go func() {
		rerr := cons.Run(ctx, func(ctx context.Context, m *natsbus.Message) error {
			fail <- struct{}{}
			if m.Headers().Get(nats.MsgIdHdr) == "e2" {
				return context.DeadlineExceeded
			}
			return nil
		})
		if rerr != nil {
			t.Error(rerr)
		}
	}()
	for range 3 {
		select {
		case <-fail:
		case <-time.After(10 * time.Second):
			t.Fatal("messages not handled")
		}
	}
	harness.Eventually(t, 10*time.Second, "the nak logged", func() bool { return strings.Contains(logs.String(), "redelivering") })
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "redelivering") {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	for _, k := range []string{"trace_id", "tenant", "provider", "event_id"} {
		if line[k] == nil || line[k] == "" {
			t.Errorf("log line lacks %s: %v", k, line)
		}
	}
	if line["event_id"] != "e2" || line["tenant"] != "acme" || line["provider"] != "hubspot" {
		t.Errorf("log line = %v", line)
	}
	harness.Eventually(t, 10*time.Second, "pending drained, one held", func() bool {
		b := scrape()
		return strings.Contains(b, `ownersync_consumer_pending_messages{consumer="observe-test",stream="CRM"} 0`) &&
			strings.Contains(b, `ownersync_consumer_ack_pending_messages{consumer="observe-test",stream="CRM"} 1`)
	})
}
