package salesforce

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

// Status and error codes the writer branches on (docs/crm-protocols.md#salesforce-errors).
// Whole-request errors carry them as errorCode, per-record SaveResult errors as statusCode; both
// end up in APIError.Code.
const (
	CodeInactiveOwnerOrUser                      = "INACTIVE_OWNER_OR_USER"
	CodeInvalidCrossReferenceKey                 = "INVALID_CROSS_REFERENCE_KEY"
	CodeInvalidCrossReferenceTypeForField        = "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD"
	CodeEntityIsDeleted                          = "ENTITY_IS_DELETED"
	CodeUnableToLockRow                          = "UNABLE_TO_LOCK_ROW"
	CodeRequestLimitExceeded                     = "REQUEST_LIMIT_EXCEEDED"
	CodeInvalidSessionID                         = "INVALID_SESSION_ID"
	CodeMalformedID                              = "MALFORMED_ID"
	CodeInsufficientAccessOrReadonly             = "INSUFFICIENT_ACCESS_OR_READONLY"
	CodeInsufficientAccessOnCrossReferenceEntity = "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"
	CodeTransferRequiresRead                     = "TRANSFER_REQUIRES_READ"
	CodeInvalidEmptyKeyOwner                     = "INVALID_EMPTY_KEY_OWNER"
	CodeAllOrNoneOperationRolledBack             = "ALL_OR_NONE_OPERATION_ROLLED_BACK"
	CodeEntityIsLocked                           = "ENTITY_IS_LOCKED"
	CodeMaintenance                              = "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE"
	CodeMalformedQuery                           = "MALFORMED_QUERY"
	CodeInvalidQueryLocator                      = "INVALID_QUERY_LOCATOR"
	CodeNotFound                                 = "NOT_FOUND"
)

// ErrNotFound matches (with errors.Is) an APIError for HTTP 404 and GetUser's empty result.
var ErrNotFound = errors.New("salesforce: not found")

// APIError is an error Salesforce reported: a whole-request error (HTTPStatus ≥ 400, Code from
// errorCode) or one record's SaveResult error (HTTPStatus of the Collections response, usually 200,
// Code from statusCode).
type APIError struct {
	HTTPStatus int
	Code       string
	Message    string
	Fields     []string
	// Errors holds every error of the response; the fields above repeat the first one.
	Errors []ErrorItem
	// RetryAfterHint is the response's Retry-After, if it had one.
	RetryAfterHint time.Duration
}

// ErrorItem is one element of a Salesforce error array. Whole-request errors name the code
// errorCode, SaveResult errors statusCode; ErrorCode holds whichever was present.
type ErrorItem struct {
	ErrorCode string   `json:"errorCode,omitempty"`
	Message   string   `json:"message"`
	Fields    []string `json:"fields"`
}

// UnmarshalJSON accepts both errorCode and statusCode.
func (e *ErrorItem) UnmarshalJSON(b []byte) error {
	var raw struct {
		ErrorCode  string   `json:"errorCode"`
		StatusCode string   `json:"statusCode"`
		Message    string   `json:"message"`
		Fields     []string `json:"fields"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	e.ErrorCode = raw.ErrorCode
	if e.ErrorCode == "" {
		e.ErrorCode = raw.StatusCode
	}
	e.Message, e.Fields = raw.Message, raw.Fields
	return nil
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("salesforce: ")
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d ", e.HTTPStatus)
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, " (fields %s)", strings.Join(e.Fields, ", "))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true for 404s.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && (e.HTTPStatus == http.StatusNotFound || e.Code == CodeNotFound)
}

// RetryAfter implements retry.RetryAfterer with the response's Retry-After header.
func (e *APIError) RetryAfter() time.Duration { return e.RetryAfterHint }

// transientCodes are retried with backoff (docs/crm-protocols.md#salesforce-errors).
// ALL_OR_NONE_OPERATION_ROLLED_BACK is here because the record itself did not fail: sent again
// (alone, allOrNone false) it can succeed.
var transientCodes = map[string]bool{
	CodeUnableToLockRow:              true,
	CodeRequestLimitExceeded:         true,
	CodeMaintenance:                  true,
	CodeAllOrNoneOperationRolledBack: true,
}

// permanentCodes will not change on a retry; listed so the table in §2.8 is visible in one place.
var permanentCodes = map[string]bool{
	CodeInactiveOwnerOrUser:                      true,
	CodeInvalidCrossReferenceKey:                 true,
	CodeInvalidCrossReferenceTypeForField:        true,
	CodeEntityIsDeleted:                          true,
	CodeMalformedID:                              true,
	CodeInsufficientAccessOrReadonly:             true,
	CodeInsufficientAccessOnCrossReferenceEntity: true,
	CodeTransferRequiresRead:                     true,
	CodeInvalidEmptyKeyOwner:                     true,
	CodeEntityIsLocked:                           true,
	CodeInvalidSessionID:                         true, // already retried once with a new token
	CodeMalformedQuery:                           true,
}

// Transient reports whether err may go away on a retry with backoff, per
// docs/crm-protocols.md#salesforce-errors: UNABLE_TO_LOCK_ROW, REQUEST_LIMIT_EXCEEDED,
// INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE, ALL_OR_NONE_OPERATION_ROLLED_BACK (retry the
// record alone), HTTP 5xx and 429, token endpoint 5xx, timeouts and network failures are transient.
// Everything else Salesforce answered (INACTIVE_OWNER_OR_USER, INVALID_CROSS_REFERENCE_KEY,
// ENTITY_IS_DELETED, MALFORMED_ID, other 4xx, a 401 that persisted after a new token) is permanent,
// as is a cancelled context.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case transientCodes[ae.Code]:
			return true
		case permanentCodes[ae.Code]:
			return false
		}
		return ae.HTTPStatus >= 500 || ae.HTTPStatus == http.StatusTooManyRequests
	}
	return retry.Classify(err) == retry.TransientError
}

// parseErrorResponse builds the APIError of a failed response body.
func parseErrorResponse(status int, h http.Header, body []byte) *APIError {
	ae := &APIError{HTTPStatus: status, RetryAfterHint: retry.ParseRetryAfter(h.Get("Retry-After"), time.Now())}
	var items []ErrorItem
	if err := json.Unmarshal(body, &items); err != nil || len(items) == 0 {
		var one ErrorItem // some endpoints answer a single object
		if err := json.Unmarshal(body, &one); err == nil && one.ErrorCode != "" {
			items = []ErrorItem{one}
		} else {
			items = nil
		}
	}
	if len(items) == 0 {
		// Not Salesforce's error shape (an HTML page, a proxy's answer): only the status is
		// kept; the body never reaches an error, a run or a report (issue 13 item 1).
		ae.Message = http.StatusText(status)
		return ae
	}
	for i := range items {
		items[i] = sanitize(items[i])
	}
	ae.Errors = items
	ae.Code, ae.Message, ae.Fields = items[0].ErrorCode, items[0].Message, items[0].Fields
	return ae
}

// maxFields bounds the field names kept of one error.
const maxFields = 10

// sanitize keeps what an error item may carry into stored errors: a code-shaped code, a short
// printable message and a few field names.
func sanitize(e ErrorItem) ErrorItem {
	e.ErrorCode = redact.Code(e.ErrorCode)
	e.Message = redact.Text(e.Message, redact.MaxCRMMessage)
	if len(e.Fields) > maxFields {
		e.Fields = e.Fields[:maxFields]
	}
	for i, f := range e.Fields {
		e.Fields[i] = redact.Text(f, 80)
	}
	return e
}
