package smtpsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testMail = "From: Reports <reports@example.com>\r\n" +
	"To: admin@example.com\r\n" +
	"Subject: =?utf-8?q?Sync_report_=E2=9C=93?=\r\n" +
	"Message-Id: <report.run-1.acme@ownersync.test>\r\n" +
	"\r\n" +
	"Hello.\r\n"

func start(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// send delivers one message with net/smtp; tlsConf starts TLS, auth authenticates.
func send(addr string, tlsConf *tls.Config, auth smtp.Auth, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if tlsConf != nil {
		if err := c.StartTLS(tlsConf); err != nil {
			return err
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail("reports@example.com"); err != nil {
		return err
	}
	if err := c.Rcpt("admin@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSinkStoresAndLogs(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	now := time.Date(2026, 11, 22, 1, 30, 0, 5, time.UTC)
	s := start(t, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})

	if err := send(s.Addr(), nil, nil, testMail); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := msgs[0]
	want := Message{
		From:      "reports@example.com",
		To:        []string{"admin@example.com"},
		Data:      []byte(testMail),
		Subject:   "Sync report ✓",
		MessageID: "report.run-1.acme@ownersync.test",
		Path:      filepath.Join(dir, "20261122T013000.000000005Z-000001-report.run-1.acme_at_ownersync.test.eml"),
		Received:  now,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	file, err := os.ReadFile(want.Path)
	if err != nil {
		t.Fatalf("read outbox file: %v", err)
	}
	if string(file) != testMail {
		t.Errorf("file content = %q, want %q", file, testMail)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("outbox holds %d entries, want 1 (no temporary files)", len(entries))
	}
	line := logs.String()
	for _, part := range []string{"mail received", "from=reports@example.com", "to=admin@example.com", `subject="Sync report ✓"`, "file=" + want.Path} {
		if !strings.Contains(line, part) {
			t.Errorf("log %q lacks %q", line, part)
		}
	}
	if n := strings.Count(line, "\n"); n != 1 {
		t.Errorf("logged %d lines, want 1", n)
	}
}

func TestSinkAuth(t *testing.T) {
	s := start(t, Config{Username: "mailer", Password: "s3cret"})
	tests := []struct {
		name     string
		auth     smtp.Auth
		wantCode int
	}{
		{name: "no auth", auth: nil, wantCode: 502},
		{name: "wrong password", auth: smtp.PlainAuth("", "mailer", "nope", "127.0.0.1"), wantCode: 535},
		{name: "wrong user", auth: smtp.PlainAuth("", "other", "s3cret", "127.0.0.1"), wantCode: 535},
		{name: "good", auth: smtp.PlainAuth("", "mailer", "s3cret", "127.0.0.1"), wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := send(s.Addr(), nil, tt.auth, testMail)
			if got := smtpCode(err); got != tt.wantCode {
				t.Fatalf("send error = %v (code %d), want code %d", err, got, tt.wantCode)
			}
		})
	}
	msgs := s.Messages()
	if len(msgs) != 1 || msgs[0].AuthUser != "mailer" {
		t.Fatalf("messages = %+v, want one from user mailer", msgs)
	}
}

func TestSinkStartTLS(t *testing.T) {
	s := start(t, Config{StartTLS: true, RequireTLS: true, Username: "mailer", Password: "s3cret"})
	auth := smtp.PlainAuth("", "mailer", "s3cret", "127.0.0.1")

	// Without TLS the sink refuses the mail; net/smtp also refuses to send PLAIN credentials
	// because the sink does not offer AUTH before STARTTLS.
	if err := send(s.Addr(), nil, nil, testMail); smtpCode(err) != 530 {
		t.Fatalf("plain-text send error = %v, want 530", err)
	}
	// A client that verifies the certificate against the sink's pool succeeds.
	conf := &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"}
	if err := send(s.Addr(), conf, auth, testMail); err != nil {
		t.Fatalf("TLS send: %v", err)
	}
	// A client that verifies against the system roots rejects the self-signed certificate.
	if err := send(s.Addr(), &tls.Config{ServerName: "127.0.0.1"}, auth, testMail); err == nil {
		t.Fatal("send with system roots succeeded, want certificate error")
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].AuthUser != "mailer" {
		t.Fatalf("messages = %+v, want one over TLS from mailer", msgs)
	}
	if got, want := s.URL(), "smtp://mailer:s3cret@"+s.Addr()+"?starttls=required&insecure_skip_verify=true"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

func TestSinkStopRestartSamePort(t *testing.T) {
	s := start(t, Config{})
	addr := s.Addr()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	err := send(addr, nil, nil, testMail)
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("send while stopped = %v, want a dial error", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if s.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr(), addr)
	}
	if err := send(addr, nil, nil, testMail); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestSinkFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     Fault
		wantCodes []int // per attempt; 0 = accepted
	}{
		{name: "transient at data twice", fault: Fault{Code: 451, Stage: StageData, Times: 2}, wantCodes: []int{451, 451, 0}},
		{name: "transient at mail once", fault: Fault{Code: 421, Stage: StageMail, Times: 1}, wantCodes: []int{421, 0}},
		{name: "permanent at rcpt forever", fault: Fault{Code: 550, Stage: StageRcpt}, wantCodes: []int{550, 550, 550}},
		{name: "permanent at data", fault: Fault{Code: 554, Stage: StageData, Times: 1}, wantCodes: []int{554, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Config{})
			s.SetFault(tt.fault)
			var got []int
			for range tt.wantCodes {
				got = append(got, smtpCode(send(s.Addr(), nil, nil, testMail)))
			}
			if diff := cmp.Diff(tt.wantCodes, got); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
			accepted := 0
			for _, c := range tt.wantCodes {
				if c == 0 {
					accepted++
				}
			}
			if n := len(s.Messages()); n != accepted {
				t.Errorf("%d messages stored, want %d", n, accepted)
			}
			s.ClearFault()
			if err := send(s.Addr(), nil, nil, testMail); err != nil {
				t.Errorf("send after ClearFault: %v", err)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.run-1.acme@ownersync.test", "report.run-1.acme_at_ownersync.test"},
		{"", "no-id"},
		{"../../etc/passwd", "etc_passwd"},
		{"a/b\\c d\x00e", "a_b_c_d_e"},
		{strings.Repeat("x", 200), strings.Repeat("x", 80)},
		{"ünïcødé", "n_c_d"},
	}
	valid := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	for _, tt := range tests {
		got := sanitize(tt.in)
		if got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !valid.MatchString(got) {
			t.Errorf("sanitize(%q) = %q is not a safe file name", tt.in, got)
		}
	}
}

func TestSinkImplicitTLS(t *testing.T) {
	s := start(t, Config{ImplicitTLS: true, Username: "mailer", Password: "s3cret"})
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CertPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on an implicit-TLS connection")
	}
	if err := c.Auth(smtp.PlainAuth("", "mailer", "s3cret", "127.0.0.1")); err != nil {
		t.Fatalf("auth: %v", err)
	}
	if err := c.Mail("reports@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("admin@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(testMail)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Wait(waitCtx(t), 1)
	if err != nil || !msgs[0].TLS {
		t.Fatalf("messages = %+v, %v; want one over TLS", msgs, err)
	}
	if got, want := s.URL(), "smtps://mailer:s3cret@"+s.Addr()+"?insecure_skip_verify=true"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}
