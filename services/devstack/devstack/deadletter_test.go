package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// TestPermanentWriteErrorDeadLettersAndReplays: Salesforce refuses an owner write with
// INACTIVE_OWNER_OR_USER → the change is dead-lettered, an alert is raised, the record's history
// shows the failure and mapper is asked to refresh the user; once the cause is gone, replaying the
// dead letter through the admin API writes the owner.
func TestPermanentWriteErrorDeadLettersAndReplays(t *testing.T) {
	s := startDemo(t)
	waitFirstSync(t, s)
	ctx := context.Background()
	crm, plat := s.Sandboxes(), s.Platform()

	contacts := crm.Salesforce.Records("Contact")
	target := contacts[len(contacts)-1]
	var linus string
	for _, u := range crm.Salesforce.Users() {
		if u.Email == "linus.torvalds@acme.example" {
			linus = u.ID
		}
	}
	rule := crm.Salesforce.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: target.ID, Code: "INACTIVE_OWNER_OR_USER"})
	if err := plat.PutRecord(ctx, platformsim.Record{ID: "pr-dl-1", Type: "contact", Email: target.Email, OwnerUserID: "pu-linus-torvalds",
		CRMRecordIDs: map[string]string{"salesforce": target.ID}}); err != nil {
		t.Fatal(err)
	}

	type letters struct {
		Items []struct {
			ID      uint64 `json:"id"`
			Service string `json:"service"`
			Subject string `json:"subject"`
			Error   string `json:"error"`
		} `json:"items"`
	}
	var dl letters
	harness.Eventually(t, 30*time.Second, "dead letter listed", func() bool {
		dl = letters{}
		getJSON(t, s, "/v1/tenants/acme/dlq?service=writer", &dl)
		return len(dl.Items) > 0
	})
	if !strings.Contains(dl.Items[0].Error, "INACTIVE_OWNER_OR_USER") || dl.Items[0].Subject != streams.PlatformOwnerChanged("acme") {
		t.Errorf("dead letter = %+v", dl.Items[0])
	}

	// The alert and the refresh request are on the SYNC stream.
	nc, err := nats.Connect(s.URLs["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	syncStream, _ := js.Stream(ctx, streams.Sync)
	alertMsg, err := syncStream.GetLastMsgForSubject(ctx, streams.Alert("acme"))
	if err != nil {
		t.Fatalf("no alert published: %v", err)
	}
	var alert ownersyncv1.Alert
	if err := proto.Unmarshal(alertMsg.Data, &alert); err != nil || alert.GetKind() != ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED {
		t.Errorf("alert = %v, %v", &alert, err)
	}
	if _, err := syncStream.GetLastMsgForSubject(ctx, streams.UserRefresh("acme", "salesforce")); err != nil {
		t.Errorf("no user.refresh published: %v", err)
	}
	var hist struct {
		Items []struct {
			Outcome string `json:"outcome"`
		} `json:"items"`
	}
	getJSON(t, s, "/v1/tenants/acme/records/salesforce/contact/"+target.ID+"/history", &hist)
	failed := false
	for _, e := range hist.Items {
		failed = failed || e.Outcome == "failed"
	}
	if !failed {
		t.Errorf("history has no failed entry: %+v", hist.Items)
	}

	// The cause is fixed; replay the dead letter.
	crm.Salesforce.Faults().Remove(rule)
	body, _ := json.Marshal(map[string]any{"ids": []uint64{dl.Items[0].ID}})
	req, _ := http.NewRequest("POST", s.URLs["mapper"]+"/v1/tenants/acme/dlq/replay", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Opts.OperatorToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("replay: HTTP %d", resp.StatusCode)
	}
	harness.Eventually(t, 30*time.Second, "owner written after replay", func() bool {
		r, _ := crm.Salesforce.Record(target.ID)
		return r.OwnerID == linus
	})
	dl = letters{}
	getJSON(t, s, "/v1/tenants/acme/dlq?service=writer", &dl)
	if len(dl.Items) != 0 {
		t.Errorf("dead letters left after replay: %+v", dl.Items)
	}
}
