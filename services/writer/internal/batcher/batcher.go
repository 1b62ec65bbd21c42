// Package batcher coalesces writes into batches per key (for the writer: tenant, provider and
// record type) so that each CRM call carries as many records as the API takes
// (docs/architecture.md#owner-writeback).
//
// A batch is flushed when it reaches the key's maximum size or when its oldest item has waited for
// the linger time, whichever comes first. Within a key, only the latest item per record is written:
// an item replaced by a newer one for the same record is resolved at once as Superseded, a success —
// the newer item carries the intent and its own message is still unacknowledged, so nothing is lost
// if the newer write fails or the process dies. The rule holds across batches too: the value last
// taken into a flush for a record is remembered for a while, and an item that does not supersede it
// is resolved as Superseded instead of being written after it. Each item's result comes from the flush function, by
// position, so every message is acknowledged by its own record's outcome.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed resolves items submitted after Close, or still pending when Close gave up waiting.
var ErrClosed = errors.New("batcher closed")

// Item is one record's pending write.
type Item[T any] struct {
	RecordID string
	Value    T
}

// Result is the outcome of one item.
type Result[R any] struct {
	Value R
	Err   error
	// Superseded is true when a newer item for the same record replaced this one before it was
	// written; Err is nil and callers treat it as success.
	Superseded bool
}

// FlushFunc writes one batch. It returns one result per item, in the batch's order, or a non-nil
// error that fails every item of the batch (the whole request failed).
type FlushFunc[K comparable, T, R any] func(ctx context.Context, key K, batch []Item[T]) ([]Result[R], error)

// Options tune a Batcher; zero values take the defaults.
type Options[K comparable, T any] struct {
	// MaxSize is the largest batch for a key (Salesforce 200, HubSpot 100). Default 100.
	MaxSize func(K) int
	// Linger is how long the oldest pending item of a key may wait for company. Default 50 ms.
	Linger time.Duration
	// Idle, when set, flushes a partial batch as soon as no item has arrived for its key for that
	// long, while Linger stays the longest any item waits: during a burst the batch keeps filling
	// up to its maximum size, and a lone item goes after Idle. Zero: only Linger and the size count.
	Idle time.Duration
	// HoldPartial keeps a partial batch while another flush of its key is in flight (Nagle's rule):
	// items keep joining it until that call returns, so a steady stream shares fewer, fuller calls.
	// Full batches still go up to MaxInFlight at once.
	HoldPartial bool
	// MaxInFlight bounds the concurrent flushes per key. Default 1. A record is never in two
	// concurrent flushes, so per-record order holds at any value.
	MaxInFlight int
	// Supersedes reports whether next should replace pending for the same record; nil means the
	// later submission always wins. The writer passes "newer source time wins", so that an older
	// change delivered late cannot replace a newer pending one. It also compares an item with the
	// value last sent for its record (see Remember).
	Supersedes func(next, pending T) bool
	// Remember is how long the value last taken into a flush for a record is kept, so that an older
	// item submitted while that flush runs or soon after it is not written after it (an older change
	// that claimed the record before a newer one and reached the batcher after it). Past it, the
	// writer's record state rejects stale changes. Default 1 minute; only used with Supersedes.
	Remember time.Duration
}

// Future is the pending result of one submitted item.
type Future[R any] struct {
	done chan struct{}
	res  Result[R]
}

func newFuture[R any]() *Future[R] { return &Future[R]{done: make(chan struct{})} }

func (f *Future[R]) resolve(r Result[R]) {
	f.res = r
	close(f.done)
}

// Done is closed when the result is known.
func (f *Future[R]) Done() <-chan struct{} { return f.done }

// Result returns the result; it is valid once Done is closed.
func (f *Future[R]) Result() Result[R] {
	<-f.done
	return f.res
}

// Wait returns the result, or ctx's error if ctx ends first (the item stays submitted).
func (f *Future[R]) Wait(ctx context.Context) (Result[R], error) {
	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		return Result[R]{}, ctx.Err()
	}
}

// Batcher coalesces items per key and flushes them through a FlushFunc.
type Batcher[K comparable, T, R any] struct {
	flush  FlushFunc[K, T, R]
	opts   Options[K, T]
	ctx    context.Context // flushes run under it; Close cancels it when it gives up
	cancel context.CancelFunc

	mu      sync.Mutex
	queues  map[K]*queue[T, R]
	sent    map[K]map[string]sentValue[T] // the value last taken into a flush per record
	sentLog []sentRef[K]                  // when each was sent, oldest first, to forget them
	sentOld int                           // sentLog[:sentOld] are forgotten
	closing bool
	wg      sync.WaitGroup // running flushes
}

type sentValue[T any] struct {
	value T
	at    time.Time
}

type sentRef[K comparable] struct {
	key    K
	record string
	at     time.Time
}

type entry[T, R any] struct {
	item    Item[T]
	fut     *Future[R]
	arrived time.Time // first submission for the record; a replacement keeps its place
}

type queue[T, R any] struct {
	pending  []*entry[T, R] // arrival order
	byRecord map[string]*entry[T, R]
	inFlight map[string]bool
	eligible int // pending entries whose record is not in flight
	flushing int
	timer    *time.Timer
	timerAt  time.Time // when timer fires
	lastIn   time.Time // when the latest item arrived (Idle)
}

// New returns a Batcher that writes batches with flush.
func New[K comparable, T, R any](flush FlushFunc[K, T, R], opts Options[K, T]) *Batcher[K, T, R] {
	if opts.MaxSize == nil {
		opts.MaxSize = func(K) int { return 100 }
	}
	if opts.Linger <= 0 {
		opts.Linger = 50 * time.Millisecond
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1
	}
	if opts.Remember <= 0 {
		opts.Remember = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Batcher[K, T, R]{flush: flush, opts: opts, ctx: ctx, cancel: cancel, queues: map[K]*queue[T, R]{},
		sent: map[K]map[string]sentValue[T]{}}
}

// Submit adds the write of value to record recordID under key and returns its future. An item
// pending for the same record is replaced (and resolved as Superseded) when the new one supersedes
// it; otherwise the new one is resolved as Superseded at once — and so is one that does not
// supersede the value last sent for the record. ctx only guards the call: an item once submitted is
// written even if ctx ends.
func (b *Batcher[K, T, R]) Submit(ctx context.Context, key K, recordID string, value T) *Future[R] {
	fut := newFuture[R]()
	if err := ctx.Err(); err != nil {
		fut.resolve(Result[R]{Err: err})
		return fut
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		fut.resolve(Result[R]{Err: ErrClosed})
		return fut
	}
	if b.opts.Supersedes != nil {
		b.forget(time.Now())
		if s, ok := b.sent[key][recordID]; ok && !b.opts.Supersedes(value, s.value) {
			fut.resolve(Result[R]{Superseded: true})
			return fut
		}
	}
	q := b.queues[key]
	if q == nil {
		q = &queue[T, R]{byRecord: map[string]*entry[T, R]{}, inFlight: map[string]bool{}}
		b.queues[key] = q
	}
	if e, ok := q.byRecord[recordID]; ok {
		if b.opts.Supersedes != nil && !b.opts.Supersedes(value, e.item.Value) {
			fut.resolve(Result[R]{Superseded: true})
			return fut
		}
		e.fut.resolve(Result[R]{Superseded: true})
		e.item.Value = value
		e.fut = fut
		return fut
	}
	now := time.Now()
	q.lastIn = now
	e := &entry[T, R]{item: Item[T]{RecordID: recordID, Value: value}, fut: fut, arrived: now}
	q.pending = append(q.pending, e)
	q.byRecord[recordID] = e
	if !q.inFlight[recordID] {
		q.eligible++
	}
	b.dispatch(key, q)
	return fut
}

// remember notes value as the last one sent for record under key. b.mu is held.
func (b *Batcher[K, T, R]) remember(key K, record string, value T, now time.Time) {
	m := b.sent[key]
	if m == nil {
		m = map[string]sentValue[T]{}
		b.sent[key] = m
	}
	m[record] = sentValue[T]{value: value, at: now}
	b.sentLog = append(b.sentLog, sentRef[K]{key: key, record: record, at: now})
}

// forget drops the sent values older than Remember. b.mu is held.
func (b *Batcher[K, T, R]) forget(now time.Time) {
	cutoff := now.Add(-b.opts.Remember)
	for ; b.sentOld < len(b.sentLog) && b.sentLog[b.sentOld].at.Before(cutoff); b.sentOld++ {
		r := b.sentLog[b.sentOld]
		if m := b.sent[r.key]; m != nil && m[r.record].at.Equal(r.at) {
			delete(m, r.record)
			if len(m) == 0 {
				delete(b.sent, r.key)
			}
		}
	}
	if b.sentOld > 1024 && b.sentOld > len(b.sentLog)/2 {
		// Compact now and then, so the log's cost per call stays constant.
		b.sentLog = append(b.sentLog[:0:0], b.sentLog[b.sentOld:]...)
		b.sentOld = 0
	}
}

// dispatch starts every flush that is due for key and arms the linger timer for the rest. b.mu is held.
func (b *Batcher[K, T, R]) dispatch(key K, q *queue[T, R]) {
	max := b.opts.MaxSize(key)
	if max <= 0 {
		max = 1
	}
	for q.flushing < b.opts.MaxInFlight && q.eligible > 0 {
		var oldest time.Time
		for _, e := range q.pending {
			if !q.inFlight[e.item.RecordID] {
				oldest = e.arrived
				break
			}
		}
		if q.eligible < max && !b.closing && b.opts.HoldPartial && q.flushing > 0 {
			return // looked at again when the flush in flight returns
		}
		if q.eligible < max && !b.closing {
			due := oldest.Add(b.opts.Linger)
			if b.opts.Idle > 0 {
				due = earliest(due, q.lastIn.Add(b.opts.Idle))
			}
			if time.Now().Before(due) {
				b.arm(key, q, due)
				return
			}
		}
		b.start(key, q, max)
	}
	if len(q.pending) == 0 && q.flushing == 0 {
		if q.timer != nil {
			q.timer.Stop()
		}
		delete(b.queues, key)
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// arm makes sure the queue is looked at again at time at.
func (b *Batcher[K, T, R]) arm(key K, q *queue[T, R], at time.Time) {
	if q.timer != nil {
		if q.timerAt.Equal(at) {
			return
		}
		q.timer.Stop()
	}
	q.timerAt = at
	q.timer = time.AfterFunc(time.Until(at), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.queues[key] == q {
			b.dispatch(key, q)
		}
	})
}

// start takes up to max eligible items off the queue and flushes them in a goroutine. b.mu is held.
func (b *Batcher[K, T, R]) start(key K, q *queue[T, R], max int) {
	var batch []*entry[T, R]
	rest := q.pending[:0]
	now := time.Now()
	for _, e := range q.pending {
		if len(batch) < max && !q.inFlight[e.item.RecordID] {
			if b.opts.Supersedes != nil {
				b.remember(key, e.item.RecordID, e.item.Value, now)
			}
			batch = append(batch, e)
			q.inFlight[e.item.RecordID] = true
			delete(q.byRecord, e.item.RecordID)
			q.eligible--
			continue
		}
		rest = append(rest, e)
	}
	for i := len(rest); i < len(q.pending); i++ {
		q.pending[i] = nil
	}
	q.pending = rest
	q.flushing++
	b.wg.Add(1)
	go b.run(key, q, batch)
}

func (b *Batcher[K, T, R]) run(key K, q *queue[T, R], batch []*entry[T, R]) {
	defer b.wg.Done()
	items := make([]Item[T], len(batch))
	for i, e := range batch {
		items[i] = e.item
	}
	results, err := b.callFlush(key, items)
	if err == nil && len(results) != len(items) {
		err = fmt.Errorf("flush returned %d results for %d items", len(results), len(items))
	}
	for i, e := range batch {
		if err != nil {
			e.fut.resolve(Result[R]{Err: err})
			continue
		}
		e.fut.resolve(results[i])
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q.flushing--
	for _, e := range batch {
		delete(q.inFlight, e.item.RecordID)
		if _, waiting := q.byRecord[e.item.RecordID]; waiting {
			q.eligible++
		}
	}
	b.dispatch(key, q)
}

// callFlush calls the flush function, turning a panic into an error for the batch.
func (b *Batcher[K, T, R]) callFlush(key K, items []Item[T]) (res []Result[R], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("flush panicked: %v", p)
		}
	}()
	return b.flush(b.ctx, key, items)
}

// Close stops accepting items, flushes everything pending without waiting for the linger, and waits
// for the flushes to finish. If ctx ends first, it cancels the running flushes' context, resolves
// items not yet flushed with ErrClosed and returns ctx's error.
func (b *Batcher[K, T, R]) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	for k, q := range b.queues {
		b.dispatch(k, q)
	}
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		for {
			b.wg.Wait()
			b.mu.Lock()
			idle := len(b.queues) == 0
			b.mu.Unlock()
			if idle {
				close(done)
				return
			}
			// A flush finished and dispatched the next batch of its key; wait for that one too.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	select {
	case <-done:
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		b.mu.Lock()
		for k, q := range b.queues {
			for _, e := range q.pending {
				e.fut.resolve(Result[R]{Err: ErrClosed})
			}
			q.pending = nil
			q.eligible = 0
			q.byRecord = map[string]*entry[T, R]{}
			if q.flushing == 0 {
				delete(b.queues, k)
			}
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}
