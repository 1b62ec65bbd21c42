package events_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/events"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
	"github.com/ownersync/ownersync/services/mapper/internal/report"
)

// TestClassify maps the core's codes to acknowledgements as domain.HTTPStatus maps them to statuses.
func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		permanent bool
		retryIn   time.Duration
	}{
		{"unknown tenant", &domain.Error{Code: domain.CodeNotFound, Message: "tenant x not found", Err: domain.ErrUnknownTenant}, true, 0},
		{"provider not connected", fmt.Errorf("%w: acme hubspot", domain.ErrNotConnected), true, 0},
		{"conflict", domain.Errorf(domain.CodeConflict, "pinned"), true, 0},
		{"busy", fmt.Errorf("lock: %w", domain.ErrBusy), false, time.Minute},
		{"internal", errors.New("mongodb down"), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := events.Classify(tt.err)
			if natsbus.IsPermanent(got) != tt.permanent {
				t.Errorf("permanent = %v, want %v", natsbus.IsPermanent(got), tt.permanent)
			}
			var re *natsbus.RetryError
			delay := time.Duration(0)
			if errors.As(got, &re) {
				delay = re.Delay
			}
			if delay != tt.retryIn {
				t.Errorf("retry after %v, want %v", delay, tt.retryIn)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("the classified error lost its cause")
			}
		})
	}
}

type bus struct {
	subject, id string
	msg         proto.Message
	headers     map[string]string
}

func (b *bus) Publish(_ context.Context, subject, id string, m proto.Message) (bool, error) {
	b.subject, b.id, b.msg, b.headers = subject, id, m, nil
	return false, nil
}

func (b *bus) PublishWithHeaders(_ context.Context, subject, id string, m proto.Message, h map[string]string) (bool, error) {
	b.subject, b.id, b.msg, b.headers = subject, id, m, h
	return false, nil
}

// TestSyncReportEvent converts a run's report into the report.sync event the notifier mails.
func TestSyncReportEvent(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	b := &bus{}
	p := events.NewPublisher(b, func() time.Time { return t0.Add(2 * time.Minute) })
	r := report.Report{ID: "report:run-1", RunID: "run-1", Tenant: "acme", TenantName: "Acme", Trigger: domain.TriggerSchedule,
		AdminURL: "https://admin.test", StartedAt: t0, FinishedAt: t0.Add(time.Minute), Providers: []report.Provider{
			{Provider: "salesforce", Counts: report.Counts{Counts: mapping.Counts{Mapped: 3, Created: 1, NotMappable: 2}, Pulled: 4},
				Changes:      []mapping.Change{{Kind: mapping.ChangeCreated, PlatformUserID: "p1", CRMUserID: "005A", Email: "a@x.test"}},
				ChangesTotal: 1,
				Errors:       []mapping.Problem{{Code: mapping.CodeCRMUserNotFound, PlatformUserID: "p2", Message: "none", Fix: "create"}},
				ErrorsTotal:  5,
				NotMappable: []mapping.NotMappable{{CRMUserID: "005Q", Name: "Automated Process", UserType: "AutomatedProcess",
					Reason: "Salesforce's Automated Process user"}},
				NotMappableTotal: 2},
			report.Failed("hubspot", "401 from HubSpot"),
		}}
	if err := p.SyncReport(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	want := &ownersyncv1.SyncReport{
		Meta: &ownersyncv1.EventMeta{EventId: "report:run-1", TenantId: "acme", OccurredAt: timestamppb.New(t0.Add(time.Minute)),
			ReceivedAt: timestamppb.New(t0.Add(2 * time.Minute)), Source: "mapper", SourceEventId: "run-1"},
		RunId: "run-1", Trigger: ownersyncv1.SyncTrigger_SYNC_TRIGGER_SCHEDULE, TenantName: "Acme", AdminUrl: "https://admin.test",
		StartedAt: timestamppb.New(t0), FinishedAt: timestamppb.New(t0.Add(time.Minute)),
		Providers: []*ownersyncv1.ProviderReport{
			{Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE, Counts: &ownersyncv1.SyncCounts{Mapped: 3, Created: 1, Pulled: 4, NotMappable: 2},
				Changes:      []*ownersyncv1.SyncChange{{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED, PlatformUserId: "p1", CrmUserId: "005A", Email: "a@x.test"}},
				ChangesTotal: 1,
				Errors:       []*ownersyncv1.SyncError{{Code: mapping.CodeCRMUserNotFound, PlatformUserId: "p2", Message: "none", Fix: "create"}},
				ErrorsTotal:  5,
				NotMappable: []*ownersyncv1.SyncNotMappable{{CrmUserId: "005Q", Name: "Automated Process", UserType: "AutomatedProcess",
					Reason: "Salesforce's Automated Process user"}},
				NotMappableTotal: 2},
			{Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT, Counts: &ownersyncv1.SyncCounts{}, Failure: "401 from HubSpot"},
		},
	}
	if b.subject != "report.sync.acme" || b.id != "report:run-1" {
		t.Errorf("published to %s as %s", b.subject, b.id)
	}
	if diff := cmp.Diff(want, b.msg, protocmp.Transform()); diff != "" {
		t.Errorf("SyncReport (-want +got):\n%s", diff)
	}
}

// TestDryRunReportAsksForEmail is issue 13 item 10 (mapper part): a dry run's report carries
// Ownersync-Email-Report: true exactly when the run asked for its report to be emailed (the
// notifier emails a dry run's report only then); other reports never carry it.
func TestDryRunReportAsksForEmail(t *testing.T) {
	for _, c := range []struct {
		dry, email bool
		want       string
	}{{true, true, "true"}, {true, false, ""}, {false, false, ""}} {
		b := &bus{}
		p := events.NewPublisher(b, nil)
		r := report.Report{ID: "report:run-1", RunID: "run-1", Tenant: "acme", DryRun: c.dry, EmailReport: c.email}
		if err := p.SyncReport(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if got := b.headers[streams.HeaderEmailReport]; got != c.want {
			t.Errorf("dry %t, email %t: header %q, want %q", c.dry, c.email, got, c.want)
		}
		if b.msg == nil {
			t.Fatal("nothing published")
		}
	}
}
