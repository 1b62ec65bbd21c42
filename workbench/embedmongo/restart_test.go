package embedmongo_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/embedmongo"
)

// TestRestartKeepsDataAndIndexes restarts FerretDB on the same directory, as `make run` does.
func TestRestartKeepsDataAndIndexes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	idx := []mongodb.Index{
		{Collection: "tenants", Name: "org", Keys: bson.D{{Key: "salesforce.org_id", Value: 1}}},
		{Collection: "tenants", Name: "portal", Keys: bson.D{{Key: "hubspot.portal_id", Value: 1}}},
		{Collection: "crm_users", Name: "tp", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}}, Unique: true},
	}
	for round := range 2 {
		var logger *slog.Logger
		if testing.Verbose() {
			logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		srv, err := embedmongo.Start(ctx, embedmongo.Options{Dir: dir, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		c, err := mongodb.Connect(ctx, mongodb.Options{URI: srv.URI()})
		if err != nil {
			t.Fatal(err)
		}
		if err := mongodb.EnsureIndexes(ctx, c.DB, idx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if round == 0 {
			if _, err := c.DB.Collection("tenants").InsertOne(ctx, bson.D{{Key: "_id", Value: "acme"}}); err != nil {
				t.Fatal(err)
			}
		} else if n, _ := c.DB.Collection("tenants").CountDocuments(ctx, bson.D{}); n != 1 {
			t.Fatalf("after restart %d documents, want 1", n)
		}
		c.Close(ctx)
		srv.Stop()
	}
}
