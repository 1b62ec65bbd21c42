package app

import (
	"context"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
)

const (
	sfAda     = "0055g00000AsDfGAAV"
	sfGrace   = "0055g00000HjKlMAAV"
	sfContact = "0035g00000QwErTAAV"
)

type tenants map[string]*tenant.Tenant

func (ts tenants) Get(_ context.Context, id string) (*tenant.Tenant, error) {
	if t, ok := ts[id]; ok {
		return t, nil
	}
	return nil, tenant.ErrNotFound
}

// TestCoreEndToEnd runs the assembled core behind real JetStream consumers: a platform owner change
// is written once to each sandbox CRM, the CRMs' reports of that write are echoes (no OwnerAssign),
// a change made in HubSpot becomes an OwnerAssign for the mapped platform user, and the history is
// in MongoDB (FerretDB) where mapper reads it.
func TestCoreEndToEnd(t *testing.T) {
	st := newStack(t, stackOptions{providers: []string{"salesforce", "hubspot"}})
	ctx, org, acct, bus := st.ctx, st.org, st.acct, st.bus
	mc := st.mongo
	pub := natsbus.NewPublisher(bus.JS, nil, 5*time.Second)
	publish := func(subject, id string, m proto.Message) {
		t.Helper()
		if _, err := pub.Publish(ctx, subject, id, m); err != nil {
			t.Fatal(err)
		}
	}
	meta := func(id string, at time.Time) *ownersyncv1.EventMeta {
		return &ownersyncv1.EventMeta{EventId: id, TenantId: "acme", OccurredAt: timestamppb.New(at), ReceivedAt: timestamppb.Now(), Source: "test"}
	}
	writes := func() int {
		return len(org.Log().Matching("PATCH", "/services/data/v62.0/composite/sobjects")) +
			len(acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update"))
	}

	// 1. The platform gives the record to Ada.
	publish(streams.PlatformOwnerChanged("acme"), "p-1", &ownersyncv1.PlatformOwnerChanged{Meta: meta("p-1", time.Now()),
		RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, PlatformRecordId: "pr-1", RecordEmail: "c1@example.org",
		OwnerUserId: "pu-ada", CrmRecordIds: map[string]string{"salesforce": sfContact, "hubspot": "101"}})
	harness.Eventually(t, 10*time.Second, "both CRM records owned by Ada", func() bool {
		r, _ := org.Record(sfContact)
		c, _ := acct.Contact("101")
		return r.OwnerID == sfAda && c.Properties[hssim.OwnerProperty] == "7001"
	})

	// 2. The CRMs report that change, as ingress would publish it: echoes.
	sfRec, _ := org.Record(sfContact)
	publish(streams.CrmOwnerChanged("acme", "salesforce"), "sf:echo", &ownersyncv1.CrmOwnerChanged{Meta: meta("sf:echo", sfRec.LastModifiedDate),
		Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE, RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: sfContact,
		OwnerId: sfAda, OwnerKind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER})
	publish(streams.CrmOwnerChanged("acme", "hubspot"), "hs:echo", &ownersyncv1.CrmOwnerChanged{Meta: meta("hs:echo", time.Now()),
		Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT, RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "101",
		OwnerId: "7001", OwnerKind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER})

	hist := mc.DB.Collection(ownerhistory.Collection)
	historyOf := func(recordID string) int64 {
		n, err := hist.CountDocuments(ctx, bson.D{{Key: "tenant", Value: "acme"}, {Key: "record_id", Value: recordID}})
		if err != nil {
			return -1
		}
		return n
	}
	harness.Eventually(t, 10*time.Second, "both echoes recorded", func() bool { return historyOf("101") == 2 && historyOf(sfContact) == 2 })

	// 3. Someone gives the HubSpot contact to Grace.
	if err := acct.SetContactOwner("101", "7003", 9988776); err != nil {
		t.Fatal(err)
	}
	publish(streams.CrmOwnerChanged("acme", "hubspot"), "hs:2", &ownersyncv1.CrmOwnerChanged{Meta: meta("hs:2", time.Now().Add(time.Second)),
		Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT, RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "101",
		OwnerId: "7003", OwnerKind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER, ChangeSource: "CRM_UI"})

	syncStream, err := bus.JS.Stream(ctx, streams.Sync)
	if err != nil {
		t.Fatal(err)
	}
	var assign ownersyncv1.OwnerAssign
	harness.Eventually(t, 10*time.Second, "an OwnerAssign", func() bool {
		m, err := syncStream.GetLastMsgForSubject(ctx, streams.OwnerAssign("acme"))
		return err == nil && proto.Unmarshal(m.Data, &assign) == nil
	})
	if assign.GetOwnerUserId() != "pu-grace" || assign.GetOutcome() != ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_ASSIGNED ||
		assign.GetPlatformRecordId() != "pr-1" || assign.GetMeta().GetEventId() != "assign:hs:2" {
		t.Errorf("OwnerAssign = %v, want pu-grace for pr-1 from hs:2", &assign)
	}
	info, err := syncStream.Info(ctx, jetstream.WithSubjectFilter(streams.OwnerAssign("acme")))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.State.Subjects); n != 1 || info.State.Subjects[streams.OwnerAssign("acme")] != 1 {
		t.Errorf("owner.assign messages %v, want exactly one: the echoes must not reach the platform", info.State.Subjects)
	}
	if got := writes(); got != 2 {
		t.Errorf("%d CRM writes, want exactly one per CRM", got)
	}

	// 4. The history is where mapper's record-history route reads it.
	harness.Eventually(t, 10*time.Second, "the history of the HubSpot contact", func() bool { return historyOf("101") == 3 })
	cur, err := hist.Find(ctx, bson.D{{Key: "tenant", Value: "acme"}, {Key: "provider", Value: "hubspot"}, {Key: "record_id", Value: "101"}})
	if err != nil {
		t.Fatal(err)
	}
	var docs []ownerhistory.Doc
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]string{}
	for _, d := range docs {
		outcomes[d.EventID] = d.Direction + " " + d.Outcome
	}
	want := map[string]string{"p-1": "platform_to_crm applied", "hs:echo": "crm_to_platform echo", "hs:2": "crm_to_platform assigned"}
	if historyOf(sfContact) != 2 {
		t.Errorf("salesforce contact history has %d entries, want 2 (applied, echo)", historyOf(sfContact))
	}
	for id, w := range want {
		if outcomes[id] != w {
			t.Errorf("history of %s = %q, want %q (all: %v)", id, outcomes[id], w, outcomes)
		}
	}
}
