package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/notifier/internal/store"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestClaimIsHeldUntilFinishedOrLapsed: one handler holds a report's claim; a second is told who
// holds it and until when; after the lease lapses (the holder died mid-send) the second takes it
// over; once finished, every later claim sees the final record.
func TestClaimIsHeldUntilFinishedOrLapsed(t *testing.T) {
	ctx := context.Background()
	s := store.New(harness.MongoDB(t, "notifier_store").DB)
	t0 := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	n := store.Notification{ID: "report:run-1", Tenant: "acme", Kind: "report", At: t0}

	if ok, _, err := s.Claim(ctx, n, t0, time.Minute); err != nil || !ok {
		t.Fatalf("first claim = %v, %v; want claimed", ok, err)
	}
	ok, held, err := s.Claim(ctx, n, t0.Add(30*time.Second), time.Minute)
	if err != nil || ok {
		t.Fatalf("second claim while held = %v, %v; want refused", ok, err)
	}
	if held.Status != store.StatusSending || !held.ClaimedUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("held = %+v, want sending until %s", held, t0.Add(time.Minute))
	}
	if ok, _, err := s.Claim(ctx, n, t0.Add(61*time.Second), time.Minute); err != nil || !ok {
		t.Fatalf("claim after the lease lapsed = %v, %v; want taken over", ok, err)
	}
	n.Status, n.MessageID = "sent", "m1@example"
	if err := s.Finish(ctx, n); err != nil {
		t.Fatal(err)
	}
	ok, held, err = s.Claim(ctx, n, t0.Add(10*time.Minute), time.Minute)
	if err != nil || ok || held.Status != "sent" || held.MessageID != "m1@example" {
		t.Fatalf("claim after finish = %v, %+v, %v; want the sent record", ok, held, err)
	}
	// A released claim (the send failed) can be taken at once.
	m := store.Notification{ID: "report:run-2", Tenant: "acme", Kind: "report", At: t0}
	if ok, _, _ := s.Claim(ctx, m, t0, time.Minute); !ok {
		t.Fatal("claim run-2 refused")
	}
	if err := s.Release(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Claim(ctx, m, t0.Add(time.Second), time.Minute); err != nil || !ok {
		t.Fatalf("claim after release = %v, %v; want claimed", ok, err)
	}
}
