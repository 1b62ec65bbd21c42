package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

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
