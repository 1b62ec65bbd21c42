package events

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
	"github.com/ownersync/ownersync/workbench/harness"
)

func TestPublisherOnJetStream(t *testing.T) {
	ctx := context.Background()
	js := harness.JetStream(t).JS
	now := time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)
	p := NewPublisher(natsbus.NewPublisher(js, nil, 5*time.Second), func() time.Time { return now })
	ch := ownership.CRMOwnerChange{EventID: "hs:1", Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact,
		RecordID: "51234", OwnerID: "7001", OccurredAt: now}
	a := ownership.Assignment{Outcome: ownership.Assigned, OwnerUserID: "pu-ada", Reason: "mapped"}
	for range 2 { // a redelivered change publishes again; the stream keeps one
		if err := p.Assign(ctx, ch, a); err != nil {
			t.Fatal(err)
		}
		if err := p.RefreshUser(ctx, "acme", provider.Salesforce, "0055g00000AsDfGAAV", "INACTIVE_OWNER_OR_USER"); err != nil {
			t.Fatal(err)
		}
		if err := p.Alert(ctx, writeback.Alert{Tenant: "acme", Provider: provider.Salesforce, Kind: writeback.AlertWritebackFailed, EventID: "p-1"}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, streams.Sync)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("SYNC holds %d messages, want 3 (one each, repeats dropped)", info.State.Msgs)
	}
	msg, err := st.GetLastMsgForSubject(ctx, streams.OwnerAssign("acme"))
	if err != nil {
		t.Fatal(err)
	}
	var got ownersyncv1.OwnerAssign
	if err := proto.Unmarshal(msg.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetOwnerUserId() != "pu-ada" || got.GetMeta().GetEventId() != "assign:hs:1" || msg.Header.Get("Nats-Msg-Id") != "assign:hs:1" {
		t.Errorf("stored OwnerAssign %v with Nats-Msg-Id %q", &got, msg.Header.Get("Nats-Msg-Id"))
	}
	for _, subj := range []string{streams.UserRefresh("acme", "salesforce"), streams.Alert("acme")} {
		if _, err := st.GetLastMsgForSubject(ctx, subj); err != nil {
			t.Errorf("nothing on %s: %v", subj, err)
		}
	}
}
