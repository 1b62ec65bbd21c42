package render

import (
	"fmt"
	"time"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SampleReport returns a realistic report for the demo tenant, finished at now: both providers,
// every kind of change, errors with fixes. The preview route and command show it when no real
// report is asked for.
func SampleReport(now time.Time) *ownersyncv1.SyncReport {
	started := now.Add(-42 * time.Second)
	sf := &ownersyncv1.ProviderReport{
		Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE,
		Counts: &ownersyncv1.SyncCounts{Mapped: 118, Created: 4, Remapped: 1, Removed: 2, Conflicts: 1,
			Errors: 2, UnmappedPlatform: 6, UnmappedCrm: 9, Pulled: 138, NotMappable: 2},
		Changes: []*ownersyncv1.SyncChange{
			{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED, PlatformUserId: "u-1001", CrmUserId: "005000000000001AAA",
				Email: "ada@example.com", Name: "Ada Lovelace", Reason: "matched by email"},
			{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_REMAPPED, PlatformUserId: "u-1002", CrmUserId: "005000000000002AAA",
				PreviousCrmUserId: "005000000000009AAA", Email: "grace@example.com", Name: "Grace Hopper",
				Reason: "the mapped Salesforce user was deactivated; moved to the active user with the same email"},
			{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_REMOVED, PlatformUserId: "u-1003", PreviousCrmUserId: "005000000000003AAA",
				Email: "alan@example.com", Name: "Alan Turing", Reason: "the platform user was suspended"},
			{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CONFLICT, PlatformUserId: "u-1004", Email: "team@example.com",
				Name: "Team Inbox", Reason: "two active Salesforce users have this email"},
		},
		ChangesTotal: 8,
		Errors: []*ownersyncv1.SyncError{
			{Code: "crm_user_inactive", PlatformUserId: "u-1005", CrmUserId: "005000000000006AAA", Email: "edsger@example.com",
				Name:    "Edsger Dijkstra",
				Message: "The manually mapped Salesforce user is inactive.",
				Fix:     "Reactivate the user in Salesforce or pin the platform user to another Salesforce user."},
			{Code: "crm_user_not_found", PlatformUserId: "u-1007", Email: "barbara@example.com", Name: "Barbara Liskov",
				Message: "No active Salesforce user has this email.",
				Fix:     "Create the Salesforce user with this email, or map the platform user manually."},
			{Code: "ambiguous_email", PlatformUserId: "u-1004", Email: "team@example.com", Name: "Team Inbox", Conflict: true,
				Message: "Two active Salesforce users (005000000000004AAA, 005000000000005AAA) have the email team@example.com.",
				Fix:     "Deactivate one of them in Salesforce or map the user manually, then run Sync Users again."},
		},
		ErrorsTotal: 3,
		NotMappable: []*ownersyncv1.SyncNotMappable{
			{CrmUserId: "005000000000010AAA", Name: "Integration User", Email: "integration@example.com", UserType: "Standard",
				License: "Salesforce Integration", Reason: "an integration user (Salesforce Integration licence), used by other systems, not by a person"},
			{CrmUserId: "005000000000011AAA", Name: "Automated Process", UserType: "AutomatedProcess",
				Reason: "Salesforce's Automated Process user, which runs flows and platform events"},
		},
		NotMappableTotal: 2,
	}
	hs := &ownersyncv1.ProviderReport{
		Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT,
		Counts:   &ownersyncv1.SyncCounts{Mapped: 97, Created: 2, UnmappedPlatform: 27, UnmappedCrm: 3, Pulled: 100},
		Changes: []*ownersyncv1.SyncChange{
			{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED, PlatformUserId: "u-1001", CrmUserId: "71234501",
				Email: "ada@example.com", Name: "Ada Lovelace", Reason: "matched by email"},
			{Change: ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED, PlatformUserId: "u-1006", CrmUserId: "71234502",
				Email: "barbara@example.com", Name: "Barbara Liskov", Reason: "matched by email"},
		},
		ChangesTotal: 2,
	}
	return &ownersyncv1.SyncReport{
		Meta: &ownersyncv1.EventMeta{EventId: "report:sample", TenantId: "demo", OccurredAt: timestamppb.New(now),
			ReceivedAt: timestamppb.New(now), Source: "mapper"},
		RunId:      "sample",
		Trigger:    ownersyncv1.SyncTrigger_SYNC_TRIGGER_MANUAL,
		Providers:  []*ownersyncv1.ProviderReport{sf, hs},
		StartedAt:  timestamppb.New(started),
		FinishedAt: timestamppb.New(now),
		TenantName: "Demo Company",
	}
}

// SampleAlerts returns a few alerts of every kind for the demo tenant, the last one at now.
func SampleAlerts(now time.Time) []*ownersyncv1.Alert {
	mk := func(i int, sev ownersyncv1.AlertSeverity, kind ownersyncv1.AlertKind, p ownersyncv1.Provider, summary, details, payload, record string) *ownersyncv1.Alert {
		at := timestamppb.New(now.Add(time.Duration(i-3) * time.Minute))
		return &ownersyncv1.Alert{
			Meta:     &ownersyncv1.EventMeta{EventId: fmt.Sprintf("alert:sample:%d", i), TenantId: "demo", OccurredAt: at, ReceivedAt: at, Source: "writer"},
			Severity: sev, Kind: kind, Provider: p, Summary: summary, Details: details, PayloadExcerpt: payload, Record: record,
		}
	}
	return []*ownersyncv1.Alert{
		mk(0, ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING, ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED, ownersyncv1.Provider_PROVIDER_SALESFORCE,
			"Salesforce refused an owner change: INACTIVE_OWNER_OR_USER",
			"The owner 005000000000006AAA is inactive. ownersync asked mapper to refresh this user.\nFix: reactivate the user or map the platform user to an active Salesforce user.",
			`{"errors":[{"statusCode":"INACTIVE_OWNER_OR_USER","message":"operation performed with inactive user"}]}`,
			"salesforce/contact/003000000000001AAA"),
		mk(1, ownersyncv1.AlertSeverity_ALERT_SEVERITY_CRITICAL, ownersyncv1.AlertKind_ALERT_KIND_AUTH_FAILED, ownersyncv1.Provider_PROVIDER_HUBSPOT,
			"HubSpot rejected ownersync's token", "HubSpot answered 401. Owner changes to HubSpot are held.\nFix: reconnect the HubSpot app in the tenant's settings.", "", ""),
		mk(2, ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING, ownersyncv1.AlertKind_ALERT_KIND_QUOTA_EXHAUSTED, ownersyncv1.Provider_PROVIDER_SALESFORCE,
			"Salesforce daily API quota 95% used", "Writes to Salesforce are paused until the quota resets.", "Sforce-Limit-Info: api-usage=95000/100000", ""),
		mk(3, ownersyncv1.AlertSeverity_ALERT_SEVERITY_INFO, ownersyncv1.AlertKind_ALERT_KIND_DLQ, ownersyncv1.Provider_PROVIDER_UNSPECIFIED,
			"A platform owner change went to the dead-letter queue", "The event named a platform user that does not exist.",
			`{"ownerUserId":"u-404","platformRecordId":"c-17"}`, "platform/contact/c-17"),
	}
}
