// Package smtpsink is an SMTP server for the dev stack and tests: it accepts every mail, stores each
// one as an .eml file in an outbox folder, logs one line per mail and lets tests read what arrived.
//
// It speaks real SMTP (github.com/emersion/go-smtp), optionally with AUTH PLAIN and STARTTLS with a
// generated self-signed certificate, so clients are exercised exactly as against a real relay. Tests
// can stop and restart it on the same port to simulate "SMTP down", and can make it answer transient
// (4xx) or permanent (5xx) errors.
package smtpsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Config configures a Sink. The zero value is a sink on a random loopback port that keeps messages
// in memory only and needs neither AUTH nor TLS.
type Config struct {
	// Addr is the listen address; "127.0.0.1:0" when empty (a random free port).
	Addr string
	// Dir is the outbox folder; when empty messages are kept in memory only.
	Dir string
	// Username and Password, when Username is set, make AUTH PLAIN mandatory before MAIL FROM.
	Username string
	Password string
	// StartTLS offers STARTTLS with TLSConfig, or with a generated self-signed certificate for
	// 127.0.0.1/localhost when TLSConfig is nil. AUTH is then only offered after STARTTLS.
	StartTLS  bool
	TLSConfig *tls.Config
	// ImplicitTLS serves TLS from the first byte (smtps://, port 465 style) instead of STARTTLS,
	// with TLSConfig or the generated certificate.
	ImplicitTLS bool
	// RequireTLS refuses MAIL FROM on a connection that has not done STARTTLS (530 5.7.0).
	RequireTLS bool
	// MaxMessageBytes limits a message's size; 25 MiB when zero.
	MaxMessageBytes int64
	// Logger receives one line per mail and the server's internal errors; discarded when nil.
	Logger *slog.Logger
	// Now is the clock used to name files; time.Now when nil.
	Now func() time.Time
	// DataDelay holds the answer to the end of DATA for this long after the message is stored, as
	// a slow relay does (a client's send is then in flight for DataDelay, which tests use to make
	// concurrent sends overlap).
	DataDelay time.Duration
}

// Message is one mail the sink accepted.
type Message struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To are the envelope recipients (RCPT TO).
	To []string
	// Data is the message as received (headers and body, CRLF line endings).
	Data []byte
	// Subject is the decoded Subject header.
	Subject string
	// MessageID is the Message-Id header without angle brackets.
	MessageID string
	// Path is the .eml file, empty when the sink has no Dir.
	Path string
	// Received is when the sink accepted the message.
	Received time.Time
	// TLS reports whether the message came over a TLS connection.
	TLS bool
	// AuthUser is the authenticated username, empty without AUTH.
	AuthUser string
}

// Header parses Data's header.
func (m Message) Header() (mail.Header, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, err
	}
	return msg.Header, nil
}

// Stage is the SMTP command at which an injected fault answers.
type Stage int

// Stages at which a fault can be injected.
const (
	// StageMail answers MAIL FROM.
	StageMail Stage = iota
	// StageRcpt answers RCPT TO.
	StageRcpt
	// StageData answers the end of DATA (the message has been transferred, then refused).
	StageData
)

// Fault makes the sink refuse mail with an SMTP error.
type Fault struct {
	// Code is the SMTP reply code, e.g. 451 (transient) or 550 (permanent).
	Code int
	// Message is the reply text; a default is used when empty.
	Message string
	// Stage is the command that fails.
	Stage Stage
	// Times is how many commands fail before the sink accepts mail again; 0 means until ClearFault.
	Times int
}

// Sink is a running (or stopped) SMTP sink. Its methods are safe for concurrent use.
type Sink struct {
	cfg    Config
	logger *slog.Logger
	tls    *tls.Config
	cert   *x509.Certificate

	mu       sync.Mutex
	addr     string // the bound address, fixed after the first start
	server   *smtp.Server
	listener net.Listener
	done     chan struct{}
	messages []Message
	counter  int
	fault    *Fault
	faults   int // faults answered so far
	changed  chan struct{}
}

// Start creates a sink and starts listening.
func Start(cfg Config) (*Sink, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// New creates a stopped sink; call Start to listen.
func New(cfg Config) (*Sink, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 25 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{cfg: cfg, logger: logger, addr: cfg.Addr, changed: make(chan struct{})}
	if cfg.StartTLS || cfg.ImplicitTLS {
		s.tls = cfg.TLSConfig
		if s.tls == nil {
			tc, cert, err := selfSigned(cfg.Now())
			if err != nil {
				return nil, fmt.Errorf("smtpsink: generate certificate: %w", err)
			}
			s.tls, s.cert = tc, cert
		}
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("smtpsink: create outbox: %w", err)
		}
	}
	return s, nil
}

// Start listens on the sink's address. After a Stop, Start listens on the same port again.
func (s *Sink) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return errors.New("smtpsink: already running")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("smtpsink: listen %s: %w", s.addr, err)
	}
	s.addr = ln.Addr().String()
	if s.cfg.ImplicitTLS {
		ln = tls.NewListener(ln, s.tls)
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogPrinter{s.logger}
	srv.TLSConfig = s.tls
	srv.AllowInsecureAuth = s.tls == nil
	srv.EnableSMTPUTF8 = true
	done := make(chan struct{})
	s.server, s.listener, s.done = srv, ln, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns when Stop closes the listener
	}()
	return nil
}

// Stop closes the listener and every open connection; clients then see "connection refused" until
// Start is called again. Messages received so far stay readable.
func (s *Sink) Stop() error {
	s.mu.Lock()
	srv, ln, done := s.server, s.listener, s.done
	s.server, s.listener, s.done = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	// Close the listener ourselves too: Serve may not have registered it with the server yet.
	err := ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	_ = srv.Close() // closes open connections; its listener error duplicates ours
	<-done
	return err
}

// Close stops the sink.
func (s *Sink) Close() error { return s.Stop() }

// Addr returns the address the sink listens on (host:port).
func (s *Sink) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Port returns the port the sink listens on.
func (s *Sink) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// URL returns an smtp:// URL for the sink with its credentials and, with StartTLS, the query
// "starttls=required&insecure_skip_verify=true" (the certificate is self-signed); with ImplicitTLS
// an smtps:// URL.
func (s *Sink) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.cfg.Username != "" {
		u.User = url.UserPassword(s.cfg.Username, s.cfg.Password)
	}
	if s.cfg.ImplicitTLS {
		u.Scheme, u.RawQuery = "smtps", "insecure_skip_verify=true"
		return u.String()
	}
	if s.tls != nil {
		u.RawQuery = "starttls=required&insecure_skip_verify=true"
	} else {
		u.RawQuery = "starttls=none"
	}
	return u.String()
}

// Certificate returns the generated self-signed certificate, or nil.
func (s *Sink) Certificate() *x509.Certificate { return s.cert }

// CertPool returns a pool holding the generated certificate, for clients that verify it.
func (s *Sink) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	if s.cert != nil {
		p.AddCert(s.cert)
	}
	return p
}

// Messages returns a copy of every message received, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	copy(out, s.messages)
	return out
}

// Changed returns a channel that is closed when the next message arrives (or a fault is
// answered), so tests can wait without sleeping.
func (s *Sink) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Wait blocks until at least n messages have arrived or ctx ends, and returns them.
func (s *Sink) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		ch := s.Changed()
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("smtpsink: waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

// Reset forgets the messages held in memory (files in the outbox are kept).
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
}

// SetFault makes the sink answer f until it was answered f.Times times (or until ClearFault).
func (s *Sink) SetFault(f Fault) {
	if f.Message == "" {
		if f.Code >= 500 {
			f.Message = "Requested action not taken (injected permanent failure)"
		} else {
			f.Message = "Requested action aborted: try again later (injected transient failure)"
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.faults = &f, 0
}

// ClearFault makes the sink accept mail again.
func (s *Sink) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.faults = nil, 0
}

// FaultsAnswered returns how many commands the current fault refused.
func (s *Sink) FaultsAnswered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// injected returns the fault to answer at stage, if any, and counts it.
func (s *Sink) injected(stage Stage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f == nil || f.Stage != stage {
		return nil
	}
	if f.Times > 0 && s.faults >= f.Times {
		return nil
	}
	s.faults++
	s.notifyLocked()
	return &smtp.SMTPError{
		Code:         f.Code,
		EnhancedCode: smtp.EnhancedCode{f.Code / 100, 0, 0},
		Message:      f.Message,
	}
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{sink: s, conn: c}, nil
}

// deliver stores one message: file first (atomically, via a temporary name), then memory, then log.
func (s *Sink) deliver(from string, to []string, data []byte, isTLS bool, user string) error {
	now := s.cfg.Now().UTC()
	msg := Message{From: from, To: to, Data: data, Received: now, TLS: isTLS, AuthUser: user}
	if parsed, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		msg.Subject = decodeHeader(parsed.Header.Get("Subject"))
		msg.MessageID = strings.Trim(strings.TrimSpace(parsed.Header.Get("Message-Id")), "<>")
	}

	s.mu.Lock()
	s.counter++
	n := s.counter
	s.mu.Unlock()

	if s.cfg.Dir != "" {
		name := fmt.Sprintf("%s-%06d-%s.eml", now.Format("20060102T150405.000000000Z"), n, sanitize(msg.MessageID))
		path := filepath.Join(s.cfg.Dir, name)
		tmp := filepath.Join(s.cfg.Dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "cannot store message"}
		}
		if err := os.Rename(tmp, path); err != nil {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "cannot store message"}
		}
		msg.Path = path
	}

	s.mu.Lock()
	s.messages = append(s.messages, msg)
	s.notifyLocked()
	s.mu.Unlock()

	s.logger.Info("mail received", "from", from, "to", strings.Join(to, ","), "subject", msg.Subject,
		"message_id", msg.MessageID, "file", msg.Path, "bytes", len(data))
	if s.cfg.DataDelay > 0 {
		time.Sleep(s.cfg.DataDelay)
	}
	return nil
}

// sanitize keeps a message id usable in a file name: letters, digits, '.', '-', '_', '@'→'_at_',
// at most 80 bytes; "no-id" when nothing is left.
func sanitize(id string) string {
	var b strings.Builder
	for _, r := range id {
		if b.Len() >= 80 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		case r == '@':
			b.WriteString("_at_")
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "._")
	if len(out) > 80 {
		out = out[:80]
	}
	if out == "" {
		return "no-id"
	}
	return out
}

func decodeHeader(v string) string {
	dec := mime.WordDecoder{}
	if d, err := dec.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// session is one SMTP connection's state.
type session struct {
	sink   *Sink
	conn   *smtp.Conn
	user   string
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) isTLS() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

func (ss *session) AuthMechanisms() []string {
	if ss.sink.cfg.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.sink.cfg.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		if username != ss.sink.cfg.Username || password != ss.sink.cfg.Password {
			return smtp.ErrAuthFailed
		}
		ss.user, ss.authed = username, true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.cfg.RequireTLS && ss.sink.tls != nil && !ss.isTLS() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if ss.sink.cfg.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if err := ss.sink.injected(StageMail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.sink.injected(StageRcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.sink.injected(StageData); err != nil {
		return err
	}
	to := append([]string(nil), ss.to...)
	return ss.sink.deliver(ss.from, to, data, ss.isTLS(), ss.user)
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// slogPrinter adapts go-smtp's Logger to slog; internal server errors are debug noise in a sink.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.l.Debug("smtp server", "msg", fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) {
	p.l.Debug("smtp server", "msg", strings.TrimSpace(fmt.Sprintln(v...)))
}
