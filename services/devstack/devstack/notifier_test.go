package devstack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// textPart returns the decoded text/plain part of a multipart/alternative mail.
func textPart(t *testing.T, m smtpsink.Message) (subject, text string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	subject, _ = dec.DecodeHeader(msg.Header.Get("Subject"))
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, %v", msg.Header.Get("Content-Type"), err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			return subject, string(b)
		}
	}
	t.Fatal("no text/plain part")
	return "", ""
}

// TestReportEmailEndToEnd: Sync Users on the demo tenant → exactly one email in the outbox with the
// run's counts; the same report redelivered → still one; SMTP down → retried, then delivered.
func TestReportEmailEndToEnd(t *testing.T) {
	o := devstack.Options{DataDir: t.TempDir(), Demo: true, OperatorToken: devstack.DevOperatorToken, PlatformToken: devstack.DevPlatformToken}
	s, err := devstack.Start(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	msgs, err := s.SMTP.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("no report email: %v", err)
	}
	subject, text := textPart(t, msgs[0])
	var runs struct {
		Items []struct {
			ID        string `json:"id"`
			Providers []struct {
				Provider string `json:"provider"`
				Mapped   int    `json:"mapped"`
				Errors   int    `json:"errors"`
			} `json:"providers"`
		} `json:"items"`
	}
	getJSON(t, s, "/v1/tenants/acme/sync-runs", &runs)
	if len(runs.Items) != 1 {
		t.Fatalf("runs = %+v", runs)
	}
	if !strings.Contains(subject, "Acme") {
		t.Errorf("subject %q does not name the tenant", subject)
	}
	for _, p := range runs.Items[0].Providers {
		if !strings.Contains(text, fmt.Sprint(p.Mapped)) {
			t.Errorf("text part lacks %s's mapped count %d:\n%s", p.Provider, p.Mapped, text)
		}
	}
	if files, _ := os.ReadDir(s.URLs["outbox"]); len(files) != 1 {
		t.Errorf("outbox holds %d files, want 1", len(files))
	}

	// Redeliver the same report (a new stream message with the same report id).
	nc, err := nats.Connect(s.URLs["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, _ := js.Stream(ctx, streams.Sync)
	last, err := stream.GetLastMsgForSubject(ctx, streams.ReportSync("acme"))
	if err != nil {
		t.Fatal(err)
	}
	re := nats.NewMsg(last.Subject)
	re.Data, re.Header = last.Data, last.Header
	if _, err := natsbus.NewPublisher(js, nil, time.Second).PublishMsg(ctx, re, "redelivery-of-"+fmt.Sprint(last.Sequence)); err != nil {
		t.Fatal(err)
	}
	cons, _ := js.Consumer(ctx, streams.Sync, "notifier")
	harness.Eventually(t, 20*time.Second, "redelivered report consumed", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := len(s.SMTP.Messages()); n != 1 {
		t.Fatalf("after redelivery %d emails, want 1", n)
	}

	// SMTP down while the next report is sent: retried, then delivered once the sink is back.
	if err := s.SMTP.Stop(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.URLs["mapper"]+"/v1/tenants/acme/sync-users", nil)
	req.Header.Set("Authorization", "Bearer "+o.OperatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	harness.Eventually(t, 30*time.Second, "second report published", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending+int(info.NumPending) > 0 || len(s.SMTP.Messages()) > 1
	})
	time.Sleep(2 * time.Second) // let the mailer fail against the closed port at least once
	if err := s.SMTP.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SMTP.Wait(ctx, 2); err != nil {
		t.Fatalf("second report not delivered after SMTP came back: %v", err)
	}
}
