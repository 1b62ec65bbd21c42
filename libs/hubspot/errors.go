package hubspot

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/redact"
	"github.com/ownersync/ownersync/libs/retry"
)

// Sentinels matched with errors.Is against an *APIError.
var (
	// ErrNotFound: HTTP 404 (an unknown owner, no contact with that email).
	ErrNotFound = errors.New("hubspot: not found")
	// ErrRateLimited: HTTP 429, either policy.
	ErrRateLimited = errors.New("hubspot: rate limited")
	// ErrDailyLimit: HTTP 429 with policyName DAILY. Stop calling the account until its daily
	// count resets (midnight in the account's time zone); it is not transient.
	ErrDailyLimit = errors.New("hubspot: daily limit reached")
	// ErrNoResult: a batch response had neither a result nor an error for an input.
	ErrNoResult = errors.New("hubspot: no result for input")
)

// 429 policy names (docs/crm-protocols.md#hubspot-rate-limits).
const (
	PolicyTenSecondlyRolling = "TEN_SECONDLY_ROLLING"
	PolicyDaily              = "DAILY"
)

// StatusLocked and StatusMigration are HubSpot-specific statuses: 423 Locked (too much write
// volume on the same data) and 477 Migration in Progress.
const (
	StatusLocked    = 423
	StatusMigration = 477
)

// LockWait is how long HubSpot's 423 lock lasts; wait at least this before the next request.
const LockWait = 2 * time.Second

// DefaultRateWindow is the burst window assumed on a TEN_SECONDLY_ROLLING 429 without an
// X-HubSpot-RateLimit-Interval-Milliseconds header.
const DefaultRateWindow = 10 * time.Second

// APIError is HubSpot's error body (docs/crm-protocols.md#hubspot-errors; every field optional),
// for a whole request (HTTPStatus ≥ 400) or for one input of a 207 batch response (HTTPStatus 207,
// Context names the input).
type APIError struct {
	HTTPStatus    int                 `json:"-"`
	Status        string              `json:"status,omitempty"`
	Message       string              `json:"message,omitempty"`
	CorrelationID string              `json:"correlationId,omitempty"`
	Category      string              `json:"category,omitempty"`
	SubCategory   string              `json:"subCategory,omitempty"`
	Context       map[string][]string `json:"context,omitempty"`
	Errors        []ErrorDetail       `json:"errors,omitempty"`
	Links         map[string]string   `json:"links,omitempty"`
	// PolicyName and ErrorType come with 429s: TEN_SECONDLY_ROLLING or DAILY, and RATE_LIMIT.
	PolicyName string `json:"policyName,omitempty"`
	ErrorType  string `json:"errorType,omitempty"`
	GroupName  string `json:"groupName,omitempty"`
	RequestID  string `json:"requestId,omitempty"`
	// RateLimit holds the response's X-HubSpot-RateLimit-* headers, when it had them.
	RateLimit RateLimit `json:"-"`
	// RetryAfterHint is the response's Retry-After header, if any.
	RetryAfterHint time.Duration `json:"-"`
}

// ErrorDetail is one element of an error body's errors[].
type ErrorDetail struct {
	Message     string              `json:"message"`
	Code        string              `json:"code,omitempty"`
	Context     map[string][]string `json:"context,omitempty"`
	In          string              `json:"in,omitempty"`
	SubCategory string              `json:"subCategory,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hubspot: HTTP %d", e.HTTPStatus)
	for _, s := range []string{e.Category, e.PolicyName, e.Message} {
		if s != "" {
			b.WriteString(" ")
			b.WriteString(s)
		}
	}
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, " (correlationId %s)", e.CorrelationID)
	}
	return b.String()
}

// Is matches ErrNotFound, ErrRateLimited and ErrDailyLimit.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.HTTPStatus == http.StatusNotFound
	case ErrRateLimited:
		return e.HTTPStatus == http.StatusTooManyRequests
	case ErrDailyLimit:
		return e.HTTPStatus == http.StatusTooManyRequests && e.PolicyName == PolicyDaily
	}
	return false
}

// RetryAfter implements retry.RetryAfterer: the Retry-After header when present; at least LockWait
// for 423; for a TEN_SECONDLY_ROLLING 429 without Retry-After the time one call takes to leave the
// rolling window at its rate (RateLimit.SlotWait), not the whole window
// (docs/crm-protocols.md#hubspot-errors and docs/crm-protocols.md#hubspot-rate-limits).
func (e *APIError) RetryAfter() time.Duration {
	d := e.RetryAfterHint
	switch {
	case e.HTTPStatus == StatusLocked:
		d = max(d, LockWait)
	case e.HTTPStatus == http.StatusTooManyRequests && e.PolicyName != PolicyDaily && d == 0:
		d = e.RateLimit.SlotWait()
	}
	return d
}

// TraceIDs returns the objectWriteTraceId values of the error's context.
func (e *APIError) TraceIDs() []string { return e.Context["objectWriteTraceId"] }

// Transient reports whether err may go away on a retry with backoff
// (docs/crm-protocols.md#hubspot-errors and docs/crm-protocols.md#hubspot-rate-limits): 429
// TEN_SECONDLY_ROLLING, 423 (after ≥ 2 s), 477 (after Retry-After), 500, 502, 503, 504, 521, 523,
// 524, token endpoint 5xx, ErrNoResult, timeouts and network failures. A 429 DAILY is not: the
// account is out of quota until its reset. 522, 525 and 526 need HubSpot support, and other 4xx
// (401, 403, 404, validation errors, per-input batch errors) will not change either. A cancelled
// context is not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.HTTPStatus {
		case http.StatusTooManyRequests:
			return ae.PolicyName != PolicyDaily
		case StatusLocked, StatusMigration:
			return true
		case 522, 525, 526:
			return false
		}
		return ae.HTTPStatus >= 500
	}
	if errors.Is(err, ErrNoResult) {
		return true
	}
	return retry.Classify(err) == retry.TransientError
}

// parseErrorResponse builds the APIError of a failed response.
func parseErrorResponse(status int, h http.Header, body []byte, rl RateLimit, now time.Time) *APIError {
	ae := &APIError{}
	if err := json.Unmarshal(body, ae); err != nil || (ae.Message == "" && ae.Category == "" && ae.PolicyName == "") {
		// Not HubSpot's error shape (an HTML page, a proxy's answer): only the status is kept;
		// the body never reaches an error, a run or a report (issue 13 item 1).
		*ae = APIError{Message: http.StatusText(status)}
	}
	ae.sanitize()
	ae.HTTPStatus = status
	ae.RateLimit = rl
	ae.RetryAfterHint = retry.ParseRetryAfter(h.Get("Retry-After"), now)
	return ae
}

// sanitize bounds the per-input errors of a batch answer as parseErrorResponse does a whole
// request's.
func (r *batchResponse) sanitize() {
	for k := range r.Errors {
		r.Errors[k].sanitize()
	}
}

// maxErrorDetails bounds the errors[] kept of one error body.
const maxErrorDetails = 20

// sanitize keeps what the error may carry into stored errors, runs and reports: code-shaped
// codes and short printable messages (issue 13 item 1).
func (e *APIError) sanitize() {
	e.Status, e.Category, e.SubCategory = redact.Code(e.Status), redact.Code(e.Category), redact.Code(e.SubCategory)
	e.PolicyName, e.ErrorType, e.GroupName = redact.Code(e.PolicyName), redact.Code(e.ErrorType), redact.Text(e.GroupName, 64)
	e.CorrelationID, e.RequestID = redact.Code(e.CorrelationID), redact.Code(e.RequestID)
	e.Message = redact.Text(e.Message, redact.MaxCRMMessage)
	if len(e.Errors) > maxErrorDetails {
		e.Errors = e.Errors[:maxErrorDetails]
	}
	for i := range e.Errors {
		d := &e.Errors[i]
		d.Message, d.Code, d.SubCategory, d.In = redact.Text(d.Message, redact.MaxCRMMessage), redact.Code(d.Code), redact.Code(d.SubCategory), redact.Text(d.In, 64)
	}
}
