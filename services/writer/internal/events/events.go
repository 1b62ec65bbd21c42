// Package events converts between the writer's domain types and the ownersync.v1 protobuf messages
// (the public contract): incoming owner changes become ownership types, and the writer's decisions
// become OwnerAssign, UserRefresh and Alert messages with deterministic event ids, so that a
// redelivered change republishes a message JetStream drops as a duplicate.
package events

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/provider/providerpb"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// ErrInvalid marks a message that can never be handled (dead-letter it).
var ErrInvalid = errors.New("invalid owner change")

// Source is EventMeta.source of the messages the writer publishes.
const Source = "writer"

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

func recordType(t ownersyncv1.RecordType) (ownership.RecordType, bool) {
	switch t {
	case ownersyncv1.RecordType_RECORD_TYPE_CONTACT:
		return ownership.Contact, true
	case ownersyncv1.RecordType_RECORD_TYPE_LEAD:
		return ownership.Lead, true
	}
	return "", false
}

func recordTypeProto(t ownership.RecordType) ownersyncv1.RecordType {
	if t == ownership.Lead {
		return ownersyncv1.RecordType_RECORD_TYPE_LEAD
	}
	return ownersyncv1.RecordType_RECORD_TYPE_CONTACT
}

// meta checks an incoming EventMeta: an event id, a valid tenant and the source time.
func meta(m *ownersyncv1.EventMeta) (id, tenantID string, at time.Time, err error) {
	switch {
	case m == nil:
		return "", "", time.Time{}, invalid("no meta")
	case m.GetEventId() == "":
		return "", "", time.Time{}, invalid("no event id")
	case !tenant.ValidID(m.GetTenantId()):
		return "", "", time.Time{}, invalid("tenant id %q", m.GetTenantId())
	case m.GetOccurredAt() == nil || !m.GetOccurredAt().IsValid():
		return "", "", time.Time{}, invalid("event %s has no valid occurred_at", m.GetEventId())
	}
	return m.GetEventId(), m.GetTenantId(), m.GetOccurredAt().AsTime(), nil
}

// CRMChange converts a CrmOwnerChanged; the error wraps ErrInvalid. Salesforce ids are put in their
// 18-character form.
func CRMChange(m *ownersyncv1.CrmOwnerChanged) (ownership.CRMOwnerChange, error) {
	id, tenant, at, err := meta(m.GetMeta())
	if err != nil {
		return ownership.CRMOwnerChange{}, err
	}
	p, ok := providerpb.FromProto(m.GetProvider())
	if !ok {
		return ownership.CRMOwnerChange{}, invalid("event %s: provider %s", id, m.GetProvider())
	}
	rt, ok := recordType(m.GetRecordType())
	if !ok {
		return ownership.CRMOwnerChange{}, invalid("event %s: record type %s", id, m.GetRecordType())
	}
	if m.GetRecordId() == "" {
		return ownership.CRMOwnerChange{}, invalid("event %s: no record id", id)
	}
	ch := ownership.CRMOwnerChange{
		EventID: id, Tenant: tenant, Provider: p, RecordType: rt, RecordID: m.GetRecordId(), Email: m.GetRecordEmail(),
		OwnerID: m.GetOwnerId(), OwnerKind: ownership.KindUser, OccurredAt: at,
		ChangeSource: m.GetChangeSource(), ActorID: m.GetActorId(),
	}
	if m.GetOwnerKind() == ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE {
		ch.OwnerKind = ownership.KindQueue
	}
	if p == provider.Salesforce {
		if ch.RecordID, err = sfid.To18(ch.RecordID); err != nil {
			return ownership.CRMOwnerChange{}, invalid("event %s: record id %q: %v", id, m.GetRecordId(), err)
		}
		if ch.OwnerID != "" {
			if ch.OwnerID, err = sfid.To18(ch.OwnerID); err != nil {
				return ownership.CRMOwnerChange{}, invalid("event %s: owner id %q: %v", id, m.GetOwnerId(), err)
			}
		}
	}
	return ch, nil
}

// PlatformChange converts a PlatformOwnerChanged; the error wraps ErrInvalid. CRM record ids under
// unknown provider names are ignored.
func PlatformChange(m *ownersyncv1.PlatformOwnerChanged) (ownership.PlatformOwnerChange, error) {
	id, tenant, at, err := meta(m.GetMeta())
	if err != nil {
		return ownership.PlatformOwnerChange{}, err
	}
	rt, ok := recordType(m.GetRecordType())
	if !ok {
		return ownership.PlatformOwnerChange{}, invalid("event %s: record type %s", id, m.GetRecordType())
	}
	if m.GetPlatformRecordId() == "" && m.GetRecordEmail() == "" && len(m.GetCrmRecordIds()) == 0 {
		return ownership.PlatformOwnerChange{}, invalid("event %s names no record (no platform id, email or CRM id)", id)
	}
	ch := ownership.PlatformOwnerChange{
		EventID: id, Tenant: tenant, RecordType: rt, PlatformRecordID: m.GetPlatformRecordId(),
		Email: strings.TrimSpace(m.GetRecordEmail()), OwnerUserID: m.GetOwnerUserId(), OccurredAt: at,
	}
	for name, rid := range m.GetCrmRecordIds() {
		p, ok := provider.Parse(strings.ToLower(name))
		if rid == "" || !ok {
			continue
		}
		if p == provider.Salesforce {
			if rid, err = sfid.To18(rid); err != nil {
				return ownership.PlatformOwnerChange{}, invalid("event %s: salesforce record id %q: %v", id, m.GetCrmRecordIds()[name], err)
			}
		}
		if ch.CRMRecordIDs == nil {
			ch.CRMRecordIDs = map[provider.Provider]string{}
		}
		ch.CRMRecordIDs[p] = rid
	}
	return ch, nil
}

var assignOutcomes = map[ownership.AssignOutcome]ownersyncv1.OwnerAssignOutcome{
	ownership.Assigned:            ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_ASSIGNED,
	ownership.UnassignedNoMapping: ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_UNASSIGNED_NO_MAPPING,
	ownership.UnassignedQueue:     ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_UNASSIGNED_QUEUE,
	ownership.UnassignedInactive:  ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_UNASSIGNED_INACTIVE,
}

// AssignID is the event id of the OwnerAssign for a CRM change: the same for every delivery of it.
func AssignID(crmEventID string) string { return "assign:" + crmEventID }

// OwnerAssign builds the message for the platform from a CRM change and its assignment. Publish it on
// streams.OwnerAssign(ch.Tenant) with the meta's event id as Nats-Msg-Id.
func OwnerAssign(ch ownership.CRMOwnerChange, a ownership.Assignment, now time.Time) *ownersyncv1.OwnerAssign {
	return &ownersyncv1.OwnerAssign{
		Meta: &ownersyncv1.EventMeta{EventId: AssignID(ch.EventID), TenantId: ch.Tenant, OccurredAt: timestamppb.New(ch.OccurredAt),
			ReceivedAt: timestamppb.New(now), Source: Source, SourceEventId: ch.EventID},
		SourceProvider:   providerpb.ToProto(ch.Provider),
		RecordType:       recordTypeProto(ch.RecordType),
		CrmRecordId:      ch.RecordID,
		RecordEmail:      ch.Email,
		PlatformRecordId: a.PlatformRecordID,
		OwnerUserId:      a.OwnerUserID,
		Outcome:          assignOutcomes[a.Outcome],
		Reason:           a.Reason,
		CrmOwnerId:       ch.OwnerID,
	}
}

// UserRefresh builds the request that asks mapper to re-read a CRM user, for publishing on
// streams.UserRefresh(tenant, provider). sourceEventID is the change whose write was refused.
func UserRefresh(tenant string, p provider.Provider, crmUserID, reason, sourceEventID string, now time.Time) *ownersyncv1.UserRefresh {
	return &ownersyncv1.UserRefresh{
		Meta: &ownersyncv1.EventMeta{EventId: "refresh:" + string(p) + ":" + crmUserID + ":" + sourceEventID, TenantId: tenant,
			OccurredAt: timestamppb.New(now), ReceivedAt: timestamppb.New(now), Source: Source, SourceEventId: sourceEventID},
		Provider:  providerpb.ToProto(p),
		CrmUserId: crmUserID,
		Reason:    reason,
	}
}

// Alert builds the Alert message for publishing on streams.Alert(a.Tenant). A failed write is a
// warning; a quota that stops all writes of a connection is critical.
func Alert(a writeback.Alert, now time.Time) *ownersyncv1.Alert {
	kind, severity := ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED, ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING
	switch a.Kind {
	case writeback.AlertQuotaExhausted:
		kind, severity = ownersyncv1.AlertKind_ALERT_KIND_QUOTA_EXHAUSTED, ownersyncv1.AlertSeverity_ALERT_SEVERITY_CRITICAL
	case writeback.AlertFallbackInactive:
		severity = ownersyncv1.AlertSeverity_ALERT_SEVERITY_CRITICAL
	}
	id := "alert:" + string(a.Kind) + ":" + a.EventID
	if a.EventID == "" {
		id = "alert:" + string(a.Kind) + ":" + a.Tenant + ":" + now.UTC().Format(time.RFC3339Nano)
	}
	return &ownersyncv1.Alert{
		Meta: &ownersyncv1.EventMeta{EventId: id, TenantId: a.Tenant, OccurredAt: timestamppb.New(now), ReceivedAt: timestamppb.New(now),
			Source: Source, SourceEventId: a.EventID},
		Severity: severity,
		Kind:     kind,
		Provider: providerpb.ToProto(a.Provider),
		Summary:  a.Summary,
		Details:  a.Details,
		Record:   a.Record,
	}
}
