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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infra := harness.Start(t)
	sink, err := smtpsink.Start(smtpsink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })

	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: infra.MongoURI, Database: "ownersync"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var recipients []string
	for i := range 60 {
		recipients = append(recipients, fmt.Sprintf("r%02d@acme.example", i))
	}
	if err := tenantstore.New(conn.DB, nil).Put(ctx, &tenant.Tenant{ID: "acme", Name: "Acme", ReportsEnabled: true, ReportRecipients: recipients}); err != nil {
		t.Fatal(err)
	}

	harness.Service(t, "notifier", notifier.Run, infra.Env(map[string]string{
		"SMTP_URL":                 sink.URL(),
		"OWNERSYNC_MAX_RECIPIENTS": "25",
	}))
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: infra.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	pub := natsbus.NewPublisher(bus.JS, nil, 5*time.Second)
	publish := func(runID string, dry bool, header nats.Header) {
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
		if _, err := pub.PublishMsg(ctx, msg, "report:"+runID); err != nil {
			t.Fatal(err)
		}
	}
	status := func(runID string) string {
		var n struct{ Status, Reason string }
		if err := conn.DB.Collection("notifications").FindOne(ctx, bson.D{{Key: "_id", Value: "report:" + runID}}).Decode(&n); err != nil {
			return ""
		}
		return n.Status + ": " + n.Reason
	}

	publish("dry-unasked", true, nil)
	publish("dry-asked", true, nats.Header{notifier.HeaderEmailReport: {"true"}})
	publish("real", false, nil)
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
