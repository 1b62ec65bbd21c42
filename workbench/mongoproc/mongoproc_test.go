package mongoproc_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/mongoproc"
)

// A child FerretDB serves the wire protocol, keeps its data across a restart on the same Dir, and is
// gone after Stop.
func TestStartStopRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := mongoproc.Start(ctx, mongoproc.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: s.URI(), Database: "t"})
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	if _, err := c.DB.Collection("c").InsertOne(ctx, bson.M{"_id": "a"}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close(ctx)
	s.Stop()
	if err := s.Process().Signal(nil); err == nil {
		t.Fatal("the child still runs after Stop")
	}

	s2, err := mongoproc.Start(ctx, mongoproc.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	c2, err := mongodb.Connect(ctx, mongodb.Options{URI: s2.URI(), Database: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	n, err := c2.DB.Collection("c").CountDocuments(ctx, bson.M{"_id": "a"})
	if err != nil || n != 1 {
		t.Fatalf("after restart: %d documents, %v; want 1", n, err)
	}
}
