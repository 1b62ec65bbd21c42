package console

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sign-in limits (issue 13 item 8). Attempts are limited per client address
// (as Echo's IP extractor sees it: the connection's address, or X-Forwarded-For from a trusted
// proxy only) and per failed token, under a global ceiling that protects MongoDB. The ceiling is
// far above what one client may send, so one attacker alone cannot lock every admin out; it takes
// as many addresses as the ceiling divided by the per-client rate.
const (
	defaultClientPerMinute  = 10
	defaultClientBurst      = 10
	defaultGlobalPerSecond  = 50
	defaultGlobalBurst      = 500
	defaultFailedTokenTries = 5
	// failedTokenWindow is how long a failed token stays refused after its tries are used up.
	failedTokenWindow = 15 * time.Minute
	// maxTrackedKeys bounds each keyed limiter's memory; beyond it the oldest key is forgotten.
	maxTrackedKeys = 10000
)

// keyedLimiter is a token bucket per key, bounded to maxTrackedKeys keys (oldest forgotten first).
type keyedLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	m     map[string]*rate.Limiter
	order []string // insertion order, for eviction
}

func newKeyedLimiter(limit rate.Limit, burst, max int) *keyedLimiter {
	return &keyedLimiter{limit: limit, burst: burst, max: max, m: map[string]*rate.Limiter{}}
}

func (k *keyedLimiter) get(key string) *rate.Limiter {
	l := k.m[key]
	if l == nil {
		for len(k.m) >= k.max && len(k.order) > 0 {
			delete(k.m, k.order[0])
			k.order = k.order[1:]
		}
		l = rate.NewLimiter(k.limit, k.burst)
		k.m[key] = l
		k.order = append(k.order, key)
	}
	return l
}

// allow takes one token from key's bucket.
func (k *keyedLimiter) allow(now time.Time, key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.get(key).AllowN(now, 1)
}

// exhausted reports whether key's bucket is empty, without taking from it; unknown keys are not.
func (k *keyedLimiter) exhausted(now time.Time, key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.m[key]
	return l != nil && l.TokensAt(now) < 1
}

// signinLimits are the console's sign-in rate limits.
type signinLimits struct {
	clients *keyedLimiter
	failed  *keyedLimiter
	global  *rate.Limiter
}

func newSigninLimits(cfg Config) *signinLimits {
	return &signinLimits{
		clients: newKeyedLimiter(rate.Limit(cfg.ClientSignInsPerMinute/60), cfg.ClientSignInBurst, maxTrackedKeys),
		failed:  newKeyedLimiter(rate.Every(failedTokenWindow/time.Duration(cfg.FailedTokenTries)), cfg.FailedTokenTries, maxTrackedKeys),
		global:  rate.NewLimiter(rate.Limit(cfg.SignInsPerSecond), cfg.SignInBurst),
	}
}
