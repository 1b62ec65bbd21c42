package harness_test

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestExternalMongoServer: with OWNERSYNC_TEST_MONGODB_URI set, Mongo hands out that server
// instead of starting FerretDB, and the databases a test created are gone when it ends, while
// those that were there before stay.
func TestExternalMongoServer(t *testing.T) {
	ctx := context.Background()
	server := harness.Mongo(t) // stands in for a MongoDB somewhere
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: server, Database: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.DB.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv(harness.ExternalMongoEnv, server)
	t.Run("a test on the external server", func(t *testing.T) {
		if got := harness.Mongo(t); got != server {
			t.Fatalf("Mongo = %s, want the external %s", got, server)
		}
		if _, err := c.Client.Database("scratch").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	})
	names, err := c.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "scratch") || !slices.Contains(names, "kept") {
		t.Errorf("databases after the test: %v, want kept and not scratch", names)
	}
}
