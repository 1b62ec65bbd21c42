// Package lograte bounds the log lines that unauthenticated traffic can cause (issue 13 item 12):
// each class of line (a provider, an outcome and a reason — a fixed set chosen by the caller, never
// by the request) may write Burst lines per Window; the lines it drops are counted and reported
// with the next line the class writes.
package lograte

import (
	"sync"
	"time"
)

// maxClasses bounds the state: callers pass classes from fixed sets, so reaching it means a caller
// bug, and forgetting every class then only lets a few more lines through.
const maxClasses = 1024

// Limiter decides which lines are written. The zero value is not usable; call New.
type Limiter struct {
	burst  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	classes map[string]*class
}

type class struct {
	start      time.Time
	written    int
	suppressed int
}

// New returns a limiter of burst lines per window and class; now defaults to time.Now.
func New(burst int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{burst: burst, window: window, now: now, classes: map[string]*class{}}
}

// Allow reports whether a line of the class may be written now and, when it may, how many lines of
// the class were dropped since its last written line.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.classes[key]
	if c == nil {
		if len(l.classes) >= maxClasses {
			clear(l.classes)
		}
		c = &class{start: now}
		l.classes[key] = c
	}
	if now.Sub(c.start) >= l.window {
		c.start, c.written = now, 0
	}
	if c.written >= l.burst {
		c.suppressed++
		return false, 0
	}
	c.written++
	suppressed, c.suppressed = c.suppressed, 0
	return true, suppressed
}
