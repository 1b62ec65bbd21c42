package mongodb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestCommandCounter: the counter sees every command by kind and collection with the documents
// each carried (insert documents, update and delete statements) or returned (find and getMore
// batches); a failed command counts as failed; pings are not counted; composed with the tracer,
// both see the same commands.
func TestCommandCounter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	counter := mongodb.NewCommandCounter()
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: harness.Mongo(t), Database: "counted", TracerProvider: tp, Monitor: counter.Monitor()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	coll := c.DB.Collection("users")
	docs := make([]any, 7)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(3))
	if err != nil {
		t.Fatal(err)
	}
	var got []bson.M
	if err := cur.All(ctx, &got); err != nil || len(got) != 7 {
		t.Fatalf("find: %d docs, %v", len(got), err)
	}
	models := []mongo.WriteModel{}
	for i := range 4 {
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: i}}).SetReplacement(bson.D{{Key: "n", Value: -i}}))
	}
	if _, err := coll.BulkWrite(ctx, models); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{5, 6}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); !mongodb.IsDuplicateKey(err) {
		t.Fatalf("duplicate insert: %v", err)
	}
	if err := c.DB.RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err(); err == nil {
		t.Fatal("noSuchCommand succeeded")
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	counts := counter.Snapshot()
	var b strings.Builder
	mongodb.Fprint(&b, counts)
	t.Logf("counts:\n%s", b.String())
	want := map[mongodb.CommandKind]mongodb.CommandCount{
		{Name: "insert", Collection: "users"}:  {Commands: 2, Documents: 8, MaxDocuments: 7},
		{Name: "find", Collection: "users"}:    {Commands: 1, Documents: 3, MaxDocuments: 3},
		{Name: "getMore", Collection: "users"}: {Commands: 2, Documents: 4, MaxDocuments: 3},
		{Name: "update", Collection: "users"}:  {Commands: 1, Documents: 4, MaxDocuments: 4},
		{Name: "delete", Collection: "users"}:  {Commands: 1, Documents: 1, MaxDocuments: 1},
		{Name: "noSuchCommand"}:                {Failed: 1},
	}
	for k, w := range want {
		if g := counts[k]; g != w {
			t.Errorf("%s %s: %+v, want %+v", k.Name, k.Collection, g, w)
		}
	}
	for k := range counts {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected command %s %s: %+v", k.Name, k.Collection, counts[k])
		}
	}
	if w := mongodb.Total(counts, mongodb.Writes); w != 4 {
		t.Errorf("write commands %d, want 4", w)
	}
	if n := len(rec.Ended()); n < 7 {
		t.Errorf("the tracer composed with the counter ended %d spans, want every counted command", n)
	}
	counter.Reset()
	if n := len(counter.Snapshot()); n != 0 {
		t.Errorf("after Reset %d kinds", n)
	}
}
