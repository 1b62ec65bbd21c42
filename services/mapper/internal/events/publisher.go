// Package events is mapper's edge to NATS JetStream: it decodes the events mapper consumes into
// domain types and hands them to the core (Handlers), maps the core's error codes to
// acknowledgements, and publishes what the core decides as proto events (Publisher). It is the only
// package of mapper that knows the generated proto types and natsbus.
package events

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// Bus publishes one message with a deduplicating message id (natsbus.Publisher).
type Bus interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (duplicate bool, err error)
	PublishWithHeaders(ctx context.Context, subject, msgID string, m proto.Message, headers map[string]string) (duplicate bool, err error)
}

// Publisher publishes the core's events.
type Publisher struct {
	bus Bus
	now func() time.Time
}

// NewPublisher returns a publisher over bus; now stamps the reports' received_at (nil: time.Now).
func NewPublisher(bus Bus, now func() time.Time) *Publisher {
	if now == nil {
		now = time.Now
	}
	return &Publisher{bus: bus, now: now}
}

// MappingChanged publishes a mapping.changed event (message id = event id).
func (p *Publisher) MappingChanged(ctx context.Context, ev domain.MappingEvent) error {
	msg := mappingChanged(ev.Change)
	at := timestamppb.New(ev.At)
	msg.Meta = &ownersyncv1.EventMeta{EventId: ev.ID, TenantId: ev.Tenant, OccurredAt: at, ReceivedAt: at, Source: ev.Source, SourceEventId: ev.SourceEventID}
	_, err := p.bus.Publish(ctx, streams.MappingChanged(ev.Tenant, provider.Provider(ev.Provider)), ev.ID, msg)
	return err
}

// ProvisionRequested publishes a PlatformUserProvision to platform.user.provision.<tenant>.
func (p *Publisher) ProvisionRequested(ctx context.Context, r domain.ProvisionRequest) error {
	at := timestamppb.New(r.RequestedAt)
	o := r.Owner
	msg := &ownersyncv1.PlatformUserProvision{
		Meta:     &ownersyncv1.EventMeta{EventId: r.ID, TenantId: r.Tenant, OccurredAt: at, ReceivedAt: at, Source: "mapper", SourceEventId: r.SourceEventID},
		Provider: Provider(r.Provider),
		CrmUser: &ownersyncv1.CrmUser{Id: o.ID, Email: r.Email, FirstName: o.FirstName, LastName: o.LastName,
			Active: o.Active, Kind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER, Username: o.Username, UserType: o.UserType,
			HubspotUserId: o.HubSpotUserID},
	}
	_, err := p.bus.Publish(ctx, streams.PlatformUserProvision(r.Tenant), r.ID, msg)
	return err
}

// SyncReport publishes a run's report to report.sync.<tenant> (the notifier mails it).
func (p *Publisher) SyncReport(ctx context.Context, r report.Report) error {
	finished := timestamppb.New(r.FinishedAt)
	msg := &ownersyncv1.SyncReport{
		Meta: &ownersyncv1.EventMeta{EventId: r.ID, TenantId: r.Tenant, OccurredAt: finished, ReceivedAt: timestamppb.New(p.now()),
			Source: "mapper", SourceEventId: r.RunID},
		RunId: r.RunID, Trigger: trigger(r.Trigger), DryRun: r.DryRun, TenantName: r.TenantName, AdminUrl: r.AdminURL,
		StartedAt: timestamppb.New(r.StartedAt), FinishedAt: finished,
	}
	for _, pr := range r.Providers {
		msg.Providers = append(msg.Providers, providerReport(pr))
	}
	var headers map[string]string
	if r.DryRun && r.EmailReport {
		// The notifier emails a dry run's report only when asked (issue 13 item 10).
		headers = map[string]string{streams.HeaderEmailReport: "true"}
	}
	_, err := p.bus.PublishWithHeaders(ctx, streams.ReportSync(r.Tenant), r.ID, msg, headers)
	return err
}

func providerReport(p report.Provider) *ownersyncv1.ProviderReport {
	c := p.Counts
	out := &ownersyncv1.ProviderReport{Provider: Provider(p.Provider), Failure: p.Failure,
		Counts: &ownersyncv1.SyncCounts{Mapped: int32(c.Mapped), Created: int32(c.Created), Remapped: int32(c.Remapped),
			Removed: int32(c.Removed), Conflicts: int32(c.Conflicts), Errors: int32(c.Errors), UnmappedPlatform: int32(c.UnmappedPlatform),
			UnmappedCrm: int32(c.UnmappedCRM), Pulled: int32(c.Pulled), NotMappable: int32(c.NotMappable)},
		ChangesTotal: int32(p.ChangesTotal), ErrorsTotal: int32(p.ErrorsTotal), NotMappableTotal: int32(p.NotMappableTotal)}
	for _, ch := range p.Changes {
		out.Changes = append(out.Changes, &ownersyncv1.SyncChange{Change: Kind(ch.Kind), PlatformUserId: ch.PlatformUserID,
			CrmUserId: ch.CRMUserID, PreviousCrmUserId: ch.PreviousCRMUserID, Email: ch.Email, Name: ch.Name, Reason: ch.Reason})
	}
	for _, e := range p.Errors {
		out.Errors = append(out.Errors, &ownersyncv1.SyncError{Code: e.Code, PlatformUserId: e.PlatformUserID, CrmUserId: e.CRMUserID,
			Email: e.Email, Message: e.Message, Fix: e.Fix, Conflict: e.Conflict(), Name: e.Name})
	}
	for _, n := range p.NotMappable {
		out.NotMappable = append(out.NotMappable, &ownersyncv1.SyncNotMappable{CrmUserId: n.CRMUserID, Name: n.Name, Email: n.Email,
			UserType: n.UserType, License: n.License, Reason: n.Reason})
	}
	return out
}

func trigger(s string) ownersyncv1.SyncTrigger {
	switch s {
	case domain.TriggerManual:
		return ownersyncv1.SyncTrigger_SYNC_TRIGGER_MANUAL
	case domain.TriggerSchedule:
		return ownersyncv1.SyncTrigger_SYNC_TRIGGER_SCHEDULE
	}
	return ownersyncv1.SyncTrigger_SYNC_TRIGGER_API
}
