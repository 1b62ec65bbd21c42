package webhookstats

import (
	"context"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"
)

func TestRecorderFlushesCountsPerDay(t *testing.T) {
	conn := harness.MongoDB(t, "webhookstats")
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 23, 59, 0, 0, time.UTC)
	rec := NewRecorder(conn.DB, nil)
	rec.now = func() time.Time { return now }
	rd := NewReader(conn.DB)
	if _, ok, err := rd.Get(ctx, "acme", "salesforce"); ok || err != nil {
		t.Fatalf("before any webhook: %v %v", ok, err)
	}
	rec.Accepted("acme", "salesforce")
	rec.Accepted("acme", "salesforce")
	rec.Rejected("acme", "salesforce", "bad_shared_key")
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rec.Accepted("acme", "salesforce")
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, ok, err := rd.Get(ctx, "acme", "salesforce")
	if err != nil || !ok || r.Today(now) != 3 || !r.LastAt.Equal(now) || r.LastRejection != "bad_shared_key" || !r.LastRejectionAt.Equal(now) {
		t.Fatalf("receipt %+v (%v %v)", r, ok, err)
	}
	// Past midnight UTC the count starts again; the rejection stays the last one.
	now = now.Add(2 * time.Minute)
	rec.Accepted("acme", "salesforce")
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, _, _ = rd.Get(ctx, "acme", "salesforce")
	if r.Today(now) != 1 || r.LastRejection != "bad_shared_key" {
		t.Fatalf("next day %+v", r)
	}
	if r.Today(now.Add(24*time.Hour)) != 0 {
		t.Fatal("a count of another day counts as today")
	}
	if _, ok, _ := rd.Get(ctx, "acme", "hubspot"); ok {
		t.Fatal("a provider without webhooks has a receipt")
	}
}
