// Package mailer sends rendered emails over SMTP with github.com/wneessen/go-mail.
//
// The server is one URL: smtp://user:pass@host:port (STARTTLS) or smtps://… (implicit TLS), with
// query options (see ParseURL). Send retries transient failures (4xx replies, refused connections,
// timeouts) with exponential backoff, a bounded number of times, and returns an *Error that says
// whether the failure is permanent (5xx replies, rejected credentials, bad certificates), so the
// consumer can dead-letter permanent failures and let JetStream redeliver transient ones.
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	gomail "github.com/wneessen/go-mail"

	"github.com/ownersync/ownersync/libs/redact"
	"github.com/ownersync/ownersync/services/notifier/internal/render"
)

// Config configures a Mailer.
type Config struct {
	// URL is the SMTP server, e.g. "smtp://user:pass@smtp.example.com:587?starttls=required".
	URL string
	// From is the sender, e.g. "ownersync <reports@example.com>".
	From string
	// Timeout bounds one attempt (connect, TLS, AUTH and transfer); 15 s when zero.
	Timeout time.Duration
	// Retry bounds the retries of transient failures; DefaultRetry when zero.
	Retry Retry
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (e.g. RootCAs in tests); the
	// server name defaults to the URL's host.
	TLSConfig *tls.Config
	// Logger receives a line per retried failure; discarded when nil. Secrets are never logged.
	Logger *slog.Logger
	// Now stamps the Date header; time.Now when nil.
	Now func() time.Time
	// MaxRecipients caps the recipients of one email; DefaultMaxRecipients when zero.
	MaxRecipients int
}

// Retry is the backoff between attempts of one Send.
type Retry struct {
	// MaxAttempts is the number of attempts including the first.
	MaxAttempts int
	// InitialInterval is the first wait; later waits grow by 2x with ±50% jitter.
	InitialInterval time.Duration
	// MaxInterval caps one wait.
	MaxInterval time.Duration
	// MaxElapsed caps the whole Send, waits included.
	MaxElapsed time.Duration
}

// DefaultRetry retries for about half a minute: long enough for a relay's brief hiccup, short
// enough that a message handler does not outlive its JetStream AckWait; longer outages are
// JetStream's redelivery's job.
var DefaultRetry = Retry{MaxAttempts: 5, InitialInterval: time.Second, MaxInterval: 10 * time.Second, MaxElapsed: 30 * time.Second}

// Mailer sends emails. It is safe for concurrent use; each Send uses its own connection.
type Mailer struct {
	server  Server
	from    *mail.Address
	cfg     Config
	logger  *slog.Logger
	client  *gomail.Client
	now     func() time.Time
	timeout time.Duration
}

// ErrNoRecipients is returned (as a permanent *Error) for an email without recipients.
var ErrNoRecipients = errors.New("email has no recipients")

// ErrTooManyRecipients is returned (as a permanent *Error) for an email to more recipients than
// Config.MaxRecipients: a tenant's report list must not turn ownersync into a mass mailer.
var ErrTooManyRecipients = errors.New("email has more recipients than allowed")

// DefaultMaxRecipients is the default of Config.MaxRecipients.
const DefaultMaxRecipients = 50

// New validates the configuration and returns a Mailer. It does not connect.
func New(cfg Config) (*Mailer, error) {
	srv, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: from address %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = gomail.DefaultTimeout
	}
	if cfg.Retry == (Retry{}) {
		cfg.Retry = DefaultRetry
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.Retry.MaxAttempts <= 0 {
		cfg.Retry.MaxAttempts = 1
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	client, err := newClient(srv, cfg)
	if err != nil {
		return nil, err
	}
	return &Mailer{server: srv, from: from, cfg: cfg, logger: logger, client: client, now: now, timeout: cfg.Timeout}, nil
}

func newClient(srv Server, cfg Config) (*gomail.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = srv.Host
	}
	if srv.InsecureSkipVerify {
		tc.InsecureSkipVerify = true //nolint:gosec // opted into by the URL, for tests and dev relays
	}
	opts := []gomail.Option{
		gomail.WithPort(srv.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(tc),
	}
	switch {
	case srv.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case srv.StartTLS == StartTLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case srv.StartTLS == StartTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if srv.HELO != "" {
		opts = append(opts, gomail.WithHELO(srv.HELO))
	}
	if srv.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(srv.Auth), gomail.WithUsername(srv.Username), gomail.WithPassword(srv.Password))
	}
	c, err := gomail.NewClient(srv.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: configure client for %s: %w", srv.Redacted(), err)
	}
	return c, nil
}

// FromDomain returns the domain of the From address, the natural right-hand side for
// render.Options.MessageIDDomain.
func (m *Mailer) FromDomain() string {
	_, domain, _ := strings.Cut(m.from.Address, "@")
	return domain
}

// Server returns the parsed server settings (String redacts the password).
func (m *Mailer) Server() Server { return m.server }

// Send delivers e to e.To, retrying transient failures per Config.Retry. It returns nil or an
// *Error; errors.As(err, &*mailer.Error) tells permanent from transient (see IsPermanent).
func (m *Mailer) Send(ctx context.Context, e render.Email) error {
	msg, err := m.message(e)
	if err != nil {
		return &Error{Permanent: true, Attempts: 0, Err: err}
	}
	var last *Error
	attempts := 0
	op := func() error {
		attempts++
		err := m.client.DialAndSendWithContext(ctx, msg)
		if err == nil {
			return nil
		}
		last = classify(err)
		last.Attempts = attempts
		if last.Permanent {
			return backoff.Permanent(last)
		}
		return last
	}
	notify := func(err error, wait time.Duration) {
		var me *Error
		errors.As(err, &me)
		m.logger.WarnContext(ctx, "smtp send failed, retrying", "server", m.server.Address(), "message_id", e.MessageID,
			"attempt", attempts, "code", me.Code, "retry_in", wait, "error", err)
	}
	if err := backoff.RetryNotify(op, m.backoff(ctx), notify); err != nil {
		if last == nil { // the context ended before the first attempt
			return &Error{Attempts: attempts, Err: err}
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !last.Permanent {
			last.Err = errors.Join(last.Err, ctxErr)
		}
		return last
	}
	return nil
}

func (m *Mailer) backoff(ctx context.Context) backoff.BackOff {
	r := m.cfg.Retry
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(r.InitialInterval),
		backoff.WithMaxInterval(r.MaxInterval),
		backoff.WithMaxElapsedTime(r.MaxElapsed),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMultiplier(2),
	)
	return backoff.WithContext(backoff.WithMaxRetries(b, uint64(r.MaxAttempts-1)), ctx)
}

// message builds the MIME message: multipart/alternative with text/plain first and text/html
// second (clients show the last part they understand), UTF-8, quoted-printable.
func (m *Mailer) message(e render.Email) (*gomail.Msg, error) {
	if len(e.To) == 0 {
		return nil, ErrNoRecipients
	}
	if len(e.To) > m.cfg.MaxRecipients {
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooManyRecipients, len(e.To), m.cfg.MaxRecipients)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP))
	if err := msg.FromFormat(m.from.Name, m.from.Address); err != nil {
		return nil, fmt.Errorf("from %q: %w", m.from.String(), err)
	}
	if err := msg.To(e.To...); err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	msg.Subject(oneLine(e.Subject))
	if e.MessageID != "" {
		msg.SetMessageIDWithValue(oneLine(e.MessageID))
	} else {
		msg.SetMessageID()
	}
	msg.SetDateWithValue(m.now())
	msg.SetUserAgent("ownersync-notifier")
	// Automated mail: no out-of-office replies or auto-forward loops (RFC 3834).
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	keys := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header name %q is invalid", k)
		}
		msg.SetGenHeader(gomail.Header(k), oneLine(e.Headers[k]))
	}
	msg.SetBodyString(gomail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	}
	return msg, nil
}

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// validHeaderName accepts RFC 5322 field names (printable ASCII except ':').
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 127 || c == ':' {
			return false
		}
	}
	return true
}

// StartTLS is the STARTTLS policy of an smtp:// server.
type StartTLS string

// STARTTLS policies.
const (
	// StartTLSRequired fails when the server does not offer STARTTLS.
	StartTLSRequired StartTLS = "required"
	// StartTLSOpportunistic uses STARTTLS when offered.
	StartTLSOpportunistic StartTLS = "opportunistic"
	// StartTLSNone never uses TLS (local relays and the dev stack's sink).
	StartTLSNone StartTLS = "none"
)

// Server is a parsed SMTP URL.
type Server struct {
	Host        string
	Port        int
	ImplicitTLS bool
	StartTLS    StartTLS
	// InsecureSkipVerify accepts any certificate (tests and dev relays only).
	InsecureSkipVerify bool
	Username           string
	Password           string
	Auth               gomail.SMTPAuthType
	HELO               string
}

// Address returns host:port.
func (s Server) Address() string { return fmt.Sprintf("%s:%d", s.Host, s.Port) }

// Redacted returns the server as a URL without the password, for logs.
func (s Server) Redacted() string {
	u := url.URL{Scheme: "smtp", Host: s.Address()}
	if s.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.Username != "" {
		u.User = url.UserPassword(s.Username, s.Password)
	}
	return redact.URL(u.String())
}

// String is Redacted, so a Server can be logged.
func (s Server) String() string { return s.Redacted() }

// ParseURL parses an SMTP URL:
//
//	smtp://[user[:password]@]host[:port][?options]    port 25 by default, STARTTLS per starttls=
//	smtps://[user[:password]@]host[:port][?options]   implicit TLS, port 465 by default
//
// Options: starttls=required|opportunistic|none (default: required with credentials, otherwise
// opportunistic; smtp:// only), insecure_skip_verify=true, auth=plain|login|cram-md5|
// scram-sha-1|scram-sha-256|auto (default plain; PLAIN and LOGIN refuse to send credentials
// unencrypted except to localhost), helo=<name>. User and password are percent-decoded.
func ParseURL(raw string) (Server, error) {
	fail := func(format string, a ...any) (Server, error) {
		return Server{}, fmt.Errorf("mailer: SMTP URL: "+format, a...)
	}
	if strings.TrimSpace(raw) == "" {
		return fail("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, password included, and its inner errors quote the part that
		// failed (an escape or a "port" out of a password); report the redacted URL and the kind
		// of problem only.
		kind := "malformed"
		var ue *url.Error
		if errors.As(err, &ue) {
			kind = ue.Err.Error()
			if i := strings.IndexByte(kind, '"'); i >= 0 {
				kind = strings.TrimSpace(kind[:i])
			}
		}
		return fail("%s: %s", redact.URL(raw), kind)
	}
	var s Server
	switch u.Scheme {
	case "smtp":
		s.Port = gomail.DefaultPort
	case "smtps":
		s.ImplicitTLS, s.Port = true, gomail.DefaultPortSSL
	default:
		return fail("scheme %q, want smtp or smtps", u.Scheme)
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return fail("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fail("port %q", p)
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "starttls", "insecure_skip_verify", "auth", "helo":
		default:
			return fail("unknown option %q", k)
		}
	}
	switch v := StartTLS(strings.ToLower(q.Get("starttls"))); v {
	case "":
		s.StartTLS = StartTLSOpportunistic
		if s.Username != "" {
			s.StartTLS = StartTLSRequired
		}
	case StartTLSRequired, StartTLSOpportunistic, StartTLSNone:
		s.StartTLS = v
	default:
		return fail("starttls=%q, want required, opportunistic or none", v)
	}
	if s.ImplicitTLS {
		if q.Has("starttls") {
			return fail("starttls does not apply to smtps:// (implicit TLS)")
		}
		s.StartTLS = ""
	}
	if v := q.Get("insecure_skip_verify"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fail("insecure_skip_verify=%q", v)
		}
		s.InsecureSkipVerify = b
	}
	switch a := strings.ToLower(q.Get("auth")); a {
	case "", "plain":
		s.Auth = gomail.SMTPAuthPlain
	case "login":
		s.Auth = gomail.SMTPAuthLogin
	case "cram-md5":
		s.Auth = gomail.SMTPAuthCramMD5
	case "scram-sha-1":
		s.Auth = gomail.SMTPAuthSCRAMSHA1
	case "scram-sha-256":
		s.Auth = gomail.SMTPAuthSCRAMSHA256
	case "auto":
		s.Auth = gomail.SMTPAuthAutoDiscover
	default:
		return fail("auth=%q", a)
	}
	s.HELO = q.Get("helo")
	return s, nil
}
