// Package crmsim holds what the Salesforce (sfsim) and HubSpot (hssim) sandboxes share: the request
// log tests assert on, fault-injection rules, rate-limit windows and the recording middleware.
// The sandboxes themselves live in the sub-packages; cmd/crmsim runs both from a seed file.
package crmsim

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one request the sandbox answered.
type Entry struct {
	Time     time.Time     `json:"time"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Query    string        `json:"query,omitempty"`
	Header   http.Header   `json:"-"`
	Body     []byte        `json:"body,omitempty"`
	Status   int           `json:"status"`
	Duration time.Duration `json:"duration"`
}

// DefaultLogCapacity is how many entries a Log keeps unless told otherwise. When the entries or
// their bodies (MaxLogBytes) grow past the bounds, the older half is dropped, so that benchmarks do
// not grow memory without bound.
const DefaultLogCapacity = 20_000

// MaxLogBytes bounds the request bodies a Log keeps.
const MaxLogBytes = 64 << 20

// Log is a bounded, concurrency-safe record of requests plus counters that never drop.
type Log struct {
	mu       sync.Mutex
	entries  []Entry
	capacity int
	bytes    int

	requests    atomic.Int64
	rateLimited atomic.Int64
	faulted     atomic.Int64
}

// NewLog returns a Log keeping at most capacity entries (DefaultLogCapacity when ≤ 0).
func NewLog(capacity int) *Log {
	if capacity <= 0 {
		capacity = DefaultLogCapacity
	}
	return &Log{capacity: capacity}
}

func (l *Log) add(e Entry) {
	l.requests.Add(1)
	l.mu.Lock()
	if len(l.entries) >= l.capacity || l.bytes+len(e.Body) > MaxLogBytes {
		half := len(l.entries) / 2
		for _, old := range l.entries[:half] {
			l.bytes -= len(old.Body)
		}
		n := copy(l.entries, l.entries[half:])
		clear(l.entries[n:])
		l.entries = l.entries[:n]
	}
	l.entries = append(l.entries, e)
	l.bytes += len(e.Body)
	l.mu.Unlock()
}

// Entries returns a copy of the kept entries, oldest first.
func (l *Log) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Find returns the kept entries for which match is true.
func (l *Log) Find(match func(Entry) bool) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Entry
	for _, e := range l.entries {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Matching returns the kept entries with the given method ("" for any) whose path starts with prefix.
func (l *Log) Matching(method, prefix string) []Entry {
	return l.Find(func(e Entry) bool {
		return (method == "" || e.Method == method) && strings.HasPrefix(e.Path, prefix)
	})
}

// Reset drops the kept entries and zeroes the counters.
func (l *Log) Reset() {
	l.mu.Lock()
	l.entries = nil
	l.bytes = 0
	l.mu.Unlock()
	l.requests.Store(0)
	l.rateLimited.Store(0)
	l.faulted.Store(0)
}

// Counters is a snapshot of a Log's counters.
type Counters struct {
	// Requests counts every request answered, including rejected ones.
	Requests int64 `json:"requests"`
	// RateLimited counts HubSpot 429s and Salesforce REQUEST_LIMIT_EXCEEDED answers, injected or real.
	RateLimited int64 `json:"rateLimited"`
	// Faulted counts requests and records a fault rule fired on.
	Faulted int64 `json:"faulted"`
}

// Counters returns the current counters.
func (l *Log) Counters() Counters {
	return Counters{Requests: l.requests.Load(), RateLimited: l.rateLimited.Load(), Faulted: l.faulted.Load()}
}

// CountRateLimited adds one to the rate-limited counter.
func (l *Log) CountRateLimited() { l.rateLimited.Add(1) }

// CountFault adds one to the faulted counter.
func (l *Log) CountFault() { l.faulted.Add(1) }

// maxLoggedBody caps the body bytes kept per entry.
const maxLoggedBody = 1 << 20

// AdminPrefix is the path prefix of the sandboxes' control API, which the log leaves out.
const AdminPrefix = "/_crmsim/"

// Record wraps next so that every request except those to AdminPrefix is added to l with its
// body, status and duration. The request body stays readable by next.
func (l *Log) Record(next http.Handler, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		start := now()
		var body []byte
		if r.Body != nil {
			b, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
			if err == nil {
				body = b
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		kept := body
		if len(kept) > maxLoggedBody {
			kept = kept[:maxLoggedBody]
		}
		l.add(Entry{
			Time: start, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: kept, Status: sw.status, Duration: now().Sub(start),
		})
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
