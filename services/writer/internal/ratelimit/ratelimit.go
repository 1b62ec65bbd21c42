// Package ratelimit paces CRM calls per (tenant, provider) so that the writer stays close to, and
// under, each CRM's limits (docs/architecture.md#owner-writeback,
// docs/crm-protocols.md#sforce-limit-info and docs/crm-protocols.md#hubspot-rate-limits).
//
// Each key has a token bucket sized from configuration and corrected from the limits the CRM reports
// in its responses (X-HubSpot-RateLimit-*). A 429 or REQUEST_LIMIT_EXCEEDED pauses only its key. A
// daily quota that falls under a threshold (Sforce-Limit-Info api-usage, X-HubSpot-RateLimit-Daily-*)
// is reported once, so that the caller raises an Alert, and holds the key's writes until the quota
// resets: HubSpot at midnight in the account's time zone; Salesforce's 24-hour window rolls, so the
// key is held for a re-check interval and the next answer decides whether to hold again or resume.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
)

// Key names one rate-limited connection: a tenant's account at one CRM.
type Key struct {
	Tenant   string
	Provider provider.Provider
}

func (k Key) String() string { return k.Tenant + "/" + string(k.Provider) }

// Limits size one key's token bucket.
type Limits struct {
	// Rate is the sustained calls per second.
	Rate float64
	// Burst is how many calls may go at once. Over a rolling window W the bucket allows at most
	// Burst + Rate·W calls, so for HubSpot's 190 per 10 s keep Burst small and Rate = (190-Burst)/10.
	Burst int
}

// Config configures a Limiter; zero values take the defaults.
type Config struct {
	// Limits gives the configured limits of a key when it is first used. Required.
	Limits func(Key) Limits
	// QuotaThreshold is the share of the daily quota that must remain for writes to go on; under it
	// the key is held. 0 holds it only when the quota is spent.
	QuotaThreshold float64
	// Location is the time zone whose midnight resets a HubSpot account's daily quota, for keys
	// whose account zone was not set with SetLocation. Default UTC.
	Location func(Key) *time.Location
	// Recheck is how long a Salesforce key is held before a call probes the rolling quota again.
	// Default 15 minutes.
	Recheck time.Duration
	// MaxWait is the longest Wait blocks; a key paused or held for longer returns a *HeldError at once
	// so the caller can hand the message back with a delay. Default 30 s.
	MaxWait time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Shared is the budget every writer replica draws from (package budget, on NATS KV); nil when
	// this process is the only one. Wait takes a slot of it after the key's own token, pauses and
	// quota holds are written to it, and its pauses are seen by PausedUntil.
	Shared Shared
	// SharedTimeout bounds writing a pause or hold to Shared. Default 2 s.
	SharedTimeout time.Duration
}

// Shared is a CRM API budget per key shared by the writer replicas (issue 15).
type Shared interface {
	// Take blocks until key may make one call under the shared budget, sized from lim (the key's
	// per-process limits now), or returns a *HeldError when that is further away than maxWait.
	Take(ctx context.Context, key Key, lim Limits, maxWait time.Duration) error
	// Pause stops key's calls in every replica until until (a 429 answer).
	Pause(ctx context.Context, key Key, until time.Time) error
	// Hold stops key's calls in every replica until until (the daily quota is near exhaustion).
	Hold(ctx context.Context, key Key, until time.Time) error
	// PausedUntil is when key's last known shared pause or hold ends; zero when none. No I/O.
	PausedUntil(key Key) time.Time
}

// HeldError says a key cannot take a call before Until.
type HeldError struct {
	Key    Key
	Until  time.Time
	Reason string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s calls held until %s: %s", e.Key, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// NoticeKind says what happened to a key's daily quota.
type NoticeKind string

// Notice kinds.
const (
	// QuotaNearExhaustion: the daily quota fell under the threshold; writes are held until Until.
	// Reported once per episode; the caller raises an Alert (kind quota_exhausted).
	QuotaNearExhaustion NoticeKind = "quota_near_exhaustion"
	// QuotaResumed: the quota is back over the threshold and writes go on.
	QuotaResumed NoticeKind = "quota_resumed"
)

// Notice reports a change of a key's daily quota state.
type Notice struct {
	Kind      NoticeKind
	Key       Key
	Used      int64
	Limit     int64
	Remaining int64
	// Until is when held writes are tried again (QuotaNearExhaustion).
	Until time.Time
}

// Limiter paces calls per key. It is safe for concurrent use.
type Limiter struct {
	cfg  Config
	mu   sync.Mutex
	keys map[Key]*bucket
}

type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
	// configured is what the configuration allows; readings of the CRM's window lower rate and
	// burst under it and raise them back up to it.
	configured struct{ rate, burst float64 }

	pausedUntil time.Time
	heldUntil   time.Time
	exhausted   bool // a QuotaNearExhaustion episode is open

	loc *time.Location // the account's time zone (SetLocation); nil: Config.Location
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	cfg.QuotaThreshold = max(cfg.QuotaThreshold, 0)
	if cfg.Location == nil {
		cfg.Location = func(Key) *time.Location { return time.UTC }
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 15 * time.Minute
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SharedTimeout <= 0 {
		cfg.SharedTimeout = 2 * time.Second
	}
	return &Limiter{cfg: cfg, keys: map[Key]*bucket{}}
}

// get returns key's bucket, creating a full one from the configured limits. l.mu is held.
func (l *Limiter) get(key Key, now time.Time) *bucket {
	b := l.keys[key]
	if b == nil {
		lim := Limits{Rate: 1, Burst: 1}
		if l.cfg.Limits != nil {
			lim = l.cfg.Limits(key)
		}
		if lim.Rate <= 0 {
			lim.Rate = 1
		}
		if lim.Burst < 1 {
			lim.Burst = 1
		}
		b = &bucket{rate: lim.Rate, burst: float64(lim.Burst), tokens: float64(lim.Burst), last: now}
		b.configured.rate, b.configured.burst = b.rate, b.burst
		l.keys[key] = b
	}
	return b
}

// tokensAt returns the bucket's tokens at t without changing it.
func (b *bucket) tokensAt(t time.Time) float64 {
	if !t.After(b.last) {
		return b.tokens
	}
	return math.Min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
}

// Reserve takes one call's token for key and returns how long the caller must wait before making
// the call. When the wait would exceed MaxWait (the key is paused or held, or the backlog is long)
// it takes nothing and returns a *HeldError.
func (l *Limiter) Reserve(key Key) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	b := l.get(key, now)
	start, reason := now, ""
	if b.pausedUntil.After(start) {
		start, reason = b.pausedUntil, "paused after a rate-limit answer"
	}
	if b.heldUntil.After(start) {
		start, reason = b.heldUntil, "daily API quota near exhaustion"
	}
	tokens := b.tokensAt(start) - 1
	at := start
	if tokens < 0 {
		at = start.Add(time.Duration(-tokens / b.rate * float64(time.Second)))
		if reason == "" {
			reason = "rate limit backlog"
		}
	}
	wait := at.Sub(now)
	if wait > l.cfg.MaxWait {
		return 0, &HeldError{Key: key, Until: at, Reason: reason}
	}
	if start.After(b.last) {
		b.last = start
	}
	b.tokens = tokens
	return wait, nil
}

// Wait blocks until key may take one call, or returns a *HeldError when that is further away than
// MaxWait, or ctx's error. With a Shared budget the call then also waits for a slot of it.
func (l *Limiter) Wait(ctx context.Context, key Key) error {
	d, err := l.Reserve(key)
	if err != nil {
		return err
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if l.cfg.Shared == nil {
		return nil
	}
	return l.cfg.Shared.Take(ctx, key, l.Limits(key), l.cfg.MaxWait)
}

// Pause stops calls for key until until (a 429 or REQUEST_LIMIT_EXCEEDED answer); other keys go on.
// A pause never shortens an earlier, longer one. With a Shared budget every replica pauses.
func (l *Limiter) Pause(key Key, until time.Time) {
	l.mu.Lock()
	b := l.get(key, l.cfg.Now())
	if until.After(b.pausedUntil) {
		b.pausedUntil = until
	}
	l.mu.Unlock()
	if l.cfg.Shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.SharedTimeout)
		defer cancel()
		_ = l.cfg.Shared.Pause(ctx, key, until) // this replica is paused either way; the others learn at their next lease
	}
}

// share writes a quota hold of key to the Shared budget, when there is one and n opens a hold.
// l.mu is not held.
func (l *Limiter) share(key Key, n *Notice) *Notice {
	if l.cfg.Shared != nil && n != nil && n.Kind == QuotaNearExhaustion {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.SharedTimeout)
		defer cancel()
		_ = l.cfg.Shared.Hold(ctx, key, n.Until)
	}
	return n
}

// SetLocation sets the time zone whose midnight resets key's daily quota (a HubSpot account's own
// time zone, read when connecting); it overrides Config.Location for key.
func (l *Limiter) SetLocation(key Key, loc *time.Location) {
	if loc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(key, l.cfg.Now()).loc = loc
}

// location is the time zone of key's daily reset. l.mu is held.
func (l *Limiter) location(key Key, b *bucket) *time.Location {
	if b.loc != nil {
		return b.loc
	}
	return l.cfg.Location(key)
}

// Limits returns the rate and burst key's bucket runs at now: the configured limits, or less while
// the CRM's readings allow less.
func (l *Limiter) Limits(key Key) Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key, l.cfg.Now())
	return Limits{Rate: b.rate, Burst: int(b.burst)}
}

// PausedUntil returns when key's pause or quota hold ends; zero when it is neither paused nor held.
func (l *Limiter) PausedUntil(key Key) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	var until time.Time
	if l.cfg.Shared != nil {
		if t := l.cfg.Shared.PausedUntil(key); t.After(now) {
			until = t
		}
	}
	b := l.keys[key]
	if b == nil {
		return until
	}
	for _, t := range []time.Time{b.pausedUntil, b.heldUntil} {
		if t.After(now) && t.After(until) {
			until = t
		}
	}
	return until
}

// ObserveSalesforce corrects key from a Salesforce response's Sforce-Limit-Info header. It returns a
// Notice when the daily quota crosses the threshold either way, else nil.
func (l *Limiter) ObserveSalesforce(key Key, h http.Header) *Notice {
	used, limit, ok := ParseSforceLimitInfo(h.Get("Sforce-Limit-Info"))
	if !ok {
		return nil
	}
	return l.ObserveSalesforceUsage(key, used, limit)
}

// ObserveSalesforceUsage is ObserveSalesforce for an api-usage reading already parsed (used of
// limit requests in the rolling 24 hours).
func (l *Limiter) ObserveSalesforceUsage(key Key, used, limit int64) *Notice {
	if limit <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.cfg.Now()
	n := l.quota(key, now, used, limit, l.near(used, limit), func() time.Time { return now.Add(l.cfg.Recheck) })
	l.mu.Unlock()
	return l.share(key, n)
}

// HubSpotReading is what a HubSpot response's X-HubSpot-RateLimit-* headers say; zero fields were
// absent.
type HubSpotReading struct {
	// Max and Remaining are the calls allowed in, and left in, the rolling window of length Interval.
	Max, Remaining int64
	HasRemaining   bool
	Interval       time.Duration
	// Daily and DailyRemaining are the account's daily quota (not sent on OAuth requests).
	Daily, DailyRemaining int64
	HasDaily              bool
}

// ParseHubSpot reads the X-HubSpot-RateLimit-* headers.
func ParseHubSpot(h http.Header) HubSpotReading {
	var r HubSpotReading
	r.Max, _ = headerInt(h, "X-HubSpot-RateLimit-Max")
	r.Remaining, r.HasRemaining = headerInt(h, "X-HubSpot-RateLimit-Remaining")
	if ms, ok := headerInt(h, "X-HubSpot-RateLimit-Interval-Milliseconds"); ok {
		r.Interval = time.Duration(ms) * time.Millisecond
	}
	var okD, okR bool
	r.Daily, okD = headerInt(h, "X-HubSpot-RateLimit-Daily")
	r.DailyRemaining, okR = headerInt(h, "X-HubSpot-RateLimit-Daily-Remaining")
	r.HasDaily = okD && okR
	return r
}

// ObserveHubSpot corrects key from a HubSpot response's X-HubSpot-RateLimit-* headers; see
// ObserveHubSpotReading.
func (l *Limiter) ObserveHubSpot(key Key, h http.Header) *Notice {
	return l.ObserveHubSpotReading(key, ParseHubSpot(h))
}

// ObserveHubSpotReading corrects key from a HubSpot rate-limit reading: the bucket's rate and burst
// become what the rolling window allows, capped by the configured limits (so they fall when the
// account's window shrinks and recover when it grows again), its tokens at most what the window
// has left, and the daily quota is checked. It returns a Notice when the daily quota crosses the
// threshold either way, else nil.
func (l *Limiter) ObserveHubSpotReading(key Key, r HubSpotReading) *Notice {
	return l.share(key, l.observeHubSpot(key, r))
}

func (l *Limiter) observeHubSpot(key Key, r HubSpotReading) *Notice {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	b := l.get(key, now)
	if r.Max > 0 && r.Interval > 0 {
		// The window's allowance, never more than configured: computed afresh from the configured
		// limits on every reading, so the bucket recovers once the account allows more again.
		burst := b.configured.burst
		if burst >= float64(r.Max) {
			burst = math.Max(1, math.Floor(float64(r.Max)/10))
		}
		rate := b.configured.rate
		if allowed := (float64(r.Max) - burst) / r.Interval.Seconds(); allowed > 0 && allowed < rate {
			rate = allowed
		}
		if rate != b.rate || burst != b.burst {
			b.tokens = math.Min(b.tokensAt(now), burst)
			b.last = laterOf(b.last, now)
			b.rate, b.burst = rate, burst
		}
		if r.HasRemaining {
			// Never more at once than the window has left; with nothing left the next call waits
			// for a token at the corrected rate (a 429 would then pause the key for the window).
			b.tokens = math.Min(b.tokensAt(now), float64(r.Remaining))
			b.last = laterOf(b.last, now)
		}
	}
	if !r.HasDaily || r.Daily <= 0 {
		return nil
	}
	used := r.Daily - r.DailyRemaining
	return l.quota(key, now, used, r.Daily, l.near(used, r.Daily), func() time.Time { return nextMidnight(now, l.location(key, b)) })
}

// ExhaustedDaily holds key until its daily quota resets after the CRM refused a call for it
// (HubSpot 429 with policyName DAILY). It returns the Notice the first time in an episode.
func (l *Limiter) ExhaustedDaily(key Key) *Notice {
	return l.share(key, l.exhaustedDaily(key))
}

func (l *Limiter) exhaustedDaily(key Key) *Notice {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	reset := func() time.Time { return now.Add(l.cfg.Recheck) }
	if key.Provider == provider.HubSpot {
		b := l.get(key, now)
		reset = func() time.Time { return nextMidnight(now, l.location(key, b)) }
	}
	return l.quota(key, now, 0, 0, true, reset)
}

// near reports whether a daily reading is under the threshold.
func (l *Limiter) near(used, limit int64) bool {
	return float64(limit-used) <= l.cfg.QuotaThreshold*float64(limit)
}

// quota applies a daily quota reading (used of limit, 0 of 0 when unknown); near says it is under the
// threshold. l.mu is held.
func (l *Limiter) quota(key Key, now time.Time, used, limit int64, near bool, reset func() time.Time) *Notice {
	b := l.get(key, now)
	remaining := limit - used
	if near {
		until := reset()
		if until.After(b.heldUntil) {
			b.heldUntil = until
		}
		if b.exhausted {
			return nil
		}
		b.exhausted = true
		return &Notice{Kind: QuotaNearExhaustion, Key: key, Used: used, Limit: limit, Remaining: remaining, Until: b.heldUntil}
	}
	if !b.exhausted {
		return nil
	}
	b.exhausted = false
	b.heldUntil = time.Time{}
	return &Notice{Kind: QuotaResumed, Key: key, Used: used, Limit: limit, Remaining: remaining}
}

// ParseSforceLimitInfo reads api-usage=<used>/<limit> from a Sforce-Limit-Info header value
// ("api-usage=10018/100000; per-app-api-usage=17/250(appName=x)"); other keys are ignored.
func ParseSforceLimitInfo(v string) (used, limit int64, ok bool) {
	for _, part := range strings.Split(v, ";") {
		k, val, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || strings.TrimSpace(k) != "api-usage" {
			continue
		}
		u, l, found := strings.Cut(strings.TrimSpace(val), "/")
		if !found {
			return 0, 0, false
		}
		used, err1 := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
		limit, err2 := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
		if err1 != nil || err2 != nil || used < 0 || limit <= 0 {
			return 0, 0, false
		}
		return used, limit, true
	}
	return 0, 0, false
}

func headerInt(h http.Header, name string) (int64, bool) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// nextMidnight is the first midnight after now in loc.
func nextMidnight(now time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ForWindow sizes a bucket for a CRM limit of max calls in any rolling window: with burst calls
// allowed at once, the rate is (max − burst) / window, so that no window ever sees more than max
// calls (e.g. Salesforce 25 per second → ForWindow(25, time.Second, 1) = 24/s, burst 1; HubSpot 190
// per 10 s → ForWindow(190, 10*time.Second, 5) = 18.5/s, burst 5).
func ForWindow(max int, window time.Duration, burst int) Limits {
	if burst < 1 {
		burst = 1
	}
	if burst >= max {
		burst = max/10 + 1
	}
	rate := float64(max-burst) / window.Seconds()
	if rate <= 0 {
		rate = float64(max) / window.Seconds()
	}
	return Limits{Rate: rate, Burst: burst}
}
