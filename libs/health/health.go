// Package health serves /healthz (the process is alive) and /readyz (named checks: NATS, MongoDB,
// consumers) as JSON, so orchestrators and the dev stack know when a service can take work.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Check returns nil when the dependency is ready.
type Check func(ctx context.Context) error

// Checker holds named readiness checks.
type Checker struct {
	mu     sync.RWMutex
	checks map[string]Check
	// Timeout bounds each check (default 2 s).
	Timeout time.Duration
}

// New returns an empty checker.
func New() *Checker { return &Checker{checks: map[string]Check{}, Timeout: 2 * time.Second} }

// Add registers a named check.
func (c *Checker) Add(name string, fn Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[name] = fn
}

// Result is the readiness report.
type Result struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// Run runs every check concurrently.
func (c *Checker) Run(ctx context.Context) Result {
	c.mu.RLock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := make([]Check, len(names))
	for i, n := range names {
		fns[i] = c.checks[n]
	}
	c.mu.RUnlock()
	res := Result{Status: "ok", Checks: make(map[string]string, len(names))}
	out := make([]string, len(names))
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.Timeout)
			defer cancel()
			if err := fns[i](cctx); err != nil {
				out[i] = err.Error()
				return
			}
			out[i] = "ok"
		}()
	}
	wg.Wait()
	for i, n := range names {
		res.Checks[n] = out[i]
		if out[i] != "ok" {
			res.Status = "unavailable"
		}
	}
	return res
}

// Healthz answers 200 while the process runs.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Readyz answers 200 when every check passes, else 503, with the per-check results.
func (c *Checker) Readyz(w http.ResponseWriter, r *http.Request) {
	res := c.Run(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if res.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(res)
}
