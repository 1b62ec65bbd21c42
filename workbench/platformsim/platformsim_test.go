package platformsim_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

func TestPlatformPublishesAndApplies(t *testing.T) {
	bus := harness.JetStream(t).Conn
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := platformsim.New("demo", bus, nil)
	go p.Run(ctx)

	if err := p.PutUser(ctx, platformsim.User{ID: "u1", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := p.PutUser(ctx, platformsim.User{ID: "u2", Status: "gone"}); err == nil {
		t.Fatal("invalid status accepted")
	}
	if err := p.PutRecord(ctx, platformsim.Record{ID: "r1", Type: "contact", Email: "c@example.com", OwnerUserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	s, _ := bus.JS.Stream(ctx, streams.Platform)
	last, err := s.GetLastMsgForSubject(ctx, streams.PlatformOwnerChanged("demo"))
	if err != nil {
		t.Fatal(err)
	}
	var oc ownersyncv1.PlatformOwnerChanged
	if err := proto.Unmarshal(last.Data, &oc); err != nil || oc.GetOwnerUserId() != "u1" || oc.GetPlatformRecordId() != "r1" {
		t.Fatalf("published owner change = %v, %v", &oc, err)
	}

	// A provisioned user without a team: the assignment is held until the team arrives.
	pub := natsbus.NewPublisher(bus.JS, nil, time.Second)
	prov := &ownersyncv1.PlatformUserProvision{Meta: &ownersyncv1.EventMeta{EventId: "prov:hubspot:77", TenantId: "demo"},
		Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT, CrmUser: &ownersyncv1.CrmUser{Id: "77", Email: "new@example.com"}}
	if _, err := pub.Publish(ctx, streams.PlatformUserProvision("demo"), "prov:hubspot:77", prov); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "user provisioned", func() bool { _, ok := p.User("prov-hubspot-77"); return ok })
	assign := &ownersyncv1.OwnerAssign{Meta: &ownersyncv1.EventMeta{EventId: "as-1", TenantId: "demo", OccurredAt: timestamppb.Now()},
		SourceProvider: ownersyncv1.Provider_PROVIDER_HUBSPOT, RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
		CrmRecordId: "5001", RecordEmail: "c@example.com", OwnerUserId: "prov-hubspot-77",
		Outcome: ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_ASSIGNED}
	if _, err := pub.Publish(ctx, streams.OwnerAssign("demo"), "as-1", assign); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "assignment held", func() bool {
		a := p.Assignments()
		return len(a) == 1 && a[0].Held
	})
	if r, _ := p.Record("r1"); r.OwnerUserID != "u1" {
		t.Fatalf("held assignment applied early: owner %s", r.OwnerUserID)
	}
	u, _ := p.User("prov-hubspot-77")
	u.TeamID = "team-1"
	if err := p.PutUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	r, _ := p.Record("r1")
	if r.OwnerUserID != "prov-hubspot-77" || r.CRMRecordIDs["hubspot"] != "5001" {
		t.Fatalf("after team: record = %+v", r)
	}
}
