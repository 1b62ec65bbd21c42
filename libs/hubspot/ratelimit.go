package hubspot

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimit is what the X-HubSpot-RateLimit-* response headers say
// (docs/crm-protocols.md#hubspot-rate-limits).
type RateLimit struct {
	// Max and Remaining are the requests allowed in, and left in, the rolling window (per app).
	Max, Remaining int64
	// Interval is the rolling window, typically 10s.
	Interval time.Duration
	// Daily and DailyRemaining are the account's daily quota; not sent on OAuth-authorized requests,
	// in which case HasDaily is false.
	Daily, DailyRemaining int64
	HasDaily              bool
}

// SlotWait is how long after a TEN_SECONDLY_ROLLING 429 the window has room for one call again:
// the window's calls leave it one by one as they age, so at the window's rate (Max per Interval)
// the first slot frees after Interval/Max, not after the whole Interval. Without the headers it
// is DefaultRateWindow/Max, and without Max the whole DefaultRateWindow (nothing is known).
func (r RateLimit) SlotWait() time.Duration {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRateWindow
	}
	if r.Max <= 0 {
		return interval
	}
	return max(interval/time.Duration(r.Max), time.Millisecond)
}

// Rate-limit response headers.
const (
	HeaderMax            = "X-HubSpot-RateLimit-Max"
	HeaderRemaining      = "X-HubSpot-RateLimit-Remaining"
	HeaderInterval       = "X-HubSpot-RateLimit-Interval-Milliseconds"
	HeaderDaily          = "X-HubSpot-RateLimit-Daily"
	HeaderDailyRemaining = "X-HubSpot-RateLimit-Daily-Remaining"
)

// maxIntervalMillis bounds X-HubSpot-RateLimit-Interval-Milliseconds to one day (HubSpot's windows
// are seconds long).
const maxIntervalMillis = int64(24 * time.Hour / time.Millisecond)

// ParseRateLimit reads the X-HubSpot-RateLimit-* headers; ok is false when none of them is usable
// (e.g. Search API responses, which carry none). Deprecated -Secondly headers are ignored.
func ParseRateLimit(h http.Header) (rl RateLimit, ok bool) {
	num := func(name string) (int64, bool) {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	var okMax, okRem, okInt, okDaily, okDailyRem bool
	rl.Max, okMax = num(HeaderMax)
	rl.Remaining, okRem = num(HeaderRemaining)
	var ms int64
	// An interval longer than a day is no rolling window HubSpot uses; such a value (or one whose
	// milliseconds overflow a time.Duration) is ignored rather than trusted as a pause.
	if ms, okInt = num(HeaderInterval); okInt && ms <= maxIntervalMillis {
		rl.Interval = time.Duration(ms) * time.Millisecond
	} else {
		okInt = false
	}
	rl.Daily, okDaily = num(HeaderDaily)
	rl.DailyRemaining, okDailyRem = num(HeaderDailyRemaining)
	rl.HasDaily = okDaily || okDailyRem
	return rl, okMax || okRem || okInt || rl.HasDaily
}
