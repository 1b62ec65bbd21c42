package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/mail"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestDryRunEmailedOnlyWhenAsked is issue 13 item 10 end to end: on the dev stack, a dry run
// started without email_report is recorded by the notifier and emails nobody; a dry run started
// with email_report=true reaches the outbox, marked as a dry run.
func TestDryRunEmailedOnlyWhenAsked(t *testing.T) {
	o := devstack.Options{DataDir: t.TempDir(), Demo: true, OperatorToken: devstack.DevOperatorToken, PlatformToken: devstack.DevPlatformToken}
	s, err := devstack.Start(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.SMTP.Wait(ctx, 1); err != nil { // the demo's first (real) run
		t.Fatalf("no report email for the demo run: %v", err)
	}
	nc, err := nats.Connect(s.URLs["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, streams.Sync)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, streams.Sync, "notifier")
	if err != nil {
		t.Fatal(err)
	}
	dryRun := func(query string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URLs["mapper"]+"/v1/tenants/acme/sync-users?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+o.OperatorToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var run struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&run)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || run.ID == "" {
			t.Fatalf("POST sync-users?%s = %d", query, resp.StatusCode)
		}
		// The run's report is on the stream and the notifier has handled it.
		harness.Eventually(t, 60*time.Second, "report of run "+run.ID+" handled", func() bool {
			m, err := stream.GetLastMsgForSubject(ctx, streams.ReportSync("acme"))
			if err != nil || !bytes.Contains(m.Data, []byte(run.ID)) {
				return false
			}
			info, err := cons.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		})
		// And the run has let go of the tenant (the report is published just before).
		harness.Eventually(t, 30*time.Second, "run "+run.ID+" finished", func() bool {
			var r struct{ State string }
			return getJSON(t, s, "/v1/tenants/acme/sync-runs/"+run.ID, &r) == http.StatusOK && r.State != "running"
		})
	}

	harness.Eventually(t, 30*time.Second, "the demo run finished", func() bool {
		var runs struct{ Items []struct{ State string } }
		if getJSON(t, s, "/v1/tenants/acme/sync-runs", &runs) != http.StatusOK || len(runs.Items) == 0 {
			return false
		}
		for _, r := range runs.Items {
			if r.State == "running" {
				return false
			}
		}
		return true
	})
	dryRun("dry_run=true")
	if n := len(s.SMTP.Messages()); n != 1 {
		t.Fatalf("a dry run that did not ask for email sent one: %d emails, want 1", n)
	}
	m, err := stream.GetLastMsgForSubject(ctx, streams.ReportSync("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(streams.HeaderEmailReport) != "" {
		t.Errorf("the dry run's report carries %s without asking", streams.HeaderEmailReport)
	}

	dryRun("dry_run=true&email_report=true")
	msgs, err := s.SMTP.Wait(ctx, 2)
	if err != nil {
		t.Fatalf("the dry run that asked for email sent none: %v", err)
	}
	mm, err := mail.ReadMessage(bytes.NewReader(msgs[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	if mm.Header.Get("X-Ownersync-Dry-Run") != "true" {
		t.Errorf("second email is not the dry run's report: headers %v", mm.Header)
	}
	if n := len(s.SMTP.Messages()); n != 2 {
		t.Errorf("%d emails, want 2", n)
	}
}
