package coord_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/coord"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/workbench/harness"
)

// Concurrent read-modify-writes lose nothing: 8 writers × 25 increments end at 200.
func TestUpdateLosesNoWrite(t *testing.T) {
	kv := harness.KV(t, streams.CoordBucket)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				_, err := coord.Update(ctx, kv, "counter", func(cur []byte, exists bool) ([]byte, bool, error) {
					n := 0
					if exists {
						n, _ = strconv.Atoi(string(cur))
					}
					return []byte(strconv.Itoa(n + 1)), true, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e, err := kv.Get(ctx, "counter")
	if err != nil || string(e.Value()) != "200" {
		t.Fatalf("counter = %v, %v; want 200", e, err)
	}
}

// One holder at a time; a holder that never releases (killed) blocks the next one only until its
// expiry; the old holder then cannot renew or release the lease it lost.
func TestLeaseExpiresAndMovesOn(t *testing.T) {
	kv := harness.KV(t, streams.CoordBucket)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	if _, err := coord.Acquire(ctx, kv, "lease.acme.hubspot", "a", "a1", time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	_, err := coord.Acquire(ctx, kv, "lease.acme.hubspot", "b", "b1", time.Minute, t0.Add(30*time.Second))
	var held *coord.HeldError
	if !errors.As(err, &held) || held.Holder != "a" {
		t.Fatalf("second Acquire while held = %v, want held by a", err)
	}
	if _, err := coord.Renew(ctx, kv, "lease.acme.hubspot", "a1", time.Minute, t0.Add(40*time.Second)); err != nil {
		t.Fatalf("Renew by the holder: %v", err)
	}
	if _, err := coord.Acquire(ctx, kv, "lease.acme.hubspot", "b", "b2", time.Minute, t0.Add(90*time.Second)); !errors.As(err, &held) {
		t.Fatalf("Acquire before the renewed expiry = %v, want held", err)
	}
	// a is killed: it neither renews nor releases. b gets the lease after the expiry.
	l, err := coord.Acquire(ctx, kv, "lease.acme.hubspot", "b", "b3", time.Minute, t0.Add(101*time.Second))
	if err != nil || l.Holder != "b" {
		t.Fatalf("Acquire after the expiry = %+v, %v", l, err)
	}
	if _, err := coord.Renew(ctx, kv, "lease.acme.hubspot", "a1", time.Minute, t0.Add(102*time.Second)); !errors.Is(err, coord.ErrLost) {
		t.Errorf("Renew of a lost lease = %v, want ErrLost", err)
	}
	if err := coord.Release(ctx, kv, "lease.acme.hubspot", "a1"); !errors.Is(err, coord.ErrLost) {
		t.Errorf("Release of a lost lease = %v, want ErrLost", err)
	}
	if err := coord.Release(ctx, kv, "lease.acme.hubspot", "b3"); err != nil {
		t.Fatal(err)
	}
	if _, err := coord.Acquire(ctx, kv, "lease.acme.hubspot", "a", "a2", time.Minute, t0.Add(103*time.Second)); err != nil {
		t.Errorf("Acquire after Release = %v", err)
	}
}

// Of many concurrent claimers exactly one wins; a finished claim is never won again; an unfinished
// one whose claimer died is won by another after its expiry.
func TestClaimOnce(t *testing.T) {
	kv := harness.KV(t, streams.CoordBucket)
	ctx := context.Background()
	now := time.Now()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			won, _, err := coord.Claim(ctx, kv, "digest.acme.1", "r"+strconv.Itoa(i), time.Minute, now)
			if err != nil {
				t.Error(err)
			}
			if won {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claimers won, want 1", wins.Load())
	}
	_, st, _ := coord.Claim(ctx, kv, "digest.acme.1", "late", time.Minute, now)
	if err := coord.Done(ctx, kv, "digest.acme.1", st.Owner, now); err != nil {
		t.Fatal(err)
	}
	if won, _, _ := coord.Claim(ctx, kv, "digest.acme.1", "late", time.Minute, now.Add(time.Hour)); won {
		t.Error("a finished claim was won again")
	}

	if won, _, _ := coord.Claim(ctx, kv, "digest.acme.2", "dies", time.Minute, now); !won {
		t.Fatal("first claim lost")
	}
	if won, _, _ := coord.Claim(ctx, kv, "digest.acme.2", "other", time.Minute, now.Add(30*time.Second)); won {
		t.Error("a live claim was taken over")
	}
	if won, _, _ := coord.Claim(ctx, kv, "digest.acme.2", "other", time.Minute, now.Add(61*time.Second)); !won {
		t.Error("an expired unfinished claim was not taken over")
	}
	if err := coord.Done(ctx, kv, "digest.acme.2", "dies", now); !errors.Is(err, coord.ErrLost) {
		t.Errorf("Done by the dead claimer = %v, want ErrLost", err)
	}
}
