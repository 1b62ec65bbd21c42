package recordstate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/workbench/harness"
)

func TestJetStreamKVErrors(t *testing.T) {
	kv := NewJetStreamKV(harness.KV(t, streams.RecordsBucket))
	ctx := context.Background()
	key := Key("acme", provider.HubSpot, ownership.Contact, "51234")
	if _, _, err := kv.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a new key = %v, want ErrNotFound", err)
	}
	rev, err := kv.Create(ctx, key, []byte(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, key, []byte(`{"v":1}`)); !errors.Is(err, ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}
	if _, err := kv.Update(ctx, key, []byte(`{"v":1}`), rev+7); !errors.Is(err, ErrRevisionMismatch) {
		t.Errorf("Update with a stale revision = %v, want ErrRevisionMismatch", err)
	}
	rev2, err := kv.Update(ctx, key, []byte(`{"v":1,"applied_owner":"7"}`), rev)
	if err != nil {
		t.Fatal(err)
	}
	got, gotRev, err := kv.Get(ctx, key)
	if err != nil || gotRev != rev2 || string(got) != `{"v":1,"applied_owner":"7"}` {
		t.Errorf("Get = %s, %d, %v; want the update at revision %d", got, gotRev, err, rev2)
	}
	if err := kv.kv.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kv.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a deleted key = %v, want ErrNotFound", err)
	}
	if _, err := kv.Create(ctx, key, []byte(`{"v":1}`)); err != nil {
		t.Errorf("Create over a deleted key = %v, want success", err)
	}
}

// TestStoreOnJetStream runs concurrent compare-and-set updates against a real bucket.
func TestStoreOnJetStream(t *testing.T) {
	s := NewStore(NewJetStreamKV(harness.KV(t, streams.RecordsBucket)))
	s.maxAttempts = 1000
	ctx := context.Background()
	key := Key("acme", provider.Salesforce, ownership.Lead, "00Q5g00000ZxCvBEAV")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Update(ctx, key, func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
				cur.PlatformRecordID += "x"
				o := ownership.Observation{Origin: ownership.FromCRM, Provider: provider.Salesforce, EventID: fmt.Sprint(i),
					Owner: fmt.Sprint(i), At: t0.Add(time.Duration(i) * time.Second)}
				if ownership.Judge(cur, o, time.Minute) == ownership.Apply {
					cur = cur.Apply(o)
				}
				return cur, true, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := s.Get(ctx, key)
	if err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if len(got.PlatformRecordID) != n || got.AppliedOwner != fmt.Sprint(n-1) {
		t.Errorf("after %d concurrent updates: %d marks, owner %q; want %d and the newest owner %d", n, len(got.PlatformRecordID), got.AppliedOwner, n, n-1)
	}
}
