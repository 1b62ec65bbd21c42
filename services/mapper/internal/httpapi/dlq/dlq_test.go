package dlq_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi/dlq"
	"github.com/ownersync/ownersync/workbench/harness"
)

// deadLetterer runs a real natsbus consumer (service "writer") whose handler fails permanently on
// first delivery and succeeds on a replay, so the DLQ holds what production puts there.
type deadLetterer struct {
	mu       sync.Mutex
	dead     map[string]bool        // by original Nats-Msg-Id
	replayed map[string]replayedMsg // by Nats-Msg-Id of the replay
}

type replayedMsg struct {
	subject, replayOf, eventType string
	data                         string
}

func runConsumer(t *testing.T, ctx context.Context, c *natsbus.Conn, d *deadLetterer) {
	t.Helper()
	cons, err := natsbus.NewConsumer(ctx, c, natsbus.ConsumerOptions{
		Service: "writer",
		Stream:  streams.CRM,
		Config: jetstream.ConsumerConfig{
			Durable:        "writer-owners",
			FilterSubjects: []string{"crm.owner.changed.>"},
			AckWait:        5 * time.Second,
			MaxDeliver:     3,
		},
		Concurrency: 2,
		NakBase:     10 * time.Millisecond,
		NakMax:      20 * time.Millisecond,
		OnDeadLetter: func(_ context.Context, m *natsbus.Message, _ error) {
			d.mu.Lock()
			d.dead[m.Headers().Get(jetstream.MsgIDHeader)] = true
			d.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- cons.Run(ctx, func(_ context.Context, m *natsbus.Message) error {
			h := m.Headers()
			if of := h.Get(dlq.HeaderReplayOf); of != "" {
				d.mu.Lock()
				d.replayed[h.Get(jetstream.MsgIDHeader)] = replayedMsg{subject: m.Subject(), replayOf: of,
					eventType: h.Get(streams.HeaderEventType), data: string(m.Data())}
				d.mu.Unlock()
				return nil
			}
			return natsbus.Permanent(errors.New("INVALID_CROSS_REFERENCE_KEY: owner id is invalid"))
		})
	}()
	t.Cleanup(func() { <-done })
	harness.Eventually(t, 10*time.Second, "consumer running", cons.Running)
}

func ownerChange(tenant, id string) *ownersyncv1.CrmOwnerChanged {
	return &ownersyncv1.CrmOwnerChanged{
		Meta:     &ownersyncv1.EventMeta{EventId: id, TenantId: tenant, OccurredAt: timestamppb.Now()},
		RecordId: "003000000000001AAA", OwnerId: "005000000000001AAA",
	}
}

func TestListAndReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := harness.JetStream(t).Conn
	d := &deadLetterer{dead: map[string]bool{}, replayed: map[string]replayedMsg{}}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runConsumer(t, runCtx, c, d)

	pub := natsbus.NewPublisher(c.JS, nil, 5*time.Second)
	events := []struct{ tenant, provider, id string }{
		{"acme", "salesforce", "e1"}, {"globex", "salesforce", "g1"}, {"acme", "hubspot", "e2"}, {"acme", "salesforce", "e3"},
	}
	for _, ev := range events {
		if _, err := pub.Publish(ctx, streams.CrmOwnerChanged(ev.tenant, provider.Provider(ev.provider)), ev.id, ownerChange(ev.tenant, ev.id)); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 10*time.Second, "4 dead letters", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.dead) == 4 })
	// A dead letter of another service on the same tenant.
	other := natsbus.NewPublisher(c.JS, nil, 5*time.Second)
	nm := natsMsg(streams.DeadLetter("notifier", "acme"), "report.sync.acme", "SYNC")
	if _, err := other.PublishMsg(ctx, nm, "dlq:notifier:SYNC:1"); err != nil {
		t.Fatal(err)
	}

	q := dlq.New(c.JS)
	all, err := q.List(ctx, "acme", domain.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, l := range all {
		subjects = append(subjects, l.Service+" "+l.Subject+" "+l.MsgID)
		if l.Service == "writer" && (l.Error == "" || l.Stream != streams.CRM || l.StreamSequence == 0 || l.At.IsZero() || l.Size == 0) {
			t.Errorf("dead letter described incompletely: %+v", l)
		}
	}
	wantAll := []string{
		"writer crm.owner.changed.acme.salesforce e1",
		"writer crm.owner.changed.acme.hubspot e2",
		"writer crm.owner.changed.acme.salesforce e3",
		"notifier report.sync.acme ",
	}
	if d := cmp.Diff(sortedCopy(wantAll), sortedCopy(subjects)); d != "" {
		t.Errorf("acme's dead letters (-want +got):\n%s", d)
	}
	byService, _ := q.List(ctx, "acme", domain.DLQFilter{Service: "notifier"})
	if len(byService) != 1 || byService[0].Subject != "report.sync.acme" {
		t.Errorf("service filter = %+v", byService)
	}
	bySubject, _ := q.List(ctx, "acme", domain.DLQFilter{Subject: "crm.owner.changed.*.salesforce"})
	if len(bySubject) != 2 {
		t.Errorf("subject filter = %+v", bySubject)
	}
	limited, _ := q.List(ctx, "acme", domain.DLQFilter{Limit: 2})
	if len(limited) != 2 || limited[0].ID >= limited[1].ID {
		t.Errorf("limit 2 = %+v, want the two oldest", limited)
	}
	globex, _ := q.List(ctx, "globex", domain.DLQFilter{})
	if len(globex) != 1 || globex[0].MsgID != "g1" {
		t.Fatalf("globex's dead letters = %+v", globex)
	}

	// Replay by ids: acme's e1 plus globex's letter (must be ignored) and an unknown id.
	var e1 domain.DeadLetter
	for _, l := range all {
		if l.MsgID == "e1" {
			e1 = l
		}
	}
	res, err := q.Replay(ctx, "acme", domain.DLQFilter{IDs: []uint64{e1.ID, globex[0].ID, 999}})
	if err != nil {
		t.Fatal(err)
	}
	wantID := "replay:" + strconv.FormatUint(e1.ID, 10)
	if d := cmp.Diff(domain.ReplayResult{Replayed: []domain.ReplayedLetter{{ID: e1.ID, Subject: "crm.owner.changed.acme.salesforce", MsgID: wantID}}}, res); d != "" {
		t.Errorf("replay by ids (-want +got):\n%s", d)
	}
	harness.Eventually(t, 10*time.Second, "e1 consumed again", func() bool { d.mu.Lock(); defer d.mu.Unlock(); _, ok := d.replayed[wantID]; return ok })
	d.mu.Lock()
	got := d.replayed[wantID]
	d.mu.Unlock()
	if got.subject != "crm.owner.changed.acme.salesforce" || got.replayOf != strconv.FormatUint(e1.ID, 10) || got.eventType == "" {
		t.Errorf("replayed message = %+v", got)
	}
	// The original payload went back unchanged.
	s, _ := c.JS.Stream(ctx, streams.CRM)
	orig, err := s.GetMsg(ctx, e1.StreamSequence)
	if err != nil {
		t.Fatal(err)
	}
	if got.data != string(orig.Data) {
		t.Errorf("replayed payload differs from the original")
	}
	// The replay carries no dead-letter headers.
	last, err := s.GetLastMsgForSubject(ctx, "crm.owner.changed.acme.salesforce")
	if err != nil {
		t.Fatal(err)
	}
	for k := range last.Header {
		if len(k) > 14 && k[:14] == "Ownersync-Dlq-" {
			t.Errorf("replayed message keeps header %s", k)
		}
	}
	if last.Header.Get(jetstream.MsgIDHeader) != wantID {
		t.Errorf("Nats-Msg-Id = %q, want %q", last.Header.Get(jetstream.MsgIDHeader), wantID)
	}
	// e1 left the DLQ; globex's did not.
	if _, err := q.List(ctx, "globex", domain.DLQFilter{}); err != nil {
		t.Fatal(err)
	}
	dlqs, _ := c.JS.Stream(ctx, streams.DLQ)
	if _, err := dlqs.GetMsg(ctx, e1.ID); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("e1 still in the DLQ: %v", err)
	}
	if _, err := dlqs.GetMsg(ctx, globex[0].ID); err != nil {
		t.Errorf("globex's dead letter was touched: %v", err)
	}
	// Replaying the same id again finds nothing; republishing the same replay id is dropped by
	// the target stream's duplicate window (what makes a replay whose delete failed idempotent).
	res, _ = q.Replay(ctx, "acme", domain.DLQFilter{IDs: []uint64{e1.ID}})
	if len(res.Replayed)+len(res.Failed) != 0 {
		t.Errorf("second replay = %+v, want nothing", res)
	}
	ack, err := c.JS.Publish(ctx, "crm.owner.changed.acme.salesforce", orig.Data, jetstream.WithMsgID(wantID))
	if err != nil || !ack.Duplicate {
		t.Errorf("republishing %s: duplicate=%v err=%v", wantID, ack != nil && ack.Duplicate, err)
	}

	// Replay by service: writer's remaining acme letters (e2, e3), not notifier's.
	res, err = q.Replay(ctx, "acme", domain.DLQFilter{Service: "writer", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replayed) != 2 || len(res.Failed) != 0 {
		t.Fatalf("replay by service = %+v", res)
	}
	harness.Eventually(t, 10*time.Second, "e2 and e3 consumed again", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return len(d.replayed) == 3 })
	left, _ := q.List(ctx, "acme", domain.DLQFilter{})
	if len(left) != 1 || left[0].Service != "notifier" {
		t.Errorf("left in acme's DLQ = %+v, want notifier's only", left)
	}
}

// TestReplayRefusesForeignSubject: a dead letter on acme's DLQ subject whose original subject is
// another tenant's is never republished there.
func TestReplayRefusesForeignSubject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := harness.JetStream(t).Conn
	pub := natsbus.NewPublisher(c.JS, nil, 5*time.Second)
	for i, subj := range []string{"crm.owner.changed.globex.salesforce", ""} {
		if _, err := pub.PublishMsg(ctx, natsMsg(streams.DeadLetter("writer", "acme"), subj, "CRM"), "forged-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	q := dlq.New(c.JS)
	res, err := q.Replay(ctx, "acme", domain.DLQFilter{Service: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replayed) != 0 || len(res.Failed) != 2 {
		t.Errorf("replay = %+v, want both refused", res)
	}
	s, _ := c.JS.Stream(ctx, streams.CRM)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 0 {
		t.Errorf("CRM stream got %d messages, want 0", info.State.Msgs)
	}
	left, _ := q.List(ctx, "acme", domain.DLQFilter{})
	if len(left) != 2 {
		t.Errorf("refused letters must stay in the DLQ, have %d", len(left))
	}
	if _, err := q.List(ctx, "Bad Tenant", domain.DLQFilter{}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("invalid tenant = %v, want ErrInvalid", err)
	}
}
