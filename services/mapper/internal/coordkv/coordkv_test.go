package coordkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/coord"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/coordkv"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/workbench/harness"
)

// The rule lock of a tenant and provider holds across mapper replicas (issue 15): two replicas'
// changes.Writers on one ownersync_coord bucket never hold it at once, a waiter gets it when the
// holder unlocks, and a holder that was killed (it never renews nor releases) blocks the others
// only until its lease expires.
func TestRuleLeaseAcrossReplicas(t *testing.T) {
	kv := harness.JetStream(t).KV(t)[streams.CoordBucket]
	ctx := context.Background()
	replica := func(name string) *changes.Writer {
		w := changes.New(nil, nil, nil, nil)
		w.UseLeases(coordkv.New(coordkv.Options{KV: kv, Holder: name, TTL: 600 * time.Millisecond, Poll: 20 * time.Millisecond}))
		return w
	}
	a, b := replica("mapper-a"), replica("mapper-b")

	unlock := a.Lock("acme", "salesforce")
	if _, err := b.LockWithin(ctx, "acme", "salesforce", 100*time.Millisecond); !errors.Is(err, domain.ErrBusy) {
		t.Fatalf("replica B locked acme/salesforce while A held it: %v, want ErrBusy", err)
	}
	// A holds it well past its TTL: the renewals keep B out.
	if _, err := b.LockWithin(ctx, "acme", "salesforce", 1500*time.Millisecond); !errors.Is(err, domain.ErrBusy) {
		t.Fatalf("replica B locked acme/salesforce past A's TTL while A was alive: %v, want ErrBusy", err)
	}
	other, err := b.LockWithin(ctx, "acme", "hubspot", 0)
	if err != nil {
		t.Fatalf("another provider is independent: %v", err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		u, err := b.LockWithin(ctx, "acme", "salesforce", 5*time.Second)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("B after A unlocked: %v", err)
	}

	// A replica killed while holding the lease: its last act was the acquisition.
	if _, err := coord.Acquire(ctx, kv, streams.KVKey("lease", "acme/hubspot"), "killed", "tok", 600*time.Millisecond, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LockWithin(ctx, "acme", "hubspot", 0); !errors.Is(err, domain.ErrBusy) {
		t.Fatalf("B locked acme/hubspot at once while the killed replica's lease was live: %v", err)
	}
	u, err := b.LockWithin(ctx, "acme", "hubspot", 10*time.Second)
	if err != nil {
		t.Fatalf("the killed holder's lease did not expire: %v", err)
	}
	u()
}

// Of two replicas claiming the same work, one wins; a claim marked done is not won again.
func TestClaimOnceAcrossReplicas(t *testing.T) {
	kv := harness.JetStream(t).KV(t)[streams.CoordBucket]
	ctx := context.Background()
	a := coordkv.New(coordkv.Options{KV: kv, Holder: "a"})
	b := coordkv.New(coordkv.Options{KV: kv, Holder: "b"})
	won, done, err := a.Claim(ctx, "schedule.acme.after.r1")
	if err != nil || !won {
		t.Fatalf("first claim: %v %v", won, err)
	}
	if won, _, _ := b.Claim(ctx, "schedule.acme.after.r1"); won {
		t.Fatal("second replica won the same claim")
	}
	done()
	if won, _, _ := b.Claim(ctx, "schedule.acme.after.r1"); won {
		t.Fatal("a finished claim was won again")
	}
}
