package crmsim

import (
	"sync"
	"time"
)

// Window is a rolling-window request limiter: at most Max requests in any Interval. It keeps the
// times of the last Max admitted requests in a ring, so checks are O(1). Max ≤ 0 means unlimited.
type Window struct {
	mu       sync.Mutex
	max      int
	interval time.Duration
	ring     []time.Time
	head     int
	count    int
}

// NewWindow returns a limiter admitting max requests per interval.
func NewWindow(max int, interval time.Duration) *Window {
	w := &Window{max: max, interval: interval}
	if max > 0 {
		w.ring = make([]time.Time, max)
	}
	return w
}

// Max is the configured maximum (0 when unlimited).
func (w *Window) Max() int { return max(w.max, 0) }

// Interval is the configured window length.
func (w *Window) Interval() time.Duration { return w.interval }

// evict drops admitted requests older than interval and returns how many remain; w.mu held.
// The ring is a queue in admission order (head = oldest), so eviction is amortised O(1).
func (w *Window) evict(now time.Time) int {
	cutoff := now.Add(-w.interval)
	for w.count > 0 && !w.ring[w.head].After(cutoff) {
		w.head = (w.head + 1) % len(w.ring)
		w.count--
	}
	return w.count
}

// Allow admits one request at now if the window has room and returns whether it did and how many
// requests remain in the window afterwards.
func (w *Window) Allow(now time.Time) (ok bool, remaining int) {
	if w.max <= 0 {
		return true, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	used := w.evict(now)
	if used >= w.max {
		return false, 0
	}
	w.ring[(w.head+w.count)%len(w.ring)] = now
	w.count++
	return true, w.max - used - 1
}

// Remaining is how many requests the window would admit at now.
func (w *Window) Remaining(now time.Time) int {
	if w.max <= 0 {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max - w.evict(now)
}

// Reset forgets every admitted request.
func (w *Window) Reset() {
	w.mu.Lock()
	w.count, w.head = 0, 0
	w.mu.Unlock()
}

// Quota is a daily request quota that resets at midnight in loc. Limit ≤ 0 means unlimited (but
// usage is still counted).
type Quota struct {
	mu    sync.Mutex
	limit int64
	used  int64
	day   time.Time
	loc   *time.Location
}

// NewQuota returns a quota of limit requests per day in loc (UTC when nil).
func NewQuota(limit int64, loc *time.Location) *Quota {
	if loc == nil {
		loc = time.UTC
	}
	return &Quota{limit: limit, loc: loc}
}

func (q *Quota) roll(now time.Time) {
	y, m, d := now.In(q.loc).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, q.loc)
	if !day.Equal(q.day) {
		q.day, q.used = day, 0
	}
}

// Take uses one request at now if any remain and returns whether it did, the usage after the call
// and the limit.
func (q *Quota) Take(now time.Time) (ok bool, used, limit int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	if q.limit > 0 && q.used >= q.limit {
		return false, q.used, q.limit
	}
	q.used++
	return true, q.used, q.limit
}

// Usage returns the usage and limit at now.
func (q *Quota) Usage(now time.Time) (used, limit int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	return q.used, q.limit
}

// Set overrides today's usage, e.g. to test quota exhaustion.
func (q *Quota) Set(now time.Time, used int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	q.used = used
}

// SetLimit changes the daily limit.
func (q *Quota) SetLimit(limit int64) {
	q.mu.Lock()
	q.limit = limit
	q.mu.Unlock()
}
