package mongoproc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/embedmongo"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/mongoproc"
)

// TestChildIndexesIDExpression: the FerretDB child the tests and the benchmarks use adds the index
// on embedmongo.IDExpression to a collection soon after its first write, and FerretDB's plan for a
// find by _id searches it.
func TestChildIndexesIDExpression(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := mongoproc.Start(ctx, mongoproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: s.URI(), Database: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	coll := c.DB.Collection("mappings")
	for i := range 20 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("t/%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var plan string
	harness.Eventually(t, time.Minute, "the plan of a find by _id searches the expression index", func() bool {
		// A connection reloads its schema on its next statement (not for EXPLAIN): look up first.
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "t/3"}}).Err(); err != nil {
			t.Fatal(err)
		}
		var reply bson.M
		if err := c.DB.RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "mappings"}, {Key: "filter", Value: bson.D{{Key: "_id", Value: "t/3"}}}}}}).Decode(&reply); err != nil {
			t.Fatal(err)
		}
		plan = fmt.Sprint(reply["queryPlanner"])
		return strings.Contains(plan, "USING INDEX") && strings.Contains(plan, embedmongo.IDIndexSuffix)
	})
}
