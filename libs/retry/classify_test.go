package retry_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ownersync/ownersync/libs/retry"
)

func TestClassify(t *testing.T) {
	token := func(status int) error {
		return fmt.Errorf("token: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}})
	}
	urlErr := func(err error) error { return &url.Error{Op: "Post", URL: "https://crm.example/x", Err: err} }
	tests := []struct {
		name string
		err  error
		want retry.Class
	}{
		{name: "nil", err: nil, want: retry.Unclassified},
		{name: "an API answer", err: errors.New("INVALID_FIELD"), want: retry.Unclassified},
		{name: "token endpoint 503", err: token(503), want: retry.TransientError},
		{name: "token endpoint 429", err: token(429), want: retry.TransientError},
		{name: "token endpoint 400", err: token(400), want: retry.PermanentError},
		{name: "token endpoint without a response", err: &oauth2.RetrieveError{}, want: retry.PermanentError},
		{name: "cancelled", err: fmt.Errorf("call: %w", context.Canceled), want: retry.PermanentError},
		{name: "cancelled inside url.Error", err: urlErr(context.Canceled), want: retry.PermanentError},
		{name: "deadline", err: urlErr(context.DeadlineExceeded), want: retry.TransientError},
		{name: "network timeout", err: urlErr(os.ErrDeadlineExceeded), want: retry.TransientError},
		{name: "connection refused", err: urlErr(syscall.ECONNREFUSED), want: retry.TransientError},
		{name: "EOF mid-response", err: urlErr(io.ErrUnexpectedEOF), want: retry.TransientError},
		{name: "bad certificate", err: urlErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), want: retry.PermanentError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retry.Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
