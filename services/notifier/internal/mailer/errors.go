package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// Error is a failed Send. Permanent failures will fail again unchanged (the consumer should
// dead-letter the message and log); transient ones may succeed later (the consumer should let
// JetStream redeliver).
type Error struct {
	// Permanent is true for 5xx replies, rejected credentials, certificate and configuration
	// problems, and emails that cannot be built.
	Permanent bool
	// Code is the SMTP reply code, 0 when the server did not answer (network, TLS, local errors).
	Code int
	// Attempts is the number of delivery attempts made.
	Attempts int
	// Err is the last underlying error.
	Err error
}

func (e *Error) Error() string {
	kind := "transient"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("smtp send failed (%s, code %d, %d attempts): %v", kind, e.Code, e.Attempts, e.Err)
	}
	return fmt.Sprintf("smtp send failed (%s, %d attempts): %v", kind, e.Attempts, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the failure is transient.
func (e *Error) Temporary() bool { return !e.Permanent }

// IsPermanent reports whether err is (or wraps) a permanent *Error.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// classify decides whether a go-mail error is worth retrying.
//
//   - SMTP replies: 4xx transient, 5xx permanent (RFC 5321 §4.2.1), whether they answered the
//     greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT or DATA.
//   - Refused or reset connections, timeouts, EOFs: transient (the relay is down or restarting).
//   - Certificate verification failures, a server without STARTTLS under starttls=required or
//     without AUTH while credentials are configured (it never answers with a code), unsupported or
//     unencrypted AUTH: permanent; configuration must change.
//   - Anything else: transient, so a surprise is retried a bounded number of times and then left
//     to JetStream's redelivery limit rather than dropped at once.
func classify(err error) *Error {
	e := &Error{Err: err}

	var se *gomail.SendError
	if errors.As(err, &se) {
		e.Code = se.ErrorCode()
		switch {
		case e.Code >= 500:
			e.Permanent = true
		case e.Code >= 400:
		case se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts || se.Reason == gomail.ErrNoUnencoded:
			e.Permanent = true
		}
		return e
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		e.Code = te.Code
		e.Permanent = te.Code >= 500
		return e
	}

	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		e.Permanent = true
	case errors.As(err, &alert):
		e.Permanent = true // the server refused our TLS handshake (protocol or certificate mismatch)
	case errors.Is(err, gosmtp.ErrUnencrypted), errors.Is(err, gosmtp.ErrWrongHostname),
		errors.Is(err, gomail.ErrNoSupportedAuthDiscovered), errors.Is(err, gomail.ErrPlainAuthNotSupported),
		errors.Is(err, gomail.ErrLoginAuthNotSupported), errors.Is(err, gomail.ErrCramMD5AuthNotSupported),
		errors.Is(err, gomail.ErrSCRAMSHA1AuthNotSupported), errors.Is(err, gomail.ErrSCRAMSHA256AuthNotSupported),
		errors.Is(err, gomail.ErrNoFromAddress), errors.Is(err, gomail.ErrNoRcptAddresses):
		e.Permanent = true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
	default:
		var ne net.Error
		if errors.As(err, &ne) {
			return e // timeouts and other network trouble
		}
		if isConfigMismatch(err) {
			e.Permanent = true
		}
	}
	return e
}

// isConfigMismatch recognises go-mail's errors for a server that does not offer STARTTLS when the
// policy requires it, or no AUTH when credentials are configured. go-mail builds them with
// fmt.Errorf and no sentinel, so their text is the only handle; tests against the sink pin them.
func isConfigMismatch(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "does not support STARTTLS") || strings.Contains(msg, "does not support SMTP AUTH")
}
