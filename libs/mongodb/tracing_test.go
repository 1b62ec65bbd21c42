package mongodb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestCommandSpans: with a tracer provider every MongoDB command the services make is a client
// span, child of the caller's span, named "<operation> <collection>" with db.system,
// db.operation, db.collection and db.namespace; a cursor's getMore names its collection; a failed
// command is an error span with the server's code; pings are not traced; and no attribute carries
// the command's documents.
func TestCommandSpans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: harness.Mongo(t), Database: "traced", TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))

	const secret = "ceo@tenant.example"
	pctx, parent := tp.Tracer("test").Start(ctx, "handle message")
	coll := c.DB.Collection("mappings")
	for i := range 3 {
		if _, err := coll.InsertOne(pctx, bson.D{{Key: "n", Value: i}, {Key: "email", Value: secret}}); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := coll.Find(pctx, bson.D{{Key: "email", Value: secret}}, options.Find().SetBatchSize(1))
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(pctx, &docs); err != nil || len(docs) != 3 {
		t.Fatalf("find: %d docs, %v", len(docs), err)
	}
	if _, err := coll.UpdateOne(pctx, bson.D{{Key: "email", Value: secret}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "mapped"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(pctx); err != nil {
		t.Fatal(err)
	}
	// An unknown command fails on the server (CommandNotFound, code 59).
	if err := c.DB.RunCommand(pctx, bson.D{{Key: "noSuchCommand", Value: secret}}).Err(); err == nil {
		t.Fatal("noSuchCommand succeeded")
	}
	parent.End()

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.Name() == "handle message" {
			continue
		}
		byName[s.Name()] = append(byName[s.Name()], s)
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %q is not a child of the caller's span", s.Name())
		}
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %q kind %v, want client", s.Name(), s.SpanKind())
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), secret) {
				t.Errorf("span %q attribute %s carries the command's data: %s", s.Name(), a.Key, a.Value.Emit())
			}
		}
		if strings.Contains(s.Status().Description, secret) {
			t.Errorf("span %q status carries the command's data", s.Name())
		}
	}
	if len(byName["insert mappings"]) != 3 || len(byName["find mappings"]) != 1 || len(byName["update mappings"]) != 1 {
		t.Errorf("spans by name: %v", names(byName))
	}
	if len(byName["getMore mappings"]) == 0 {
		t.Errorf("no getMore span with the collection: %v", names(byName))
	}
	if len(byName["ping"]) != 0 {
		t.Errorf("pings are traced: %v", names(byName))
	}
	want := map[string]string{"db.system": "mongodb", "db.operation": "find", "db.collection": "mappings", "db.namespace": "traced"}
	if f := byName["find mappings"]; len(f) == 1 {
		got := map[string]string{}
		for _, a := range f[0].Attributes() {
			got[string(a.Key)] = a.Value.Emit()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("find span %s = %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
		if got["server.address"] == "" || got["server.port"] == "" {
			t.Errorf("find span lacks server.address/port: %v", got)
		}
	}
	failed := byName["noSuchCommand"]
	if len(failed) != 1 {
		t.Fatalf("failed command spans: %v", names(byName))
	}
	if failed[0].Status().Code != codes.Error {
		t.Errorf("failed command status %v", failed[0].Status())
	}
	code := ""
	for _, a := range failed[0].Attributes() {
		if a.Key == "db.response.status_code" {
			code = a.Value.Emit()
		}
	}
	if code != "59" {
		t.Errorf("failed command db.response.status_code = %q, want 59 (CommandNotFound)", code)
	}
}

func names(m map[string][]sdktrace.ReadOnlySpan) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}
