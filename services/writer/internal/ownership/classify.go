package ownership

import "net/http"

// ErrorClass says what to do about a failed CRM write.
type ErrorClass string

// Error classes.
const (
	// Transient: retry with backoff; the same write may succeed later.
	Transient ErrorClass = "transient"
	// RateLimited: a rate limit or quota answered; pause that tenant+provider, then retry.
	RateLimited ErrorClass = "rate_limited"
	// Auth: the token was refused; get a new token, then retry.
	Auth ErrorClass = "auth"
	// Permanent: the same write will fail again; record the failure, dead-letter, alert.
	Permanent ErrorClass = "permanent"
)

// Classification is the verdict on one CRM error.
type Classification struct {
	Class ErrorClass
	// RefreshUser asks mapper to re-read the target owner from the CRM (user.refresh.<tenant>.<provider>):
	// the CRM says the user is inactive, so the mapping the writer used is stale.
	RefreshUser bool
	// RetryAlone: the record failed only because another in the same all-or-none batch failed.
	RetryAlone bool
}

// Retryable reports whether the write may succeed if tried again.
func (c Classification) Retryable() bool { return c.Class != Permanent }

// Salesforce status codes (docs/crm-protocols.md#salesforce-errors).
var salesforceCodes = map[string]Classification{
	"INACTIVE_OWNER_OR_USER":                              {Class: Permanent, RefreshUser: true},
	"INVALID_CROSS_REFERENCE_KEY":                         {Class: Permanent},
	"INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD":              {Class: Permanent},
	"ENTITY_IS_DELETED":                                   {Class: Permanent},
	"INVALID_ID_FIELD":                                    {Class: Permanent},
	"MALFORMED_ID":                                        {Class: Permanent},
	"INSUFFICIENT_ACCESS_OR_READONLY":                     {Class: Permanent},
	"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY":       {Class: Permanent},
	"TRANSFER_REQUIRES_READ":                              {Class: Permanent},
	"INVALID_EMPTY_KEY_OWNER":                             {Class: Permanent},
	"ENTITY_IS_LOCKED":                                    {Class: Permanent},
	"FIELD_INTEGRITY_EXCEPTION":                           {Class: Permanent},
	"FIELD_CUSTOM_VALIDATION_EXCEPTION":                   {Class: Permanent},
	"REQUIRED_FIELD_MISSING":                              {Class: Permanent},
	"INVALID_FIELD":                                       {Class: Permanent},
	"INVALID_TYPE":                                        {Class: Permanent},
	"NOT_FOUND":                                           {Class: Permanent},
	"MALFORMED_QUERY":                                     {Class: Permanent},
	"JSON_PARSER_ERROR":                                   {Class: Permanent},
	"UNABLE_TO_LOCK_ROW":                                  {Class: Transient},
	"INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE": {Class: Transient},
	"SERVER_UNAVAILABLE":                                  {Class: Transient},
	"REQUEST_LIMIT_EXCEEDED":                              {Class: RateLimited},
	"INVALID_SESSION_ID":                                  {Class: Auth},
	"ALL_OR_NONE_OPERATION_ROLLED_BACK":                   {Class: Transient, RetryAlone: true},
}

// ClassifySalesforce classifies a Salesforce error by its errorCode/statusCode, or, for a code it
// does not know (or none), by the HTTP status (0 when the request got no answer).
func ClassifySalesforce(httpStatus int, code string) Classification {
	if c, ok := salesforceCodes[code]; ok {
		return c
	}
	return classifyStatus(httpStatus)
}

// HubSpot per-record error codes that mean the owner is unusable.
var hubspotOwnerCodes = map[string]bool{
	"INVALID_OWNER_ID":       true,
	"INACTIVE_OWNER":         true,
	"INACTIVE_OWNER_OR_USER": true,
}

// ClassifyHubSpot classifies a HubSpot error by HTTP status (0 for a per-record error inside a 207
// answer), category (RATE_LIMITS, VALIDATION_ERROR, OBJECT_NOT_FOUND, …) and, when present, the code
// of its first sub-error (docs/crm-protocols.md#hubspot-errors).
func ClassifyHubSpot(httpStatus int, category, code string) Classification {
	switch {
	case hubspotOwnerCodes[code]:
		return Classification{Class: Permanent, RefreshUser: true}
	case category == "RATE_LIMITS" || httpStatus == http.StatusTooManyRequests:
		return Classification{Class: RateLimited}
	case httpStatus == http.StatusLocked, httpStatus == 477:
		// 423: the data is locked for 2 s; 477: the account is moving between data centres.
		return Classification{Class: Transient}
	case httpStatus == 522, httpStatus == 525, httpStatus == 526:
		// HubSpot says to contact support: retrying will not help.
		return Classification{Class: Permanent}
	case httpStatus == 0 && category != "":
		// A per-record error: the record or the value is wrong.
		return Classification{Class: Permanent}
	}
	return classifyStatus(httpStatus)
}

// classifyStatus classifies by HTTP status alone: no answer and 5xx are transient, 401 wants a new
// token, 429 is a rate limit, and other 4xx will not change.
func classifyStatus(s int) Classification {
	switch {
	case s == 0, s >= 500, s == http.StatusRequestTimeout, s == http.StatusLocked:
		return Classification{Class: Transient}
	case s == http.StatusTooManyRequests:
		return Classification{Class: RateLimited}
	case s == http.StatusUnauthorized:
		return Classification{Class: Auth}
	}
	return Classification{Class: Permanent}
}
