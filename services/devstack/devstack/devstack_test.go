package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/harness"
)

func startStack(t *testing.T, dir string) *devstack.Stack {
	t.Helper()
	// ingress refuses platform events of tenants that do not exist: seed acme.
	seed := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(seed, []byte("tenants:\n  - id: acme\n    name: Acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := devstack.Options{DataDir: dir, OperatorToken: devstack.DevOperatorToken, PlatformToken: devstack.DevPlatformToken, TenantsFile: seed}
	s, err := devstack.Start(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func postEvents(t *testing.T, s *devstack.Stack, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URLs["ingress"]+"/v1/platform/events", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+devstack.DevPlatformToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

const batch = `{"userChanges":[
 {"meta":{"eventId":"plat-evt-1","tenantId":"acme","occurredAt":"2026-01-01T10:00:00Z"},
  "user":{"id":"pu-1","email":"Ada@Example.com","firstName":"Ada","lastName":"Lovelace","status":"PLATFORM_USER_STATUS_ACTIVE","kind":"PLATFORM_USER_KIND_USER","teamId":"t1"}},
 {"meta":{"eventId":"plat-evt-2","tenantId":"acme","occurredAt":"2026-01-01T10:00:01Z"},
  "user":{"id":"pu-2","email":"grace@example.org","status":"PLATFORM_USER_STATUS_SUSPENDED","kind":"PLATFORM_USER_KIND_USER"}}
]}`

// TestPlatformUserEndToEnd drives the first real path: ingress's HTTP bridge → PLATFORM stream →
// mapper → MongoDB (FerretDB), including a redelivered batch and a restart on the same data.
func TestPlatformUserEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, dir)
	code, out := postEvents(t, s, batch)
	if code != 200 || out["accepted"] != float64(2) || out["duplicates"] != float64(0) {
		t.Fatalf("POST = %d %v", code, out)
	}
	ctx := context.Background()
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: s.URLs["mongodb"]})
	if err != nil {
		t.Fatal(err)
	}
	users := conn.DB.Collection("platform_users")
	count := func() int64 {
		n, _ := users.CountDocuments(ctx, bson.D{{Key: "tenant", Value: "acme"}})
		return n
	}
	harness.Eventually(t, 10*time.Second, "both users stored", func() bool { return count() == 2 })
	var u bson.M
	if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: "acme/pu-2"}}).Decode(&u); err != nil {
		t.Fatal(err)
	}
	if u["status"] != "suspended" || u["email"] != "grace@example.org" {
		t.Errorf("stored user = %v", u)
	}

	// The same batch again: JetStream deduplicates on the event ids, nothing new is stored.
	code, out = postEvents(t, s, batch)
	if code != 200 || out["duplicates"] != float64(2) {
		t.Fatalf("redelivered POST = %d %v", code, out)
	}
	// Invalid events are refused as a whole with every problem named.
	code, out = postEvents(t, s, `{"userChanges":[{"meta":{"tenantId":"Not A Tenant"},"user":{"id":""}}]}`)
	if code != 400 {
		t.Fatalf("invalid POST = %d %v", code, out)
	}
	conn.Close(ctx)
	s.Stop()

	// A restart on the same data directory keeps the users.
	s = startStack(t, dir)
	defer s.Stop()
	conn, err = mongodb.Connect(ctx, mongodb.Options{URI: s.URLs["mongodb"]})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	users = conn.DB.Collection("platform_users")
	if n := count(); n != 2 {
		t.Fatalf("after restart %d users, want 2", n)
	}
}
