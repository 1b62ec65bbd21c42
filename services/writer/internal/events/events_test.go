package events

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/provider"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 123000000, time.UTC)

func testMeta(id, tenant string) *ownersyncv1.EventMeta {
	return &ownersyncv1.EventMeta{EventId: id, TenantId: tenant, OccurredAt: timestamppb.New(t0), Source: "ingress"}
}

func TestCRMChange(t *testing.T) {
	tests := []struct {
		name    string
		in      *ownersyncv1.CrmOwnerChanged
		want    ownership.CRMOwnerChange
		invalid bool
	}{
		{
			name: "salesforce ids are normalised",
			in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("sf:00D:04l", "acme"), Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE,
				RecordType: ownersyncv1.RecordType_RECORD_TYPE_LEAD, RecordId: "00Q5g00000ZxCvB", RecordEmail: "grace@example.org",
				OwnerId: "00G5g000003LkJh", OwnerKind: ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE, ChangeSource: "salesforce", ActorId: "0055g00000AsDfGAAV"},
			want: ownership.CRMOwnerChange{EventID: "sf:00D:04l", Tenant: "acme", Provider: provider.Salesforce, RecordType: ownership.Lead,
				RecordID: "00Q5g00000ZxCvBEAV", Email: "grace@example.org", OwnerID: "00G5g000003LkJhEAK", OwnerKind: ownership.KindQueue,
				OccurredAt: t0, ChangeSource: "salesforce", ActorID: "0055g00000AsDfGAAV"},
		},
		{
			name: "hubspot cleared owner",
			in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("hs:1", "acme"), Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT,
				RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "51240", ChangeSource: "API", ActorId: "3100456"},
			want: ownership.CRMOwnerChange{EventID: "hs:1", Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact,
				RecordID: "51240", OwnerKind: ownership.KindUser, OccurredAt: t0, ChangeSource: "API", ActorID: "3100456"},
		},
		{name: "no meta", in: &ownersyncv1.CrmOwnerChanged{}, invalid: true},
		{name: "bad tenant", in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("x", "Acme Inc")}, invalid: true},
		{name: "no time", in: &ownersyncv1.CrmOwnerChanged{Meta: &ownersyncv1.EventMeta{EventId: "x", TenantId: "acme"}}, invalid: true},
		{name: "no provider", in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("x", "acme"), RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "1"}, invalid: true},
		{name: "no record type", in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("x", "acme"), Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT, RecordId: "1"}, invalid: true},
		{name: "no record id", in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("x", "acme"), Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT,
			RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT}, invalid: true},
		{name: "malformed salesforce id", in: &ownersyncv1.CrmOwnerChanged{Meta: testMeta("x", "acme"), Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE,
			RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "003-bad"}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CRMChange(tt.in)
			if tt.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("CRMChange error = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CRMChange (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlatformChange(t *testing.T) {
	in := &ownersyncv1.PlatformOwnerChanged{Meta: testMeta("p-1", "acme"), RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
		PlatformRecordId: "pr-1", RecordEmail: " ada@example.org ", OwnerUserId: "pu-ada",
		CrmRecordIds: map[string]string{"salesforce": "0035g00000QwErT", "hubspot": "51234", "pipedrive": "9", "HubSpot": ""}}
	got, err := PlatformChange(in)
	if err != nil {
		t.Fatal(err)
	}
	want := ownership.PlatformOwnerChange{EventID: "p-1", Tenant: "acme", RecordType: ownership.Contact, PlatformRecordID: "pr-1",
		Email: "ada@example.org", OwnerUserID: "pu-ada", OccurredAt: t0,
		CRMRecordIDs: map[provider.Provider]string{provider.Salesforce: "0035g00000QwErTAAV", provider.HubSpot: "51234"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PlatformChange (-want +got):\n%s", diff)
	}
	for name, bad := range map[string]*ownersyncv1.PlatformOwnerChanged{
		"no record":      {Meta: testMeta("p", "acme"), RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT},
		"no record type": {Meta: testMeta("p", "acme"), PlatformRecordId: "pr"},
		"bad sf id": {Meta: testMeta("p", "acme"), RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
			CrmRecordIds: map[string]string{"salesforce": "x"}},
	} {
		if _, err := PlatformChange(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
}

func TestOwnerAssign(t *testing.T) {
	now := t0.Add(time.Second)
	ch := ownership.CRMOwnerChange{EventID: "hs:1", Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact,
		RecordID: "51234", Email: "ada@example.org", OwnerID: "71234567", OccurredAt: t0}
	a := ownership.Assignment{Outcome: ownership.Assigned, OwnerUserID: "pu-ada", CRMOwnerID: "71234567", Reason: "mapped", PlatformRecordID: "pr-1"}
	want := &ownersyncv1.OwnerAssign{
		Meta: &ownersyncv1.EventMeta{EventId: "assign:hs:1", TenantId: "acme", OccurredAt: timestamppb.New(t0), ReceivedAt: timestamppb.New(now),
			Source: "writer", SourceEventId: "hs:1"},
		SourceProvider: ownersyncv1.Provider_PROVIDER_HUBSPOT, RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
		CrmRecordId: "51234", RecordEmail: "ada@example.org", PlatformRecordId: "pr-1", OwnerUserId: "pu-ada",
		Outcome: ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_ASSIGNED, Reason: "mapped", CrmOwnerId: "71234567",
	}
	if diff := cmp.Diff(want, OwnerAssign(ch, a, now), protocmp.Transform()); diff != "" {
		t.Errorf("OwnerAssign (-want +got):\n%s", diff)
	}
	for o, w := range map[ownership.AssignOutcome]ownersyncv1.OwnerAssignOutcome{
		ownership.UnassignedNoMapping: ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_UNASSIGNED_NO_MAPPING,
		ownership.UnassignedQueue:     ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_UNASSIGNED_QUEUE,
		ownership.UnassignedInactive:  ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_UNASSIGNED_INACTIVE,
	} {
		if got := OwnerAssign(ch, ownership.Assignment{Outcome: o}, now).GetOutcome(); got != w {
			t.Errorf("outcome %s → %s, want %s", o, got, w)
		}
	}
}

func TestAlertAndRefresh(t *testing.T) {
	now := t0
	a := Alert(writeback.Alert{Tenant: "acme", Provider: provider.Salesforce, Kind: writeback.AlertWritebackFailed,
		Summary: "s", Details: "d", Record: "salesforce/contact/0035g00000QwErTAAV", EventID: "p-1"}, now)
	if a.GetMeta().GetEventId() != "alert:writeback_failed:p-1" || a.GetSeverity() != ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING ||
		a.GetKind() != ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED || a.GetRecord() != "salesforce/contact/0035g00000QwErTAAV" {
		t.Errorf("Alert = %v", a)
	}
	q := Alert(writeback.Alert{Tenant: "acme", Provider: provider.HubSpot, Kind: writeback.AlertQuotaExhausted, EventID: "quota:acme:hubspot:1"}, now)
	if q.GetKind() != ownersyncv1.AlertKind_ALERT_KIND_QUOTA_EXHAUSTED || q.GetSeverity() != ownersyncv1.AlertSeverity_ALERT_SEVERITY_CRITICAL {
		t.Errorf("quota Alert = %v", q)
	}
	r := UserRefresh("acme", provider.Salesforce, "0055g00000AsDfGAAV", "INACTIVE_OWNER_OR_USER", "p-1", now)
	if r.GetMeta().GetEventId() != "refresh:salesforce:0055g00000AsDfGAAV:p-1" || r.GetProvider() != ownersyncv1.Provider_PROVIDER_SALESFORCE ||
		r.GetCrmUserId() != "0055g00000AsDfGAAV" || r.GetMeta().GetTenantId() != "acme" {
		t.Errorf("UserRefresh = %v", r)
	}
}
