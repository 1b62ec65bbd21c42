package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/soap"
	"github.com/ownersync/ownersync/workbench/harness"
)

// storedCRM reads every message of the CRM stream in order.
func storedCRM(t *testing.T, js jetstream.JetStream) []published {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, streams.CRM)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []published
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if ct := m.Header.Get("Content-Type"); ct != "application/protobuf" {
			t.Errorf("message %d: Content-Type %q", seq, ct)
		}
		var msg proto.Message = &ownersyncv1.CrmOwnerChanged{}
		if m.Subject == streams.CrmUserChanged("acme", "salesforce") {
			msg = &ownersyncv1.CrmUserChanged{}
		}
		if err := proto.Unmarshal(m.Data, msg); err != nil {
			t.Fatal(err)
		}
		out = append(out, published{Subject: m.Subject, ID: m.Header.Get("Nats-Msg-Id"), Msg: msg})
	}
	// Events of one request are published concurrently; order by id like the expectations.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TestEndToEndEmbeddedNATS runs the handlers against a real JetStream: the exact events on the
// right subjects with the right ids, a redelivery stores nothing new, NATS down answers 503 within
// the publish timeout, and after NATS is back the CRM's retry is stored and acknowledged.
func TestEndToEndEmbeddedNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded NATS")
	}
	// File storage: the stored events outlive the restart below.
	bus := harness.JetStreamWith(t, streams.Options{})
	conn := bus.Conn
	e := newEnv(t, nil)
	h, err := New(Config{PublicURL: publicURL, Now: func() time.Time { return testNow }, PublishTimeout: 500 * time.Millisecond},
		natsbus.NewPublisher(conn.JS, nil, 2*time.Second), e.ten, envSecrets{"HS_SECRET": hsSecret})
	if err != nil {
		t.Fatal(err)
	}
	ec := echo.New()
	h.Register(ec)
	e.srv.Close()
	e.srv = httptest.NewServer(ec)
	t.Cleanup(e.srv.Close)

	sfBody := readFile(t, "salesforce/contact_and_queue_lead.xml")
	wantSF := []published{
		ownerSF("04l5g00000AbCdEAAV", contactT, "0035g00000QwErTAAV", "ada@example.com", "0055g00000AsDfGAAV", userK),
		ownerSF("04l5g00000AbCdFAAV", leadT, "00Q5g00000ZxCvBEAV", "grace@example.org", "00G5g000003LkJhEAK", queueK),
	}
	for attempt := 0; attempt < 2; attempt++ {
		status, _, body := e.post(t, SalesforcePath, "text/xml", sfBody, nil)
		if status != http.StatusOK || string(body) != string(soap.Ack()) {
			t.Fatalf("attempt %d: status %d: %s", attempt, status, body)
		}
		got := storedCRM(t, conn.JS)
		if diff := cmp.Diff(wantSF, got, protocmp.Transform()); diff != "" {
			t.Fatalf("attempt %d: stream (-want +got):\n%s", attempt, diff)
		}
	}

	// NATS goes away: no acknowledgement, within the bounded time.
	bus.Stop()
	hsBody := readFile(t, "hubspot/owner_changes_reference.json")
	start := time.Now()
	status, _, body := e.post(t, HubSpotPath, "application/json", hsBody, signV3("", hsBody, testNow))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("NATS down: status %d: %s", status, body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("NATS down: answered after %s", took)
	}
	status, _, body = e.post(t, SalesforcePath, "text/xml", sfBody, nil)
	if code, _ := fault(t, body); status != http.StatusServiceUnavailable || code != soap.FaultServer {
		t.Fatalf("NATS down: Salesforce got %d %s", status, body)
	}

	// NATS is back on the same address and store: HubSpot's retry is stored once and acknowledged.
	bus.Restart(t)
	harness.Eventually(t, 10*time.Second, "reconnect", conn.NC.IsConnected)
	harness.Eventually(t, 10*time.Second, "HubSpot retry acknowledged", func() bool {
		status, _, _ := e.post(t, HubSpotPath, "application/json", hsBody, signV3("", hsBody, testNow))
		return status == http.StatusOK
	})
	got := storedCRM(t, conn.JS)
	var ids []string
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	wantIDs := []string{
		"hs:4412345:1849302211:51234:1767225600123:hubspot_owner_id",
		"hs:4412345:1849302987:51240:1767225600777:hubspot_owner_id",
		wantSF[0].ID, wantSF[1].ID}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("stream after recovery (-want +got):\n%s", diff)
	}
}
