package recordstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// memKV is an in-memory KV with JetStream's revision semantics: one revision counter for the bucket,
// Create fails on an existing key, Update fails unless lastRevision is the key's revision.
type memKV struct {
	mu   sync.Mutex
	seq  uint64
	data map[string]memEntry
	// beforeWrite, when set, runs (unlocked) before each Create/Update: a hook for a rival writer.
	beforeWrite func(key string)
	writes      int
	conflicts   int
	gets        int
}

type memEntry struct {
	val []byte
	rev uint64
}

func newMemKV() *memKV { return &memKV{data: map[string]memEntry{}} }

func (m *memKV) Get(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	e, ok := m.data[key]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return append([]byte(nil), e.val...), e.rev, nil
}

func (m *memKV) Create(_ context.Context, key string, val []byte) (uint64, error) {
	if m.beforeWrite != nil {
		m.beforeWrite(key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[key]; ok {
		m.conflicts++
		return 0, ErrExists
	}
	return m.put(key, val), nil
}

func (m *memKV) Update(_ context.Context, key string, val []byte, last uint64) (uint64, error) {
	if m.beforeWrite != nil {
		m.beforeWrite(key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.data[key]; !ok || e.rev != last {
		m.conflicts++
		return 0, fmt.Errorf("nats: wrong last sequence: %w", ErrRevisionMismatch)
	}
	return m.put(key, val), nil
}

func (m *memKV) put(key string, val []byte) uint64 {
	m.seq++
	m.writes++
	m.data[key] = memEntry{val: append([]byte(nil), val...), rev: m.seq}
	return m.seq
}

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   ownership.RecordState
	}{
		{"empty", ownership.RecordState{}},
		{"full", ownership.RecordState{AppliedOwner: "0055g00000AsDfGAAV", AppliedAt: t0.Add(123 * time.Millisecond),
			AppliedEventID: "sf:00D:04l", WrittenOwner: "0055g00000AsDfGAAV", WrittenAt: t0.Add(time.Second),
			Pending: true, PlatformRecordID: "pr-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeFixedValue(t *testing.T) {
	// The stored format: other writers and operators read it, so it must not drift.
	raw := `{"v":1,"applied_owner":"71234567","applied_at":"2026-01-01T12:00:00Z","applied_event_id":"hs:1:2:3:4:hubspot_owner_id",` +
		`"written_owner":"71234567","written_at":"2026-01-01T12:00:01Z","some_future_field":true}`
	got, err := Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := ownership.RecordState{AppliedOwner: "71234567", AppliedAt: t0, AppliedEventID: "hs:1:2:3:4:hubspot_owner_id",
		WrittenOwner: "71234567", WrittenAt: t0.Add(time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	enc, _ := Encode(want)
	if wantEnc := `{"v":1,"applied_owner":"71234567","applied_at":"2026-01-01T12:00:00Z","applied_event_id":"hs:1:2:3:4:hubspot_owner_id","written_owner":"71234567","written_at":"2026-01-01T12:00:01Z"}`; string(enc) != wantEnc {
		t.Errorf("Encode = %s\nwant     %s", enc, wantEnc)
	}
	for _, bad := range []string{`{"v":2}`, `not json`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) succeeded, want an error", bad)
		}
	}
}

func TestKey(t *testing.T) {
	a := Key("acme", provider.Salesforce, ownership.Contact, "0035g00000QwErT")
	b := Key("acme", provider.Salesforce, ownership.Contact, "0035g00000QwErTAAV")
	if a != b {
		t.Errorf("15- and 18-character ids give %q and %q, want one key", a, b)
	}
	if got, want := Key("acme", provider.HubSpot, ownership.Contact, "51234"), "acme.hubspot.contact.51234"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if got := Key("acme", provider.HubSpot, ownership.Contact, "a.b*>"); strings.ContainsAny(got[len("acme.hubspot.contact."):], ".*>") {
		t.Errorf("Key = %q: record id not escaped", got)
	}
	if !strings.HasPrefix(a, Prefix("acme")) {
		t.Errorf("key %q does not start with Prefix %q", a, Prefix("acme"))
	}
}

// apply is the writer's use of Update: judge an observation and apply it when the verdict says so.
func apply(o ownership.Observation, verdict *ownership.Verdict) UpdateFunc {
	return func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		*verdict = ownership.Judge(cur, o, time.Minute)
		if *verdict != ownership.Apply {
			return cur, false, nil
		}
		return cur.Apply(o), true, nil
	}
}

func TestUpdateCreatesThenUpdates(t *testing.T) {
	kv := newMemKV()
	s := NewStore(kv)
	ctx := context.Background()
	key := Key("acme", provider.HubSpot, ownership.Contact, "51234")
	if _, ok, err := s.Get(ctx, key); ok || err != nil {
		t.Fatalf("Get of a new key = %v, %v; want not found", ok, err)
	}
	var v ownership.Verdict
	o1 := ownership.Observation{Origin: ownership.FromCRM, Provider: provider.HubSpot, EventID: "e1", Owner: "1", At: t0}
	if _, err := s.Update(ctx, key, apply(o1, &v)); err != nil || v != ownership.Apply {
		t.Fatalf("first update: %v, verdict %s", err, v)
	}
	o0 := ownership.Observation{Origin: ownership.FromCRM, Provider: provider.HubSpot, EventID: "e0", Owner: "0", At: t0.Add(-time.Second)}
	got, err := s.Update(ctx, key, apply(o0, &v))
	if err != nil || v != ownership.Stale {
		t.Fatalf("older update: %v, verdict %s; want stale", err, v)
	}
	if got.AppliedOwner != "1" || kv.writes != 1 {
		t.Errorf("after a stale change: owner %q, %d writes; want owner 1 and 1 write", got.AppliedOwner, kv.writes)
	}
	boom := errors.New("boom")
	if _, err := s.Update(ctx, key, func(ownership.RecordState, bool) (ownership.RecordState, bool, error) {
		return ownership.RecordState{}, false, boom
	}); !errors.Is(err, boom) {
		t.Errorf("fn error = %v, want %v", err, boom)
	}
}

// TestUpdateRetriesLostRace makes a rival writer win between every read and write once.
func TestUpdateRetriesLostRace(t *testing.T) {
	kv := newMemKV()
	s := NewStore(kv)
	ctx := context.Background()
	key := "acme.hubspot.contact.1"
	rivalDone := false
	kv.beforeWrite = func(k string) {
		if rivalDone {
			return
		}
		rivalDone = true
		b, _ := Encode(ownership.RecordState{AppliedOwner: "rival", AppliedAt: t0.Add(time.Hour)})
		kv.mu.Lock()
		kv.put(k, b)
		kv.mu.Unlock()
	}
	var v ownership.Verdict
	o := ownership.Observation{Origin: ownership.FromPlatform, Provider: provider.HubSpot, EventID: "p1", Owner: "mine", At: t0}
	got, err := s.Update(ctx, key, apply(o, &v))
	if err != nil {
		t.Fatal(err)
	}
	// The rival's newer change won; re-judged after the conflict, ours is stale.
	if v != ownership.Stale || got.AppliedOwner != "rival" || kv.conflicts != 1 {
		t.Errorf("verdict %s, owner %q, %d conflicts; want stale, rival, 1", v, got.AppliedOwner, kv.conflicts)
	}
}

// TestUpdateConcurrentWriters runs many writers on one key: none loses another's update, and the
// newest change ends in place whatever the interleaving.
func TestUpdateConcurrentWriters(t *testing.T) {
	kv := newMemKV()
	s := NewStore(kv)
	s.maxAttempts = 1000
	ctx := context.Background()
	key := "acme.salesforce.contact.x"
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(i int) { // counts: appends one mark to the platform record id
			defer wg.Done()
			_, err := s.Update(ctx, key, func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
				cur.PlatformRecordID += "x"
				return cur, true, nil
			})
			errs <- err
		}(i)
		go func(i int) { // owner changes with distinct source times
			defer wg.Done()
			var v ownership.Verdict
			o := ownership.Observation{Origin: ownership.FromCRM, Provider: provider.HubSpot,
				EventID: fmt.Sprint(i), Owner: fmt.Sprint(i), At: t0.Add(time.Duration(i) * time.Second)}
			_, err := s.Update(ctx, key, apply(o, &v))
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.PlatformRecordID) != n {
		t.Errorf("counter = %d, want %d: updates were lost", len(got.PlatformRecordID), n)
	}
	if want := fmt.Sprint(n - 1); got.AppliedOwner != want || !got.AppliedAt.Equal(t0.Add(time.Duration(n-1)*time.Second)) {
		t.Errorf("owner %q at %s, want the newest %q", got.AppliedOwner, got.AppliedAt, want)
	}
}

func TestUpdateGivesUpUnderContention(t *testing.T) {
	kv := newMemKV()
	s := NewStore(kv)
	kv.beforeWrite = func(k string) { // a rival always writes first
		kv.mu.Lock()
		kv.put(k, []byte(`{"v":1}`))
		kv.mu.Unlock()
	}
	_, err := s.Update(context.Background(), "k", func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		return cur, true, nil
	})
	// The first try is a create without a read (the key is unknown), then the read-and-write loop.
	if !errors.Is(err, ErrContention) || kv.conflicts != DefaultMaxAttempts+1 {
		t.Errorf("error %v after %d conflicts, want ErrContention after %d", err, kv.conflicts, DefaultMaxAttempts+1)
	}
}

func TestGetErrors(t *testing.T) {
	kv := newMemKV()
	kv.data["bad"] = memEntry{val: []byte("{"), rev: 1}
	s := NewStore(kv)
	if _, _, err := s.Get(context.Background(), "bad"); err == nil {
		t.Error("Get of a corrupt value succeeded")
	}
	if _, err := s.Update(context.Background(), "bad", func(c ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		return c, true, nil
	}); err == nil {
		t.Error("Update over a corrupt value succeeded")
	}
}

func TestLinks(t *testing.T) {
	kv := newMemKV()
	l := NewLinks(kv)
	ctx := context.Background()
	if _, ok, err := l.Link(ctx, "acme", provider.HubSpot, ownership.Contact, "pr-1"); ok || err != nil {
		t.Fatalf("Link before save = %v, %v; want none", ok, err)
	}
	for _, id := range []string{"51234", "51234", "51240"} {
		if err := l.SaveLink(ctx, "acme", provider.HubSpot, ownership.Contact, "pr-1", id); err != nil {
			t.Fatalf("SaveLink(%s): %v", id, err)
		}
	}
	got, ok, err := l.Link(ctx, "acme", provider.HubSpot, ownership.Contact, "pr-1")
	if err != nil || !ok || got != "51240" {
		t.Errorf("Link = %q, %v, %v; want the latest link 51240", got, ok, err)
	}
	if kv.writes != 2 {
		t.Errorf("%d writes, want 2 (saving the same link again writes nothing)", kv.writes)
	}
	if lk, rk := LinkKey("acme", provider.HubSpot, ownership.Contact, "x"), Key("acme", provider.HubSpot, ownership.Contact, "x"); lk == rk {
		t.Errorf("link key %q equals record key", lk)
	}
}

// TestUpdateKnownKeySkipsTheRead checks the optimistic path: a key the store wrote is updated
// without a read, and a rival's write in between is noticed by the revision and re-read.
func TestUpdateKnownKeySkipsTheRead(t *testing.T) {
	kv := newMemKV()
	s := NewStore(kv)
	ctx := context.Background()
	key := "acme.hubspot.contact.1"
	mark := func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		cur.PlatformRecordID += "x"
		return cur, true, nil
	}
	if _, err := s.Update(ctx, key, mark); err != nil {
		t.Fatal(err)
	}
	gets := kv.gets
	if _, err := s.Update(ctx, key, mark); err != nil {
		t.Fatal(err)
	}
	if kv.gets != gets {
		t.Errorf("updating a key the store just wrote read it %d times, want 0", kv.gets-gets)
	}
	// A rival writes; the next update's optimistic write fails and the value is re-read.
	b, _ := Encode(ownership.RecordState{PlatformRecordID: "rival"})
	kv.mu.Lock()
	kv.put(key, b)
	kv.mu.Unlock()
	got, err := s.Update(ctx, key, mark)
	if err != nil {
		t.Fatal(err)
	}
	if got.PlatformRecordID != "rivalx" {
		t.Errorf("after a rival write: %q, want rivalx", got.PlatformRecordID)
	}
	// A decision not to write always rests on a fresh read.
	gets = kv.gets
	if _, err := s.Update(ctx, key, func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) { return cur, false, nil }); err != nil {
		t.Fatal(err)
	}
	if kv.gets != gets+1 {
		t.Errorf("a no-write update read %d times, want 1", kv.gets-gets)
	}
}

func TestUpdateUnknownKeyCreatesWithoutARead(t *testing.T) {
	kv := newMemKV()
	s := NewStore(kv)
	ctx := context.Background()
	seen := []bool{}
	mark := func(cur ownership.RecordState, exists bool) (ownership.RecordState, bool, error) {
		seen = append(seen, exists)
		cur.PlatformRecordID += "x"
		return cur, true, nil
	}
	if _, err := s.Update(ctx, "acme.hubspot.contact.1", mark); err != nil {
		t.Fatal(err)
	}
	if kv.gets != 0 || kv.writes != 1 {
		t.Errorf("first write of a new key: %d reads and %d writes, want 0 and 1", kv.gets, kv.writes)
	}
	// A key another writer (or an earlier run) created: the create fails, the value is read and
	// fn decides again on it.
	b, _ := Encode(ownership.RecordState{PlatformRecordID: "rival"})
	kv.mu.Lock()
	kv.put("acme.hubspot.contact.2", b)
	kv.mu.Unlock()
	seen = seen[:0]
	got, err := s.Update(ctx, "acme.hubspot.contact.2", mark)
	if err != nil {
		t.Fatal(err)
	}
	if got.PlatformRecordID != "rivalx" {
		t.Errorf("existing key: %q, want rivalx", got.PlatformRecordID)
	}
	if diff := cmp.Diff([]bool{false, true}, seen); diff != "" {
		t.Errorf("fn saw exists (-want +got):\n%s", diff)
	}
	// A decision not to write on the zero state is checked against a read.
	gets := kv.gets
	if _, err := s.Update(ctx, "acme.hubspot.contact.3", func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) {
		return cur, false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if kv.gets != gets+1 {
		t.Errorf("a no-write update of an unknown key read %d times, want 1", kv.gets-gets)
	}
}
