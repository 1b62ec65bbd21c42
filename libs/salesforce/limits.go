package salesforce

import (
	"strconv"
	"strings"
)

// LimitInfo is the org's API usage as reported by the Sforce-Limit-Info response header
// (docs/crm-protocols.md#sforce-limit-info), e.g. "api-usage=10018/100000".
type LimitInfo struct {
	// Used and Max are api-usage=<used>/<limit>: requests used in the rolling 24 h and the org's limit.
	Used, Max int64
}

// Remaining is Max−Used, never negative.
func (l LimitInfo) Remaining() int64 {
	if l.Used >= l.Max {
		return 0
	}
	return l.Max - l.Used
}

// LimitHeader is the response header carrying LimitInfo.
const LimitHeader = "Sforce-Limit-Info"

// ParseLimitInfo parses a Sforce-Limit-Info value: key=value pairs separated by ";", of which only
// api-usage=<used>/<limit> is read; unknown keys (per-app-api-usage, api-bursts, …) are ignored.
// ok is false when api-usage is missing or malformed.
func ParseLimitInfo(v string) (info LimitInfo, ok bool) {
	for part := range strings.SplitSeq(v, ";") {
		key, val, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(key), "api-usage") {
			continue
		}
		usedS, maxS, found := strings.Cut(strings.TrimSpace(val), "/")
		if !found {
			return LimitInfo{}, false
		}
		used, err1 := strconv.ParseInt(strings.TrimSpace(usedS), 10, 64)
		limit, err2 := strconv.ParseInt(strings.TrimSpace(maxS), 10, 64)
		if err1 != nil || err2 != nil || used < 0 || limit < 0 {
			return LimitInfo{}, false
		}
		return LimitInfo{Used: used, Max: limit}, true
	}
	return LimitInfo{}, false
}
