package batcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ownersync/ownersync/workbench/harness"
)

type key struct{ tenant, provider, recordType string }

var (
	sf = key{"acme", "salesforce", "contact"}
	hs = key{"acme", "hubspot", "contact"}
)

func maxSize(k key) int {
	if k.provider == "salesforce" {
		return 200
	}
	return 100
}

// recorder is a fake flush that records batches and answers each item with "<record>=<value>",
// failing records named in fail.
type recorder struct {
	mu      sync.Mutex
	batches map[key][][]Item[string]
	fail    map[string]error
	block   chan struct{} // when set, flushes wait for it to close
	active  atomic.Int32
	maxSeen atomic.Int32
}

func newRecorder() *recorder {
	return &recorder{batches: map[key][][]Item[string]{}, fail: map[string]error{}}
}

func (r *recorder) flush(ctx context.Context, k key, batch []Item[string]) ([]Result[string], error) {
	n := r.active.Add(1)
	defer r.active.Add(-1)
	for {
		m := r.maxSeen.Load()
		if n <= m || r.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r.mu.Lock()
	r.batches[k] = append(r.batches[k], append([]Item[string](nil), batch...))
	r.mu.Unlock()
	out := make([]Result[string], len(batch))
	for i, it := range batch {
		if err := r.fail[it.RecordID]; err != nil {
			out[i] = Result[string]{Err: err}
			continue
		}
		out[i] = Result[string]{Value: it.RecordID + "=" + it.Value}
	}
	return out, nil
}

func (r *recorder) sizes(k key) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int
	for _, b := range r.batches[k] {
		s = append(s, len(b))
	}
	return s
}

func wait(t *testing.T, f *Future[string]) Result[string] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := f.Wait(ctx)
	if err != nil {
		t.Fatalf("waiting for a result: %v", err)
	}
	return r
}

func TestSizeFlush(t *testing.T) {
	rec := newRecorder()
	// A linger of an hour: only the size can flush.
	b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Hour})
	ctx := context.Background()
	var sfF, hsF []*Future[string]
	for i := 0; i < 450; i++ {
		sfF = append(sfF, b.Submit(ctx, sf, fmt.Sprintf("003-%d", i), "005"))
	}
	for i := 0; i < 250; i++ {
		hsF = append(hsF, b.Submit(ctx, hs, fmt.Sprintf("%d", i), "71"))
	}
	for _, f := range sfF[:400] {
		if r := wait(t, f); r.Err != nil || r.Superseded {
			t.Fatalf("result %+v, want a value", r)
		}
	}
	for _, f := range hsF[:200] {
		wait(t, f)
	}
	if diff := cmp.Diff([]int{200, 200}, rec.sizes(sf)); diff != "" {
		t.Errorf("salesforce batch sizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{100, 100}, rec.sizes(hs)); diff != "" {
		t.Errorf("hubspot batch sizes (-want +got):\n%s", diff)
	}
	select {
	case <-sfF[449].Done():
		t.Fatal("a partial batch was flushed before its linger")
	case <-time.After(20 * time.Millisecond):
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r := wait(t, sfF[449]); r.Value != "003-449=005" {
		t.Errorf("after Close, result %+v, want the pending item written", r)
	}
	if diff := cmp.Diff([]int{200, 200, 50}, rec.sizes(sf)); diff != "" {
		t.Errorf("salesforce batch sizes after Close (-want +got):\n%s", diff)
	}
}

func TestLingerFlush(t *testing.T) {
	rec := newRecorder()
	linger := 30 * time.Millisecond
	b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: linger})
	defer b.Close(context.Background())
	start := time.Now()
	f1 := b.Submit(context.Background(), hs, "1", "71")
	f2 := b.Submit(context.Background(), hs, "2", "72")
	r1, r2 := wait(t, f1), wait(t, f2)
	if waited := time.Since(start); waited < linger {
		t.Errorf("flushed after %s, before the linger of %s", waited, linger)
	}
	if diff := cmp.Diff([]Result[string]{{Value: "1=71"}, {Value: "2=72"}}, []Result[string]{r1, r2}); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2}, rec.sizes(hs)); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

func TestCoalescing(t *testing.T) {
	rec := newRecorder()
	b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Hour})
	ctx := context.Background()
	first := b.Submit(ctx, sf, "003-a", "005-old")
	other := b.Submit(ctx, sf, "003-b", "005-b")
	second := b.Submit(ctx, sf, "003-a", "005-new")
	if r := wait(t, first); !r.Superseded || r.Err != nil {
		t.Errorf("replaced item: %+v, want Superseded without error", r)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r := wait(t, second); r.Value != "003-a=005-new" {
		t.Errorf("winner: %+v, want 003-a=005-new", r)
	}
	want := [][]Item[string]{{{RecordID: "003-a", Value: "005-new"}, {RecordID: "003-b", Value: "005-b"}}}
	if diff := cmp.Diff(want, rec.batches[sf]); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	_ = other
}

func TestSupersedesKeepsNewer(t *testing.T) {
	rec := newRecorder()
	// Values are source times as text; the later time wins whatever the arrival order.
	b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Hour,
		Supersedes: func(next, pending string) bool { return next > pending }})
	ctx := context.Background()
	newer := b.Submit(ctx, hs, "1", "t2")
	older := b.Submit(ctx, hs, "1", "t1")
	if r := wait(t, older); !r.Superseded {
		t.Errorf("older change delivered late: %+v, want Superseded", r)
	}
	b.Close(ctx)
	if r := wait(t, newer); r.Value != "1=t2" {
		t.Errorf("newer change: %+v, want 1=t2", r)
	}
}

// Latest wins across batches, not only within one (issue 14 item 8): an older change submitted
// while a newer one of the same record is in flight, or after it was written, is superseded instead
// of being written after it; a newer one, or the same one again (a redelivery), is still written.
func TestLatestWinsAcrossBatches(t *testing.T) {
	later := func(next, pending string) bool { return next >= pending }
	batchesOf := func(rec *recorder) [][]Item[string] {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return append([][]Item[string](nil), rec.batches[hs]...)
	}
	t.Run("older submitted while the newer is in flight", func(t *testing.T) {
		rec := newRecorder()
		rec.block = make(chan struct{})
		b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Millisecond, Supersedes: later})
		defer b.Close(context.Background())
		ctx := context.Background()
		newer := b.Submit(ctx, hs, "1", "t2")
		harness.Eventually(t, 5*time.Second, "a flush in flight", func() bool { return rec.active.Load() >= 1 })
		older := b.Submit(ctx, hs, "1", "t1")
		close(rec.block)
		if r := wait(t, newer); r.Value != "1=t2" {
			t.Errorf("newer: %+v, want 1=t2", r)
		}
		if r := wait(t, older); !r.Superseded {
			t.Errorf("older submitted while the newer was in flight: %+v, want Superseded", r)
		}
		if diff := cmp.Diff([][]Item[string]{{{RecordID: "1", Value: "t2"}}}, batchesOf(rec)); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
	t.Run("older submitted after the newer was written", func(t *testing.T) {
		rec := newRecorder()
		b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Millisecond, Supersedes: later})
		defer b.Close(context.Background())
		ctx := context.Background()
		wait(t, b.Submit(ctx, hs, "1", "t2"))
		if r := wait(t, b.Submit(ctx, hs, "1", "t1")); !r.Superseded {
			t.Errorf("older submitted after the newer was written: %+v, want Superseded", r)
		}
		if r := wait(t, b.Submit(ctx, hs, "1", "t2")); r.Value != "1=t2" {
			t.Errorf("the newer again (a redelivery): %+v, want written", r)
		}
		if r := wait(t, b.Submit(ctx, hs, "1", "t3")); r.Value != "1=t3" {
			t.Errorf("a still newer one: %+v, want written", r)
		}
		want := [][]Item[string]{{{RecordID: "1", Value: "t2"}}, {{RecordID: "1", Value: "t2"}}, {{RecordID: "1", Value: "t3"}}}
		if diff := cmp.Diff(want, batchesOf(rec)); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
	t.Run("forgotten after Remember", func(t *testing.T) {
		rec := newRecorder()
		b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Millisecond, Supersedes: later, Remember: 20 * time.Millisecond})
		defer b.Close(context.Background())
		ctx := context.Background()
		wait(t, b.Submit(ctx, hs, "1", "t2"))
		time.Sleep(40 * time.Millisecond)
		if r := wait(t, b.Submit(ctx, hs, "1", "t1")); r.Value != "1=t1" {
			t.Errorf("older after the memory expired: %+v, want written (stale rejection is the record state's job then)", r)
		}
	})
}

// With Idle, a batch keeps filling while items keep coming (here one every few milliseconds, for
// far longer than Idle in all), and goes once they stop — long before Linger.
func TestIdleFlushesWhenItemsStopComing(t *testing.T) {
	rec := newRecorder()
	b := New(rec.flush, Options[key, string]{MaxSize: maxSize, Linger: time.Hour, Idle: 40 * time.Millisecond})
	defer b.Close(context.Background())
	ctx := context.Background()
	var fs []*Future[string]
	for i := range 20 {
		fs = append(fs, b.Submit(ctx, hs, strconv.Itoa(i), "v"))
		time.Sleep(5 * time.Millisecond)
	}
	for _, f := range fs {
		wait(t, f)
	}
	if diff := cmp.Diff([]int{20}, rec.sizes(hs)); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

// With HoldPartial, a partial batch waits while a flush of its key is in flight and goes when it
// returns, carrying everything that arrived meanwhile; a full batch does not wait.
func TestHoldPartialWhileInFlight(t *testing.T) {
	rec := newRecorder()
	rec.block = make(chan struct{})
	b := New(rec.flush, Options[key, string]{MaxSize: func(key) int { return 3 }, Linger: time.Millisecond, HoldPartial: true, MaxInFlight: 2})
	defer b.Close(context.Background())
	ctx := context.Background()
	first := b.Submit(ctx, hs, "a", "v")
	harness.Eventually(t, 5*time.Second, "a flush in flight", func() bool { return rec.active.Load() >= 1 })
	var held []*Future[string]
	for _, id := range []string{"b", "c"} {
		held = append(held, b.Submit(ctx, hs, id, "v"))
		time.Sleep(10 * time.Millisecond) // far past Linger
	}
	full := []*Future[string]{b.Submit(ctx, hs, "d", "v"), b.Submit(ctx, hs, "e", "v"), b.Submit(ctx, hs, "f", "v")}
	harness.Eventually(t, 5*time.Second, "the full batch in flight", func() bool { return rec.active.Load() >= 2 })
	if got := rec.active.Load(); got != 2 {
		t.Fatalf("%d flushes in flight, want 2 (the first and the full batch)", got)
	}
	close(rec.block)
	for _, f := range append(append([]*Future[string]{first}, held...), full...) {
		wait(t, f)
	}
	got := rec.sizes(hs)
	slices.Sort(got)
	if diff := cmp.Diff([]int{1, 2, 3}, got); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

func TestPerItemResultsAndBatchError(t *testing.T) {
	rec := newRecorder()
	locked := errors.New("UNABLE_TO_LOCK_ROW")
	rec.fail["2"] = locked
	b := New(rec.flush, Options[key, string]{MaxSize: func(key) int { return 3 }, Linger: time.Hour})
	ctx := context.Background()
	fs := []*Future[string]{b.Submit(ctx, hs, "1", "a"), b.Submit(ctx, hs, "2", "b"), b.Submit(ctx, hs, "3", "c")}
	got := []Result[string]{wait(t, fs[0]), wait(t, fs[1]), wait(t, fs[2])}
	if got[0].Value != "1=a" || !errors.Is(got[1].Err, locked) || got[2].Value != "3=c" {
		t.Errorf("results %+v: want 1=a, the lock error, 3=c", got)
	}
	b.Close(ctx)

	whole := errors.New("401")
	b2 := New(func(context.Context, key, []Item[string]) ([]Result[string], error) { return nil, whole },
		Options[key, string]{MaxSize: func(key) int { return 2 }, Linger: time.Hour})
	f1, f2 := b2.Submit(ctx, hs, "1", "a"), b2.Submit(ctx, hs, "2", "b")
	if r1, r2 := wait(t, f1), wait(t, f2); !errors.Is(r1.Err, whole) || !errors.Is(r2.Err, whole) {
		t.Errorf("whole-batch error: %+v %+v, want %v on both", r1, r2, whole)
	}
	b2.Close(ctx)

	b3 := New(func(context.Context, key, []Item[string]) ([]Result[string], error) { return []Result[string]{{}}, nil },
		Options[key, string]{MaxSize: func(key) int { return 2 }, Linger: time.Hour})
	f1, f2 = b3.Submit(ctx, hs, "1", "a"), b3.Submit(ctx, hs, "2", "b")
	if r := wait(t, f2); r.Err == nil {
		t.Errorf("short result list: %+v, want an error", r)
	}
	wait(t, f1)
	b3.Close(ctx)
}

func TestBoundedConcurrencyAndRecordOrder(t *testing.T) {
	rec := newRecorder()
	rec.block = make(chan struct{})
	b := New(rec.flush, Options[key, string]{MaxSize: func(key) int { return 2 }, Linger: time.Millisecond, MaxInFlight: 2})
	ctx := context.Background()
	var fs []*Future[string]
	for i := 0; i < 10; i++ {
		fs = append(fs, b.Submit(ctx, hs, fmt.Sprintf("%d", i), "a"))
	}
	// The same record again while its first write may be in flight: written after, never alongside.
	late := b.Submit(ctx, hs, "0", "b")
	harness.Eventually(t, 5*time.Second, "two flushes in flight", func() bool { return rec.active.Load() >= 2 })
	close(rec.block)
	for _, f := range append(fs, late) {
		wait(t, f)
	}
	if got := rec.maxSeen.Load(); got != 2 {
		t.Errorf("max concurrent flushes = %d, want 2", got)
	}
	b.Close(ctx)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var order []string
	for _, batch := range rec.batches[hs] {
		for _, it := range batch {
			if it.RecordID == "0" {
				order = append(order, it.Value)
			}
		}
	}
	if diff := cmp.Diff([]string{"a", "b"}, order); diff != "" {
		t.Errorf("writes of record 0 (-want +got):\n%s", diff)
	}
}

func TestCloseRefusesAndTimesOut(t *testing.T) {
	rec := newRecorder()
	rec.block = make(chan struct{})
	b := New(rec.flush, Options[key, string]{MaxSize: func(key) int { return 1 }, Linger: time.Hour})
	ctx := context.Background()
	inFlight := b.Submit(ctx, hs, "1", "a")
	queued := b.Submit(ctx, hs, "2", "b")
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline", err)
	}
	if r := wait(t, queued); !errors.Is(r.Err, ErrClosed) {
		t.Errorf("queued item after Close gave up: %+v, want ErrClosed", r)
	}
	if r := wait(t, inFlight); !errors.Is(r.Err, context.Canceled) {
		t.Errorf("in-flight item after Close gave up: %+v, want its flush cancelled", r)
	}
	if r := wait(t, b.Submit(ctx, hs, "3", "c")); !errors.Is(r.Err, ErrClosed) {
		t.Errorf("submit after Close: %+v, want ErrClosed", r)
	}
	cancelled, stop := context.WithCancel(ctx)
	stop()
	if r := wait(t, New(rec.flush, Options[key, string]{}).Submit(cancelled, hs, "4", "d")); !errors.Is(r.Err, context.Canceled) {
		t.Errorf("submit with a done context: %+v, want context.Canceled", r)
	}
}

func BenchmarkSubmit(b *testing.B) {
	flush := func(_ context.Context, _ key, batch []Item[string]) ([]Result[string], error) {
		return make([]Result[string], len(batch)), nil
	}
	bt := New(flush, Options[key, string]{MaxSize: maxSize, Linger: 5 * time.Millisecond})
	ctx := context.Background()
	fs := make([]*Future[string], b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fs[i] = bt.Submit(ctx, sf, fmt.Sprintf("003-%d", i), "005")
	}
	for _, f := range fs {
		f.Result()
	}
	b.StopTimer()
	bt.Close(ctx)
}
