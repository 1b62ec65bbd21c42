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

// Rate-limit response headers.
const (
	HeaderMax            = "X-HubSpot-RateLimit-Max"
	HeaderRemaining      = "X-HubSpot-RateLimit-Remaining"
	HeaderInterval       = "X-HubSpot-RateLimit-Interval-Milliseconds"
	HeaderDaily          = "X-HubSpot-RateLimit-Daily"
	HeaderDailyRemaining = "X-HubSpot-RateLimit-Daily-Remaining"
)

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
	if ms, okInt = num(HeaderInterval); okInt {
		rl.Interval = time.Duration(ms) * time.Millisecond
	}
	rl.Daily, okDaily = num(HeaderDaily)
	rl.DailyRemaining, okDailyRem = num(HeaderDailyRemaining)
	rl.HasDaily = okDaily || okDailyRem
	return rl, okMax || okRem || okInt || rl.HasDaily
}
