package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// failedShown caps the Failed writes list and the overview's dead letter count.
const failedShown = 100

// failedWriteRow is one failed record write as the Failed writes page shows it: the record (with
// a link to its history), the owner the writer tried to write, the CRM's error code and a fix.
type failedWriteRow struct {
	domain.HistoryEntry
	HistoryURL string
	Fix        string
}

// failedWriteFix suggests what the admin does about a failed write: by the CRM's error code when
// the CRM refused it, else (no CRM call: no valid owner) by mapping the platform owner.
func failedWriteFix(h domain.HistoryEntry) string {
	crm := providerName(h.Provider)
	switch strings.ToUpper(h.ErrorCode) {
	case "":
		if h.Reason != "" && strings.Contains(h.Reason, "fallback") {
			return "Map the platform user to an active " + crm + " user, or set an active fallback owner in Settings; then replay the dead letter."
		}
		return "Map the platform user to an active " + crm + " user; then replay the dead letter."
	case "INACTIVE_OWNER_OR_USER", "INACTIVE_OWNER":
		return "The owner is inactive in " + crm + ": reactivate the user, or map the platform user to an active one (Sync Users), then replay the dead letter."
	case "INVALID_CROSS_REFERENCE_KEY", "INVALID_OWNER_ID", "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD", "MALFORMED_ID", "INVALID_ID_FIELD":
		return "The owner id is not a " + crm + " user that can own the record: run Sync Users to refresh the mapping, then replay the dead letter."
	case "ENTITY_IS_DELETED", "NOT_FOUND", "OBJECT_NOT_FOUND":
		return "The record no longer exists in " + crm + ": nothing to write; delete the dead letter rather than replay it."
	case "INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "TRANSFER_REQUIRES_READ", "MISSING_SCOPES", "FORBIDDEN":
		return "The connected " + crm + " user may not change this record's owner: grant it edit and transfer rights (profile, permission set or sharing; HubSpot: the app's scopes), then replay."
	case "ENTITY_IS_LOCKED":
		return "The record is locked in " + crm + " (an approval process): unlock it, then replay the dead letter."
	case "FIELD_CUSTOM_VALIDATION_EXCEPTION", "FIELD_INTEGRITY_EXCEPTION", "REQUIRED_FIELD_MISSING", "VALIDATION_ERROR":
		return "A " + crm + " validation rule or required field refused the change: fix the record (or the rule) in " + crm + ", then replay."
	}
	return "See the error in the record's history and in " + crm + "; once fixed, replay the dead letter."
}

// failedWrites is the Failed writes page: the failed record writes from the writer's ownership
// history, and the writer's dead letters, with what to do.
func (c *Console) failedWrites(r *req) error {
	fw, err := c.svc.FailedWrites(r.ctx, r.tenant.ID, failedShown)
	if err != nil {
		return err
	}
	rows := views(fw.Entries, func(h domain.HistoryEntry) failedWriteRow {
		v := url.Values{"provider": {string(h.Provider)}, "type": {h.RecordType}, "id": {h.RecordID}}
		return failedWriteRow{HistoryEntry: h, HistoryURL: c.tenantURL(r, "history") + "?" + v.Encode(), Fix: failedWriteFix(h)}
	})
	letters, err := c.dlq.List(r.ctx, r.tenant.ID, domain.DLQFilter{Service: "writer", Limit: failedShown})
	if err != nil {
		return err
	}
	return c.render(r, http.StatusOK, "failedwrites", "Failed writes", map[string]any{"Rows": rows, "Total": fw.Total,
		"Letters": letters, "LettersMore": len(letters) >= failedShown})
}

// failureCounts are the overview's failed writes and dead letters (at most failedShown counted).
type failureCounts struct {
	FailedWrites int
	DeadLetters  int
	More         bool
}

func (c *Console) failureCounts(r *req) (failureCounts, error) {
	fw, err := c.svc.FailedWrites(r.ctx, r.tenant.ID, 1)
	if err != nil {
		return failureCounts{}, err
	}
	letters, err := c.dlq.List(r.ctx, r.tenant.ID, domain.DLQFilter{Limit: failedShown})
	if err != nil {
		return failureCounts{}, err
	}
	return failureCounts{FailedWrites: fw.Total, DeadLetters: len(letters), More: len(letters) >= failedShown}, nil
}
