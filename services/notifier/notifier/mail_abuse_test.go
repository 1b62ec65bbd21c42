package notifier_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/notifier/internal/render"
	"github.com/ownersync/ownersync/services/notifier/notifier"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// TestReportMailIsBounded covers issue 13 item 10 for reports against the running notifier: a dry
// run's report is emailed only when the run asks for it, and a report list longer than the cap
// (OWNERSYNC_MAX_RECIPIENTS) gets one email to the first recipients only.
func TestReportMailIsBounded(t *testing.T) {
	var recipients []string
	for i := range 60 {
		recipients = append(recipients, fmt.Sprintf("r%02d@acme.example", i))
	}
	h := startReports(t, smtpsink.Config{}, recipients, map[string]string{"OWNERSYNC_MAX_RECIPIENTS": "25"})
	publish, status, sink := h.publish, h.status, h.sink

	publish("dry-unasked", "report:dry-unasked", true, nil)
	publish("dry-asked", "report:dry-asked", true, nats.Header{notifier.HeaderEmailReport: {"true"}})
	publish("real", "report:real", false, nil)
	harness.Eventually(t, 20*time.Second, "three reports handled", func() bool {
		return status("dry-unasked") != "" && status("dry-asked") != "" && status("real") != ""
	})
	if got := status("dry-unasked"); !strings.HasPrefix(got, "skipped") {
		t.Errorf("dry run without asking: %s, want skipped", got)
	}
	msgs := sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d emails sent, want 2 (the asked dry run and the real run)", len(msgs))
	}
	for _, m := range msgs {
		if len(m.To) != 25 || m.To[0] != "r00@acme.example" {
			t.Errorf("email %q to %d recipients (first %q), want the first 25", m.Subject, len(m.To), m.To[0])
		}
	}
}

// reports is a running notifier on embedded NATS and FerretDB with an SMTP sink and tenant acme.
type reports struct {
	ctx  context.Context
	db   *mongodb.Conn
	sink *smtpsink.Sink
	// publish sends a SyncReport for runID under the stream message id msgID.
	publish func(runID, msgID string, dry bool, header nats.Header)
	// status is "status: reason" of the run's notification record, "" while there is none.
	status func(runID string) string
	// pending is how many report messages the notifier's consumer has not acknowledged yet.
	pending func() int
}

func startReports(t *testing.T, sinkCfg smtpsink.Config, recipients []string, env map[string]string) *reports {
	t.Helper()
	return startReportsFor(t, sinkCfg, &tenant.Tenant{ID: "acme", Name: "Acme", ReportsEnabled: true, ReportRecipients: recipients}, env)
}

// startReportsFor is startReports for a tenant configured as tn (its id must be acme).
func startReportsFor(t *testing.T, sinkCfg smtpsink.Config, tn *tenant.Tenant, env map[string]string) *reports {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	infra := harness.Start(t)
	sink, err := smtpsink.Start(sinkCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })

	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: infra.MongoURI, Database: "ownersync"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := tenantstore.New(conn.DB, nil).Put(ctx, tn); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"SMTP_URL": sink.URL()}
	for k, v := range env {
		vars[k] = v
	}
	harness.Service(t, "notifier", notifier.Run, infra.Env(vars))
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: infra.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	pub := natsbus.NewPublisher(bus.JS, nil, 5*time.Second)
	h := &reports{ctx: ctx, db: conn, sink: sink}
	h.publish = func(runID, msgID string, dry bool, header nats.Header) {
		r := render.SampleReport(time.Now())
		r.RunId, r.DryRun = runID, dry
		r.Meta.TenantId, r.Meta.EventId = "acme", "report:"+runID
		data, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(streams.ReportSync("acme"))
		msg.Data = data
		msg.Header.Set(streams.HeaderContentType, streams.ContentTypeProto)
		msg.Header.Set(streams.HeaderEventType, string(r.ProtoReflect().Descriptor().FullName()))
		for k, v := range header {
			msg.Header[k] = v
		}
		if _, err := pub.PublishMsg(ctx, msg, msgID); err != nil {
			t.Fatal(err)
		}
	}
	h.pending = func() int {
		cons, err := bus.JS.Consumer(ctx, streams.Sync, "notifier")
		if err != nil {
			return -1
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return -1
		}
		return int(info.NumPending) + info.NumAckPending
	}
	h.status = func(runID string) string {
		var n struct{ Status, Reason string }
		if err := conn.DB.Collection("notifications").FindOne(ctx, bson.D{{Key: "_id", Value: "report:" + runID}}).Decode(&n); err != nil {
			return ""
		}
		return n.Status + ": " + n.Reason
	}
	return h
}
