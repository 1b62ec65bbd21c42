package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/telemetry"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/harness"
)

func startBus(t *testing.T) *natsbus.Conn {
	t.Helper()
	return harness.JetStream(t).Conn
}

func userEvent(id string) *ownersyncv1.PlatformUserChanged {
	return &ownersyncv1.PlatformUserChanged{
		Meta: &ownersyncv1.EventMeta{EventId: id, TenantId: "acme", OccurredAt: timestamppb.Now()},
		User: &ownersyncv1.PlatformUser{Id: "u1", Email: "ada@example.com"},
	}
}

func TestPublishSetsHeadersAndDeduplicates(t *testing.T) {
	c := startBus(t)
	ctx := context.Background()
	pub := natsbus.NewPublisher(c.JS, nil, time.Second)
	subj := streams.PlatformUserChanged("acme")
	dup, err := pub.Publish(ctx, subj, "evt-1", userEvent("evt-1"))
	if err != nil || dup {
		t.Fatalf("first publish: dup=%v err=%v", dup, err)
	}
	dup, err = pub.Publish(ctx, subj, "evt-1", userEvent("evt-1"))
	if err != nil || !dup {
		t.Fatalf("second publish: dup=%v err=%v, want duplicate", dup, err)
	}
	if _, err := pub.Publish(ctx, subj, "", userEvent("")); !errors.Is(err, natsbus.ErrNoMsgID) {
		t.Fatalf("publish without id: %v", err)
	}
	s, _ := c.JS.Stream(ctx, streams.Platform)
	msg, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Content-Type"); got != "application/protobuf" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := msg.Header.Get("Nats-Msg-Id"); got != "evt-1" {
		t.Errorf("Nats-Msg-Id = %q", got)
	}
	if got := msg.Header.Get(streams.HeaderEventType); got != "ownersync.v1.PlatformUserChanged" {
		t.Errorf("event type = %q", got)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
}

func TestConsumeAcksByErrorClass(t *testing.T) {
	c := startBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := natsbus.NewPublisher(c.JS, nil, time.Second)
	var deadLettered sync.Map
	cons, err := natsbus.NewConsumer(ctx, c, natsbus.ConsumerOptions{
		Service: "mapper",
		Stream:  streams.Platform,
		Config: jetstream.ConsumerConfig{
			Durable:        "test-consumer",
			FilterSubjects: []string{"platform.user.changed.>"},
			AckWait:        5 * time.Second,
			MaxDeliver:     3,
		},
		Concurrency: 4,
		NakBase:     10 * time.Millisecond,
		NakMax:      50 * time.Millisecond,
		OnDeadLetter: func(_ context.Context, m *natsbus.Message, err error) {
			deadLettered.Store(m.Headers().Get("Nats-Msg-Id"), err.Error())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var okCount, flakyCount, alwaysCount atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(ctx, func(ctx context.Context, m *natsbus.Message) error {
			var ev ownersyncv1.PlatformUserChanged
			if err := m.Decode(&ev); err != nil {
				return err
			}
			switch ev.GetMeta().GetEventId() {
			case "ok":
				okCount.Add(1)
				return nil
			case "flaky":
				if flakyCount.Add(1) < 2 {
					return errors.New("transient")
				}
				return nil
			case "bad":
				return natsbus.Permanent(errors.New("unknown tenant"))
			case "always":
				alwaysCount.Add(1)
				return errors.New("still down")
			}
			return nil
		})
	}()
	harness.Eventually(t, 10*time.Second, "consumer running", cons.Running)
	for _, id := range []string{"ok", "flaky", "bad", "always"} {
		if _, err := pub.Publish(ctx, streams.PlatformUserChanged("acme"), id, userEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 10*time.Second, "ok handled", func() bool { return okCount.Load() == 1 })
	harness.Eventually(t, 10*time.Second, "flaky retried", func() bool { return flakyCount.Load() == 2 })
	harness.Eventually(t, 10*time.Second, "bad dead-lettered", func() bool { _, ok := deadLettered.Load("bad"); return ok })
	harness.Eventually(t, 10*time.Second, "always dead-lettered after MaxDeliver", func() bool { _, ok := deadLettered.Load("always"); return ok })
	if got := alwaysCount.Load(); got != 3 {
		t.Errorf("always handled %d times, want MaxDeliver=3", got)
	}
	dlq, _ := c.JS.Stream(ctx, streams.DLQ)
	info, _ := dlq.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("DLQ holds %d messages, want 2", info.State.Msgs)
	}
	last, err := dlq.GetLastMsgForSubject(ctx, streams.DeadLetter("mapper", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	if last.Header.Get(streams.HeaderDLQSubject) != "platform.user.changed.acme" || last.Header.Get(streams.HeaderDLQError) == "" {
		t.Errorf("dead letter headers = %v", last.Header)
	}
	// A payload that does not decode is permanent too.
	if _, err := c.JS.Publish(ctx, streams.PlatformUserChanged("acme"), []byte{0xff, 0xff}, jetstream.WithMsgID("garbage")); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "garbage dead-lettered", func() bool { _, ok := deadLettered.Load("garbage"); return ok })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// Permanent of an error that is already permanent does not say so twice (issue 14 item 10).
func TestPermanentWrapsOnce(t *testing.T) {
	base := errors.New("INVALID_CROSS_REFERENCE_KEY")
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{name: "plain", err: natsbus.Permanent(base), want: "permanent: INVALID_CROSS_REFERENCE_KEY"},
		{name: "twice", err: natsbus.Permanent(natsbus.Permanent(base)), want: "permanent: INVALID_CROSS_REFERENCE_KEY"},
		{name: "wrapped in between", err: natsbus.Permanent(fmt.Errorf("write contact: %w", natsbus.Permanent(base))),
			want: "write contact: permanent: INVALID_CROSS_REFERENCE_KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !natsbus.IsPermanent(tt.err) || !errors.Is(tt.err, base) {
				t.Errorf("%v: IsPermanent %v, Is(base) %v; want both", tt.err, natsbus.IsPermanent(tt.err), errors.Is(tt.err, base))
			}
		})
	}
}

// TestHandlerLogLinesNameTheMessage: a line a handler logs with its context, through any logger of
// the service, carries the message's tenant, provider, event id and trace id; and so do the
// consumer's own lines about the message.
func TestHandlerLogLinesNameTheMessage(t *testing.T) {
	c := startBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf harness.Buffer
	tel, err := telemetry.Setup(ctx, telemetry.Options{Service: "writer", LogOutput: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	cons, err := natsbus.NewConsumer(ctx, c, natsbus.ConsumerOptions{
		Service: "writer", Stream: streams.CRM, Logger: tel.Logger, Tracer: tel.TracerProvider,
		Config:  jetstream.ConsumerConfig{Durable: "log-test", FilterSubjects: []string{"crm.owner.changed.>"}, AckWait: 5 * time.Second, MaxDeliver: 5},
		NakBase: 10 * time.Millisecond, NakMax: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	handlerLog := tel.Logger.With("component", "engine") // another logger of the service
	var calls atomic.Int32
	go func() {
		_ = cons.Run(ctx, func(ctx context.Context, m *natsbus.Message) error {
			handlerLog.InfoContext(ctx, "judged the change")
			if calls.Add(1) == 1 {
				return errors.New("crm unavailable") // the consumer logs the redelivery
			}
			return nil
		})
	}()
	harness.Eventually(t, 10*time.Second, "consumer running", cons.Running)
	subj := streams.CrmOwnerChanged("acme", provider.HubSpot)
	if _, err := c.JS.Publish(ctx, subj, []byte("x"), jetstream.WithMsgID("evt-42")); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "handled twice", func() bool { return calls.Load() == 2 })
	cancel()
	var judged, redelivering int
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		switch m["msg"] {
		case "judged the change":
			judged++
		case "handler failed; redelivering":
			redelivering++
		default:
			continue
		}
		if m["tenant"] != "acme" || m["provider"] != "hubspot" || m["event_id"] != "evt-42" || m["trace_id"] == nil {
			t.Errorf("line lacks the message's tenant, provider, event id or trace id: %s", l)
		}
	}
	if judged != 2 || redelivering != 1 {
		t.Errorf("%d handler lines and %d redelivery lines, want 2 and 1:\n%s", judged, redelivering, buf.String())
	}
}
