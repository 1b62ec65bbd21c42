package httpapi_test

import (
	"time"

	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// dumpCollection returns every document of a collection as extended JSON.
func dumpCollection(db *mongo.Database, name string) (string, error) {
	cur, err := db.Collection(name).Find(context.Background(), bson.D{})
	if err != nil {
		return "", err
	}
	var docs []bson.M
	if err := cur.All(context.Background(), &docs); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, d := range docs {
		j, err := bson.MarshalExtJSON(d, false, false)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(&b, string(j))
	}
	return b.String(), nil
}

// TestNewTakesItsLimitsFromConfig: the admin API has no defaults of its own (config.Load holds
// them); a zero limit is a wiring mistake, refused at start rather than silently replaced.
func TestNewTakesItsLimitsFromConfig(t *testing.T) {
	httpapi.New(httpapi.Config{MaxBodyBytes: 1, RunsLimit: 1, DLQLimit: 1, KeyOverlap: time.Hour}, consoletest.NewService(), struct{ httpapi.TenantStore }{}, struct{ httpapi.TokenStore }{}, &consoletest.DeadLetters{}, nil)
	for _, cfg := range []httpapi.Config{{}, {MaxBodyBytes: 1, RunsLimit: 1}, {RunsLimit: 1, DLQLimit: 1}, {MaxBodyBytes: 1, RunsLimit: 1, DLQLimit: 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not refuse the zero limit", cfg)
				}
			}()
			// Every dependency is present, so only the limits can be refused.
			httpapi.New(cfg, consoletest.NewService(), struct{ httpapi.TenantStore }{}, struct{ httpapi.TokenStore }{}, &consoletest.DeadLetters{}, nil)
		}()
	}
}
