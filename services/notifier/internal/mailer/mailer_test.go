package mailer

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
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gomail "github.com/wneessen/go-mail"

	"github.com/ownersync/ownersync/services/notifier/internal/render"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

var fastRetry = Retry{MaxAttempts: 4, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond, MaxElapsed: 5 * time.Second}

func startSink(t *testing.T, cfg smtpsink.Config) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newMailer(t *testing.T, cfg Config) *Mailer {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "ownersync reports <reports@ownersync.example>"
	}
	if cfg.Retry == (Retry{}) {
		cfg.Retry = fastRetry
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func sampleEmail(t *testing.T) render.Email {
	t.Helper()
	r := render.SampleReport(time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC))
	r.TenantName = "Zürich Ärzte GmbH ✓"
	r.AdminUrl = "https://admin.example.com"
	e, err := render.Report(r, render.Options{To: []string{"admin@demo.example", "ops@demo.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// part is one decoded MIME part.
type part struct {
	ContentType string
	Charset     string
	Encoding    string
	Body        string
}

func TestSendMIMEStructure(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	now := time.Date(2026, 11, 22, 9, 31, 0, 0, time.UTC)
	m := newMailer(t, Config{URL: sink.URL(), Now: func() time.Time { return now }})
	e := sampleEmail(t)
	if err := m.Send(ctx(t), e); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink holds %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if diff := cmp.Diff([]string{"admin@demo.example", "ops@demo.example"}, got.To); diff != "" {
		t.Errorf("envelope recipients (-want +got):\n%s", diff)
	}
	if got.From != "reports@ownersync.example" {
		t.Errorf("envelope sender = %q", got.From)
	}

	msg, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	from, _ := mail.ParseAddress(msg.Header.Get("From"))
	to, _ := msg.Header.AddressList("To")
	date, _ := msg.Header.Date()
	headers := map[string]string{
		"Subject":                  subject,
		"From":                     from.String(),
		"To":                       fmt.Sprint(to),
		"Message-Id":               msg.Header.Get("Message-Id"),
		"Date":                     date.UTC().Format(time.RFC3339),
		"Mime-Version":             msg.Header.Get("Mime-Version"),
		"Auto-Submitted":           msg.Header.Get("Auto-Submitted"),
		"X-Auto-Response-Suppress": msg.Header.Get("X-Auto-Response-Suppress"),
		"X-Ownersync-Tenant":       msg.Header.Get("X-Ownersync-Tenant"),
		"X-Ownersync-Run-Id":       msg.Header.Get("X-Ownersync-Run-Id"),
	}
	want := map[string]string{
		"Subject":                  e.Subject,
		"From":                     `"ownersync reports" <reports@ownersync.example>`,
		"To":                       "[<admin@demo.example> <ops@demo.example>]",
		"Message-Id":               "<report.sample.demo@ownersync.local>",
		"Date":                     "2026-11-22T09:31:00Z",
		"Mime-Version":             "1.0",
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		"X-Ownersync-Tenant":       "demo",
		"X-Ownersync-Run-Id":       "sample",
	}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if !strings.Contains(subject, "Zürich Ärzte GmbH ✓") {
		t.Errorf("subject %q lost its UTF-8", subject)
	}
	if raw := msg.Header.Get("Subject"); !strings.HasPrefix(raw, "=?UTF-8?") {
		t.Errorf("raw Subject %q is not an RFC 2047 encoded word", raw)
	}
	for _, line := range strings.Split(string(got.Data), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d octets exceeds RFC 5322's limit", len(line))
		}
		for _, r := range line {
			if r > 127 {
				t.Fatalf("raw message holds non-ASCII %q in %q; every part must be encoded", r, line)
			}
		}
	}

	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	var parts []part
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		enc := p.Header.Get("Content-Transfer-Encoding")
		var body []byte
		if enc == "quoted-printable" {
			body, err = io.ReadAll(quotedprintable.NewReader(p))
		} else {
			body, err = io.ReadAll(p)
		}
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part{ContentType: ct, Charset: strings.ToUpper(cp["charset"]), Encoding: enc,
			Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	}
	wantParts := []part{
		{ContentType: "text/plain", Charset: "UTF-8", Encoding: "quoted-printable", Body: e.Text},
		{ContentType: "text/html", Charset: "UTF-8", Encoding: "quoted-printable", Body: e.HTML},
	}
	if diff := cmp.Diff(wantParts, parts); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
}

func TestSendStartTLSAndAuth(t *testing.T) {
	sink := startSink(t, smtpsink.Config{StartTLS: true, RequireTLS: true, Username: "mailer", Password: "p@ss:w/rd"})
	addr := sink.Addr()
	pool := sink.CertPool()
	tests := []struct {
		name      string
		url       string
		tls       *tls.Config
		wantErr   bool
		permanent bool
		code      int
	}{
		{name: "starttls required, skip verify", url: sink.URL()},
		{name: "starttls verified against the sink's certificate", url: "smtp://mailer:p%40ss%3Aw%2Frd@" + addr + "?starttls=required", tls: &tls.Config{RootCAs: pool}},
		{name: "starttls opportunistic", url: "smtp://mailer:p%40ss%3Aw%2Frd@" + addr + "?starttls=opportunistic&insecure_skip_verify=true"},
		{name: "self-signed certificate not trusted", url: "smtp://mailer:p%40ss%3Aw%2Frd@" + addr + "?starttls=required", wantErr: true, permanent: true},
		{name: "wrong password", url: "smtp://mailer:nope@" + addr + "?insecure_skip_verify=true", wantErr: true, permanent: true, code: 535},
		{name: "no TLS against a sink that requires it", url: "smtp://" + addr + "?starttls=none", wantErr: true, permanent: true, code: 530},
		{name: "credentials never sent unencrypted", url: "smtp://mailer:p%40ss%3Aw%2Frd@" + addr + "?starttls=none", wantErr: true, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink.Reset()
			m := newMailer(t, Config{URL: tt.url, TLSConfig: tt.tls})
			err := m.Send(ctx(t), sampleEmail(t))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				msgs := sink.Messages()
				if len(msgs) != 1 || !msgs[0].TLS || msgs[0].AuthUser != "mailer" {
					t.Fatalf("messages = %+v, want one over TLS from mailer", msgs)
				}
				return
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("Send error = %v, want *Error", err)
			}
			if me.Permanent != tt.permanent || me.Code != tt.code || me.Attempts != 1 {
				t.Errorf("error = %+v, want permanent=%v code=%d after 1 attempt", me, tt.permanent, tt.code)
			}
			if strings.Contains(err.Error(), "p@ss:w/rd") {
				t.Errorf("error reveals the password: %v", err)
			}
			if n := len(sink.Messages()); n != 0 {
				t.Errorf("sink received %d messages", n)
			}
		})
	}
}

func TestSendImplicitTLS(t *testing.T) {
	sink := startSink(t, smtpsink.Config{ImplicitTLS: true, Username: "mailer", Password: "s3cret"})
	m := newMailer(t, Config{URL: sink.URL()})
	if m.Server().Port != sink.Port() || !m.Server().ImplicitTLS {
		t.Fatalf("server = %+v", m.Server())
	}
	if err := m.Send(ctx(t), sampleEmail(t)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages = %+v, want one over TLS", msgs)
	}
}

func TestSendTransientThenSuccess(t *testing.T) {
	tests := []struct {
		name    string
		fault   smtpsink.Fault
		retries int
	}{
		{name: "451 at DATA twice", fault: smtpsink.Fault{Code: 451, Stage: smtpsink.StageData, Times: 2}, retries: 2},
		{name: "421 at MAIL once", fault: smtpsink.Fault{Code: 421, Stage: smtpsink.StageMail, Times: 1}, retries: 1},
		// Two recipients: the first attempt loses both, the second the first one; nothing is
		// delivered until an attempt gets every recipient through.
		{name: "452 at RCPT three times", fault: smtpsink.Fault{Code: 452, Stage: smtpsink.StageRcpt, Times: 3}, retries: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := startSink(t, smtpsink.Config{})
			sink.SetFault(tt.fault)
			var logs syncBuffer
			m := newMailer(t, Config{URL: sink.URL(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err := m.Send(ctx(t), sampleEmail(t)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := sink.FaultsAnswered(); got != tt.fault.Times {
				t.Errorf("faults answered = %d, want %d", got, tt.fault.Times)
			}
			if n := len(sink.Messages()); n != 1 {
				t.Errorf("sink holds %d messages, want exactly 1", n)
			}
			if n := strings.Count(logs.String(), "smtp send failed, retrying"); n != tt.retries {
				t.Errorf("logged %d retries, want %d:\n%s", n, tt.retries, logs.String())
			}
		})
	}
}

func TestSendPermanentAndExhausted(t *testing.T) {
	tests := []struct {
		name      string
		fault     smtpsink.Fault
		permanent bool
		code      int
		attempts  int
		faults    int // commands the server refused
	}{
		{name: "550 at RCPT", fault: smtpsink.Fault{Code: 550, Stage: smtpsink.StageRcpt}, permanent: true, code: 550, attempts: 1, faults: 2},
		{name: "554 at DATA", fault: smtpsink.Fault{Code: 554, Stage: smtpsink.StageData}, permanent: true, code: 554, attempts: 1, faults: 1},
		{name: "553 at MAIL", fault: smtpsink.Fault{Code: 553, Stage: smtpsink.StageMail}, permanent: true, code: 553, attempts: 1, faults: 1},
		{name: "451 forever", fault: smtpsink.Fault{Code: 451, Stage: smtpsink.StageData}, permanent: false, code: 451, attempts: fastRetry.MaxAttempts, faults: fastRetry.MaxAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := startSink(t, smtpsink.Config{})
			sink.SetFault(tt.fault)
			m := newMailer(t, Config{URL: sink.URL()})
			err := m.Send(ctx(t), sampleEmail(t))
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("Send = %v, want *Error", err)
			}
			got := struct {
				Permanent      bool
				Code, Attempts int
			}{me.Permanent, me.Code, me.Attempts}
			want := struct {
				Permanent      bool
				Code, Attempts int
			}{tt.permanent, tt.code, tt.attempts}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if IsPermanent(fmt.Errorf("wrapped: %w", err)) != tt.permanent {
				t.Errorf("IsPermanent through wrapping = %v", !tt.permanent)
			}
			if got := sink.FaultsAnswered(); got != tt.faults {
				t.Errorf("server refused %d commands, want %d", got, tt.faults)
			}
		})
	}
}

// TestSendWhileSMTPDown stops the sink, starts a Send, restarts the sink on the same port once the
// mailer has logged a failed attempt, and expects the message to arrive exactly once.
func TestSendWhileSMTPDown(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	if err := sink.Stop(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	m := newMailer(t, Config{URL: sink.URL(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Retry: Retry{MaxAttempts: 50, InitialInterval: 20 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxElapsed: 10 * time.Second}})
	done := make(chan error, 1)
	go func() { done <- m.Send(ctx(t), sampleEmail(t)) }()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "connection refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no refused attempt logged:\n%s", logs.String())
		}
		select {
		case err := <-done:
			t.Fatalf("Send returned %v while SMTP was down", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("sink holds %d messages, want 1", n)
	}
}

func TestSendConnectionRefusedIsTransient(t *testing.T) {
	// Nothing listens on port 1 (tcpmux) of loopback; no port is picked and freed for this.
	m := newMailer(t, Config{URL: "smtp://127.0.0.1:1?starttls=none", Retry: Retry{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, MaxElapsed: time.Second}})
	err := m.Send(ctx(t), sampleEmail(t))
	var me *Error
	if !errors.As(err, &me) || me.Permanent || me.Attempts != 2 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Send = %#v, want transient ECONNREFUSED after 2 attempts", err)
	}
}

func TestSendStopsWithContext(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	sink.SetFault(smtpsink.Fault{Code: 451, Stage: smtpsink.StageMail})
	m := newMailer(t, Config{URL: sink.URL(), Retry: Retry{MaxAttempts: 100, InitialInterval: time.Second, MaxInterval: time.Second, MaxElapsed: time.Minute}})
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Send(c, sampleEmail(t))
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Send took %v after its context ended", el)
	}
	if IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want transient error wrapping the deadline", err)
	}
}

func TestSendRejectsBadEmail(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	m := newMailer(t, Config{URL: sink.URL()})
	tests := []struct {
		name string
		edit func(*render.Email)
		want error
	}{
		{name: "no recipients", edit: func(e *render.Email) { e.To = nil }, want: ErrNoRecipients},
		{name: "bad recipient", edit: func(e *render.Email) { e.To = []string{"not an address"} }},
		{name: "bad header name", edit: func(e *render.Email) { e.Headers = map[string]string{"X-Bad: injected": "v"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEmail(t)
			tt.edit(&e)
			err := m.Send(ctx(t), e)
			if !IsPermanent(err) {
				t.Fatalf("Send = %v, want permanent", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
		})
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("sink received %d messages", n)
	}
}

func TestHeaderValuesStayOnOneLine(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	m := newMailer(t, Config{URL: sink.URL()})
	e := sampleEmail(t)
	e.Subject = "Report\r\nBcc: victim@example.com"
	e.Headers = map[string]string{"X-Ownersync-Tenant": "demo\r\nBcc: victim@example.com"}
	if err := m.Send(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(sink.Messages()[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if bcc := msg.Header.Get("Bcc"); bcc != "" {
		t.Fatalf("header injection produced Bcc: %q", bcc)
	}
	if got := sink.Messages()[0].To; len(got) != 2 {
		t.Fatalf("envelope recipients = %v", got)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    Server
		wantErr string
	}{
		{url: "smtp://localhost", want: Server{Host: "localhost", Port: 25, StartTLS: StartTLSOpportunistic, Auth: gomail.SMTPAuthPlain}},
		{url: "smtp://user:p%40ss@smtp.example.com:587", want: Server{Host: "smtp.example.com", Port: 587, StartTLS: StartTLSRequired, Username: "user", Password: "p@ss", Auth: gomail.SMTPAuthPlain}},
		{url: "smtps://user:pw@smtp.example.com", want: Server{Host: "smtp.example.com", Port: 465, ImplicitTLS: true, Username: "user", Password: "pw", Auth: gomail.SMTPAuthPlain}},
		{url: "smtp://127.0.0.1:2525?starttls=none", want: Server{Host: "127.0.0.1", Port: 2525, StartTLS: StartTLSNone, Auth: gomail.SMTPAuthPlain}},
		{url: "smtp://u:p@[::1]:2525?starttls=opportunistic&insecure_skip_verify=true&auth=login&helo=notifier.example", want: Server{Host: "::1", Port: 2525, StartTLS: StartTLSOpportunistic, InsecureSkipVerify: true, Username: "u", Password: "p", Auth: gomail.SMTPAuthLogin, HELO: "notifier.example"}},
		{url: "smtp://h?auth=scram-sha-256", want: Server{Host: "h", Port: 25, StartTLS: StartTLSOpportunistic, Auth: gomail.SMTPAuthSCRAMSHA256}},
		{url: "", wantErr: "empty"},
		{url: "http://smtp.example.com", wantErr: `scheme "http"`},
		{url: "smtp://:25", wantErr: "no host"},
		{url: "smtp://h:99999", wantErr: `port "99999"`},
		{url: "smtp://h?starttls=maybe", wantErr: `starttls="maybe"`},
		{url: "smtps://h?starttls=required", wantErr: "does not apply to smtps"},
		{url: "smtp://h?insecure_skip_verify=perhaps", wantErr: "insecure_skip_verify"},
		{url: "smtp://h?auth=magic", wantErr: `auth="magic"`},
		{url: "smtp://h?tls=1", wantErr: `unknown option "tls"`},
		{url: "smtp://user:se cret@h\x7f", wantErr: "invalid control character"},
		// Issue 13 item 11: no part of a password in the error, whatever the URL's fault.
		{url: "smtp://user:se%zzcret@smtp.example.com:587", wantErr: "smtp://xxxxx@smtp.example.com:587"},
		{url: "smtp://user:se cret/x@h:587", wantErr: "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL error = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "se cret") || strings.Contains(err.Error(), "%zz") || strings.Contains(err.Error(), "cret") {
					t.Errorf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("server (-want +got):\n%s", diff)
			}
		})
	}
	s, _ := ParseURL("smtp://user:topsecret@h:587")
	if r := fmt.Sprint(s); strings.Contains(r, "topsecret") || r != "smtp://user:xxxxx@h:587" {
		t.Errorf("String() = %q, want the password redacted", r)
	}
}

func TestFromDomain(t *testing.T) {
	m := newMailer(t, Config{URL: "smtp://h", From: "ownersync <noreply@Mail.Example.com>"})
	if got := m.FromDomain(); got != "Mail.Example.com" {
		t.Fatalf("FromDomain = %q", got)
	}
}

func TestNewRejectsBadFrom(t *testing.T) {
	if _, err := New(Config{URL: "smtp://h", From: "not an address"}); err == nil {
		t.Fatal("New accepted a bad From")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		permanent bool
		code      int
	}{
		{name: "421 greeting", err: &textproto.Error{Code: 421, Msg: "service not available"}, code: 421},
		{name: "535 auth", err: fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 535, Msg: "bad credentials"}), permanent: true, code: 535},
		{name: "refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
		{name: "reset", err: fmt.Errorf("write: %w", syscall.ECONNRESET)},
		{name: "eof", err: io.EOF},
		{name: "timeout", err: &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}},
		{name: "deadline", err: context.DeadlineExceeded},
		{name: "unknown CA", err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, permanent: true},
		{name: "hostname", err: x509.HostnameError{Host: "smtp.example.com"}, permanent: true},
		{name: "no STARTTLS", err: fmt.Errorf("STARTTLS mode set to: %q, but target host does not support STARTTLS", "TLSMandatory"), permanent: true},
		{name: "no auth mechanism", err: gomail.ErrNoSupportedAuthDiscovered, permanent: true},
		{name: "no AUTH offered", err: fmt.Errorf("dial failed: %w", errors.New("server does not support SMTP AUTH")), permanent: true},
		{name: "surprise", err: errors.New("something odd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if got.Permanent != tt.permanent || got.Code != tt.code {
				t.Errorf("classify(%v) = permanent %v code %d, want %v %d", tt.err, got.Permanent, got.Code, tt.permanent, tt.code)
			}
			if !errors.Is(got, tt.err) && got.Err != tt.err {
				t.Errorf("classify lost the cause")
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// syncBuffer is a bytes.Buffer safe for a logger writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStartTLSRequiredButMissing pins go-mail's untyped error for a server without STARTTLS.
func TestStartTLSRequiredButMissing(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	m := newMailer(t, Config{URL: "smtp://" + sink.Addr() + "?starttls=required"})
	err := m.Send(ctx(t), sampleEmail(t))
	var me *Error
	if !errors.As(err, &me) || !me.Permanent || me.Attempts != 1 {
		t.Fatalf("Send = %v, want permanent after 1 attempt", err)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("sink received %d messages in clear text", n)
	}
}

// BenchmarkSend measures one report email over loopback SMTP to the sink (new connection each).
func BenchmarkSend(b *testing.B) {
	sink, err := smtpsink.Start(smtpsink.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	m, err := New(Config{URL: sink.URL(), From: "reports@ownersync.example"})
	if err != nil {
		b.Fatal(err)
	}
	r := render.SampleReport(time.Now())
	e, err := render.Report(r, render.Options{To: []string{"admin@demo.example"}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := m.Send(context.Background(), e); err != nil {
			b.Fatal(err)
		}
		sink.Reset()
	}
}

// TestSendAuthWithoutTLSToLoopback is the dev stack's setup: credentials, no TLS, 127.0.0.1.
func TestSendAuthWithoutTLSToLoopback(t *testing.T) {
	sink := startSink(t, smtpsink.Config{Username: "dev", Password: "dev"})
	m := newMailer(t, Config{URL: sink.URL()})
	if err := m.Send(ctx(t), sampleEmail(t)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].AuthUser != "dev" || msgs[0].TLS {
		t.Fatalf("messages = %+v", msgs)
	}
}

// TestSendCapsRecipients covers issue 13 item 10: an email to more recipients than the cap (50 by
// default) is refused as a permanent failure before anything is sent.
func TestSendCapsRecipients(t *testing.T) {
	sink := startSink(t, smtpsink.Config{})
	m := newMailer(t, Config{URL: sink.URL()})
	e := sampleEmail(t)
	e.To = nil
	for i := range DefaultMaxRecipients + 1 {
		e.To = append(e.To, fmt.Sprintf("r%d@demo.example", i))
	}
	err := m.Send(ctx(t), e)
	if !IsPermanent(err) || !errors.Is(err, ErrTooManyRecipients) {
		t.Fatalf("Send to %d recipients = %v, want a permanent ErrTooManyRecipients", len(e.To), err)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("%d messages reached the server", n)
	}
	e.To = e.To[:DefaultMaxRecipients]
	if err := m.Send(ctx(t), e); err != nil {
		t.Fatalf("Send to %d recipients: %v", len(e.To), err)
	}
}
