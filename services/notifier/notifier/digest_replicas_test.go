package notifier_test

import (
	"context"
	"fmt"
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
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/notifier/internal/store"
	"github.com/ownersync/ownersync/services/notifier/notifier"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// Two notifier replicas send one alert digest per tenant and interval between them, listing every
// alert once (issue 15). Both replicas hold the first ten alerts (the second restored them from
// the shared queue when it started), which used to make each send its own digest; the next ten are
// split between the replicas by the shared consumer, which used to split them over two emails.
func TestOneDigestAcrossReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
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
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := tenantstore.New(conn.DB, nil).Put(ctx, &tenant.Tenant{ID: "acme", Name: "Acme", ReportsEnabled: true, ReportRecipients: []string{"admin@acme.example"}}); err != nil {
		t.Fatal(err)
	}
	env := infra.Env(map[string]string{"SMTP_URL": sink.URL(),
		// The first alert waits 8 s for others (time for the second replica to start), and digests
		// are at least 4 s apart.
		"OWNERSYNC_ALERT_SETTLE": "8s", "OWNERSYNC_ALERT_DIGEST_INTERVAL": "4s", "OWNERSYNC_DIGEST_TICK": "100ms"})
	harness.Service(t, "notifier-a", notifier.Run, env)
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: infra.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	pub := natsbus.NewPublisher(bus.JS, nil, 5*time.Second)
	publish := func(i int) {
		a := &ownersyncv1.Alert{Meta: &ownersyncv1.EventMeta{EventId: fmt.Sprintf("alert-%02d", i), TenantId: "acme", Source: "writer"},
			Severity: ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING, Kind: ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED,
			Summary: fmt.Sprintf("write %d refused", i)}
		data, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(streams.Alert("acme"))
		msg.Data = data
		msg.Header.Set(streams.HeaderContentType, streams.ContentTypeProto)
		msg.Header.Set(streams.HeaderEventType, string(a.ProtoReflect().Descriptor().FullName()))
		if _, err := pub.PublishMsg(ctx, msg, a.Meta.EventId); err != nil {
			t.Fatal(err)
		}
	}
	queued := func() int64 {
		n, err := conn.DB.Collection(store.AlertQueue).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	type digestDoc struct {
		Items int `bson:"items"`
	}
	digests := func() []digestDoc {
		cur, err := conn.DB.Collection(store.Notifications).Find(ctx, bson.D{{Key: "kind", Value: "alerts"}})
		if err != nil {
			t.Fatal(err)
		}
		var out []digestDoc
		if err := cur.All(ctx, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	for i := range 10 {
		publish(i)
	}
	harness.Eventually(t, 20*time.Second, "replica A queued the first ten alerts", func() bool { return queued() == 10 })
	harness.Service(t, "notifier-b", notifier.Run, env)
	harness.Eventually(t, 40*time.Second, "the first digest", func() bool { return len(sink.Messages()) >= 1 && queued() == 0 })
	for i := 10; i < 20; i++ {
		publish(i)
	}
	harness.Eventually(t, 40*time.Second, "the second digest", func() bool { return len(sink.Messages()) >= 2 && queued() == 0 })
	// Let both replicas tick many more times: no further digest may go out.
	time.Sleep(2 * time.Second)
	if n := len(sink.Messages()); n != 2 {
		t.Errorf("%d digest emails for two windows across two replicas, want 2", n)
	}
	ds := digests()
	total := 0
	for _, d := range ds {
		total += d.Items
	}
	if len(ds) != 2 || total != 20 {
		t.Errorf("digests recorded %+v (%d alerts), want 2 digests listing the 20 alerts once", ds, total)
	}
}
