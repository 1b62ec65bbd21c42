package retry

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// Class is the verdict on a failed outbound call: whether the same call may succeed later.
type Class int

// The classes.
const (
	// Unclassified: the error is not a transport or token failure; the caller's own rules (a CRM's
	// API error codes) decide.
	Unclassified Class = iota
	// TransientError: the same call may succeed after a wait.
	TransientError
	// PermanentError: the same call will fail again.
	PermanentError
)

func (c Class) String() string {
	switch c {
	case TransientError:
		return "transient"
	case PermanentError:
		return "permanent"
	}
	return "unclassified"
}

// Classify sorts the failures every HTTP client shares, whatever API it speaks:
//   - a token endpoint's answer (*oauth2.RetrieveError): 5xx and 429 are transient, any other
//     answer (a refused client or grant) permanent;
//   - a cancelled context is permanent (the caller gave up), a deadline or a network timeout
//     transient;
//   - a certificate that fails verification is permanent (it will fail again);
//   - any other transport failure (*url.Error: connection refused or reset, EOF mid-response) is
//     transient.
//
// Anything else, such as an API's own error answer, is Unclassified. The CRM clients
// (salesforce.Transient, hubspot.Transient) apply their API's rules first and this for the rest.
func Classify(err error) Class {
	if err == nil {
		return Unclassified
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests) {
			return TransientError
		}
		return PermanentError
	}
	if errors.Is(err, context.Canceled) {
		return PermanentError
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return TransientError
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return TransientError
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return PermanentError
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return TransientError
	}
	return Unclassified
}
