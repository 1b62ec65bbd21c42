package crmsim

import (
	"context"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"time"
)

// Action is what a fault rule does when it fires.
type Action string

// Fault actions. Request-level actions (Status, Hang, RateLimit, Latency) act on the whole request
// before the sandbox handles it; record-level actions (RecordError) act on one record inside a write.
const (
	// ActionStatus answers with Rule.Status (e.g. 500, 502, 503, 423) and the sandbox's error body.
	ActionStatus Action = "status"
	// ActionHang never answers: the handler blocks until the client gives up or the sandbox closes.
	ActionHang Action = "hang"
	// ActionRateLimit answers as if a rate limit was hit: HubSpot 429 (Rule.Policy TEN_SECONDLY_ROLLING
	// or DAILY), Salesforce 403 REQUEST_LIMIT_EXCEEDED.
	ActionRateLimit Action = "rate_limit"
	// ActionLatency delays the request by Rule.Latency and then handles it normally.
	ActionLatency Action = "latency"
	// ActionRecordError fails one record of a write: Salesforce answers that record with
	// Rule.Code (default UNABLE_TO_LOCK_ROW); HubSpot reports it in a 207 with category Rule.Code
	// (default VALIDATION_ERROR) or a 4xx for single-record calls.
	ActionRecordError Action = "record_error"
)

// Rule is one fault-injection rule. Empty match fields match anything.
type Rule struct {
	// Name is free text that shows up in logs and in the admin API.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Method matches the HTTP method ("" any).
	Method string `json:"method,omitempty" yaml:"method,omitempty"`
	// Path matches the URL path: a path.Match pattern when it contains * or ?, else a prefix.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// RecordID matches a record id: for record-level actions the record being written, for
	// request-level actions any id in the path or body.
	RecordID string `json:"recordId,omitempty" yaml:"recordId,omitempty"`
	// Probability in (0,1] fires the rule on that share of matches; 0 means always.
	Probability float64 `json:"probability,omitempty" yaml:"probability,omitempty"`
	// Count is how many times the rule fires before it is used up; 0 means unlimited.
	Count int `json:"count,omitempty" yaml:"count,omitempty"`
	// Skip lets that many matches through before the rule starts firing.
	Skip int `json:"skip,omitempty" yaml:"skip,omitempty"`

	Action  Action        `json:"action" yaml:"action"`
	Status  int           `json:"status,omitempty" yaml:"status,omitempty"`
	Latency time.Duration `json:"latency,omitempty" yaml:"latency,omitempty"`
	// Policy is the HubSpot 429 policyName for ActionRateLimit (default TEN_SECONDLY_ROLLING).
	Policy string `json:"policy,omitempty" yaml:"policy,omitempty"`
	// RetryAfter, for ActionRateLimit, sends a Retry-After header of that many seconds (rounded up;
	// HubSpot does not document one, item 17 of docs/crm-protocols.md, but may send it).
	RetryAfter time.Duration `json:"retryAfter,omitempty" yaml:"retryAfter,omitempty"`
	// Code is the Salesforce statusCode or HubSpot category for ActionRecordError.
	Code string `json:"code,omitempty" yaml:"code,omitempty"`
	// Message overrides the error message.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
}

// IsRecordLevel reports whether the rule acts on single records rather than whole requests.
func (r Rule) IsRecordLevel() bool { return r.Action == ActionRecordError }

type ruleState struct {
	id    int
	rule  Rule
	seen  int
	fired int
}

// Faults is a concurrency-safe set of rules.
type Faults struct {
	mu     sync.Mutex
	rules  []*ruleState
	nextID int
	rnd    *rand.Rand
}

// NewFaults returns an empty rule set whose probabilities draw from a generator seeded with seed.
func NewFaults(seed uint64) *Faults {
	return &Faults{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Add installs a rule and returns its id.
func (f *Faults) Add(r Rule) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.rules = append(f.rules, &ruleState{id: f.nextID, rule: r})
	return f.nextID
}

// Remove deletes the rule with the given id.
func (f *Faults) Remove(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, rs := range f.rules {
		if rs.id == id {
			f.rules = append(f.rules[:i], f.rules[i+1:]...)
			return
		}
	}
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.rules = nil
	f.mu.Unlock()
}

// RuleInfo is a rule with its id and how often it fired.
type RuleInfo struct {
	ID    int  `json:"id"`
	Rule  Rule `json:"rule"`
	Fired int  `json:"fired"`
}

// Rules lists the installed rules.
func (f *Faults) Rules() []RuleInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]RuleInfo, 0, len(f.rules))
	for _, rs := range f.rules {
		out = append(out, RuleInfo{ID: rs.id, Rule: rs.rule, Fired: rs.fired})
	}
	return out
}

func pathMatches(pattern, p string) bool {
	if pattern == "" {
		return true
	}
	if strings.ContainsAny(pattern, "*?[") {
		ok, _ := path.Match(pattern, p)
		return ok
	}
	return strings.HasPrefix(p, pattern)
}

// fire decides, under f.mu, whether a matching rule fires now.
func (f *Faults) fire(rs *ruleState) bool {
	r := rs.rule
	if r.Count > 0 && rs.fired >= r.Count {
		return false
	}
	rs.seen++
	if rs.seen <= r.Skip {
		return false
	}
	if r.Probability > 0 && r.Probability < 1 && f.rnd.Float64() >= r.Probability {
		return false
	}
	rs.fired++
	return true
}

// Request returns the first request-level rule that fires for the request, if any. body is the raw
// request body, searched for RecordID.
func (f *Faults) Request(method, urlPath string, body []byte) (Rule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rs := range f.rules {
		r := rs.rule
		if r.IsRecordLevel() {
			continue
		}
		if r.Method != "" && !strings.EqualFold(r.Method, method) {
			continue
		}
		if !pathMatches(r.Path, urlPath) {
			continue
		}
		if r.RecordID != "" && !strings.Contains(urlPath, r.RecordID) && !strings.Contains(string(body), r.RecordID) {
			continue
		}
		if f.fire(rs) {
			return r, true
		}
	}
	return Rule{}, false
}

// Record returns the first record-level rule that fires for writing record id, if any.
func (f *Faults) Record(method, urlPath, id string) (Rule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rs := range f.rules {
		r := rs.rule
		if !r.IsRecordLevel() {
			continue
		}
		if r.Method != "" && !strings.EqualFold(r.Method, method) {
			continue
		}
		if !pathMatches(r.Path, urlPath) {
			continue
		}
		if r.RecordID != "" && !strings.EqualFold(r.RecordID, id) {
			continue
		}
		if f.fire(rs) {
			return r, true
		}
	}
	return Rule{}, false
}

// Hang blocks until ctx is done or stop is closed; it is how ActionHang answers nothing.
func Hang(ctx context.Context, stop <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-stop:
	}
}

// Sleep waits d unless ctx is done or stop is closed first.
func Sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-stop:
	}
}
