package mongodb_test

import (
	"context"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/embedmongo"
	"github.com/ownersync/ownersync/libs/mongodb"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestConnectAndIndexesOnFerretDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := embedmongo.Start(ctx, embedmongo.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: srv.URI(), Database: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	idx := []mongodb.Index{{Collection: "mappings", Name: "tenant_provider_platform", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "platform_user_id", Value: 1}}, Unique: true}}
	for range 2 { // idempotent
		if err := mongodb.EnsureIndexes(ctx, c.DB, idx); err != nil {
			t.Fatal(err)
		}
	}
	coll := c.DB.Collection("mappings")
	doc := bson.D{{Key: "tenant", Value: "acme"}, {Key: "provider", Value: "hubspot"}, {Key: "platform_user_id", Value: "u1"}}
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		t.Fatal(err)
	}
	_, err = coll.InsertOne(ctx, doc)
	if !mongodb.IsDuplicateKey(err) {
		t.Fatalf("second insert error = %v, want duplicate key", err)
	}
}

func TestConnectGivesUp(t *testing.T) {
	ctx := context.Background()
	_, err := mongodb.Connect(ctx, mongodb.Options{URI: "mongodb://127.0.0.1:1/", ConnectTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
}
