package embedmongo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/embedmongo"
)

// IDPlan is the SQLite plan FerretDB explains for a find by _id in coll.
func IDPlan(ctx context.Context, db *mongo.Database, coll string, id any) (string, error) {
	var reply bson.M
	err := db.RunCommand(ctx, bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: bson.D{{Key: "_id", Value: id}}}}}}).Decode(&reply)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(reply["queryPlanner"]), nil
}

// TestIDLookupsUseTheExpressionIndex: every collection of every database gets the index on the
// expression FerretDB compares for {_id: …} (embedmongo.IDExpression), and FerretDB's query plan
// for a find by _id (the same WHERE clause its update and delete by _id use) searches that index
// instead of scanning the table. It fails if a FerretDB upgrade changes the expression or the
// wrapper stops adding the index. A dropped and recreated collection gets it again.
func TestIDLookupsUseTheExpressionIndex(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := embedmongo.Start(ctx, embedmongo.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: srv.URI()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	dbs := []*mongo.Database{c.Client.Database("one"), c.Client.Database("two")}
	for _, db := range dbs {
		for _, coll := range []string{"mappings", "crm_users"} {
			docs := make([]any, 50)
			for i := range docs {
				docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("t/%d", i)}, {Key: "n", Value: i}}
			}
			if _, err := db.Collection(coll).InsertMany(ctx, docs); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(when string) {
		t.Helper()
		if err := srv.EnsureIDIndexes(ctx); err != nil {
			t.Fatal(err)
		}
		for _, db := range dbs {
			for _, coll := range []string{"mappings", "crm_users"} {
				// A SQLite connection reloads its schema when it next runs a statement, not for
				// EXPLAIN QUERY PLAN: a real lookup goes first, as it would in use.
				if err := db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: "t/7"}}).Err(); err != nil {
					t.Fatal(err)
				}
				plan, err := IDPlan(ctx, db, coll, "t/7")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(plan, "USING INDEX") || !strings.Contains(plan, embedmongo.IDIndexSuffix) {
					t.Errorf("%s: %s.%s: the plan of a find by _id does not search %s: %s", when, db.Name(), coll, embedmongo.IDIndexSuffix, plan)
				}
			}
		}
	}
	check("created")
	if err := dbs[0].Collection("mappings").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].Collection("mappings").InsertOne(ctx, bson.D{{Key: "_id", Value: "t/7"}}); err != nil {
		t.Fatal(err)
	}
	check("recreated")
	// The lookups still answer right through the index.
	var got bson.M
	if err := dbs[1].Collection("crm_users").FindOne(ctx, bson.D{{Key: "_id", Value: "t/7"}}).Decode(&got); err != nil || got["n"] != int32(7) {
		t.Fatalf("find by _id: %v %v", got, err)
	}
	res, err := dbs[1].Collection("crm_users").DeleteOne(ctx, bson.D{{Key: "_id", Value: "t/8"}})
	if err != nil || res.DeletedCount != 1 {
		t.Fatalf("delete by _id: %+v %v", res, err)
	}
}
