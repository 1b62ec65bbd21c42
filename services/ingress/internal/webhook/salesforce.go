package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/soap"
)

// SharedKeyParam is the query parameter that carries a tenant's optional shared key.
const SharedKeyParam = "key"

// User fields of a CrmUserChanged as listed in its fields: the proto field names.
const (
	FieldEmail     = "email"
	FieldFirstName = "first_name"
	FieldLastName  = "last_name"
	FieldActive    = "active"
	FieldUserType  = "user_type"
	FieldUsername  = "username"
)

// Salesforce handles POST /webhooks/salesforce. Every answer is a SOAP envelope: the Ack after all
// events were stored, otherwise a fault whose HTTP status says why (400 malformed, 403 unknown org
// or wrong key, 413 too large, 415 wrong content type, 503 not stored). Salesforce retries every
// fault for 24 hours.
func (h *Handler) Salesforce(c echo.Context) error {
	start := time.Now()
	ctx := c.Request().Context()
	r := h.salesforce(c)
	h.finish(ctx, provider.Salesforce, start, r)
	if r.outcome == outcomeAcked {
		return c.Blob(http.StatusOK, soap.ContentType, ackBody)
	}
	code, msg := soap.FaultClient, http.StatusText(r.status)
	switch r.status {
	case http.StatusServiceUnavailable:
		code, msg = soap.FaultServer, "events could not be stored; retry later"
	case http.StatusForbidden:
		msg = "organization not accepted"
	case http.StatusBadRequest:
		msg = "malformed outbound message: " + r.reason
	}
	return c.Blob(r.status, soap.ContentType, soap.Fault(code, msg))
}

func (h *Handler) salesforce(c echo.Context) (r result) {
	ctx := c.Request().Context()
	var matched string
	defer func() {
		if matched != "" {
			r.tenants = []string{matched}
		}
	}()
	if r := checkContentType(c, "text/xml", "application/xml", "application/soap+xml"); r != nil {
		return *r
	}
	body, release, rr := h.readBody(c, h.cfg.SalesforceBodyLimit)
	defer release()
	if rr != nil {
		return *rr
	}
	received := h.cfg.Now()
	msg, err := soap.Parse(body)
	if err != nil {
		return result{status: http.StatusBadRequest, outcome: outcomeRejected, reason: soap.Reason(err), err: err}
	}
	t, err := h.tenants.BySalesforceOrg(ctx, msg.OrganizationID)
	if err == nil && (t == nil || t.Salesforce == nil) {
		err = tenant.ErrNotFound
	}
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		if h.cfg.Alerts != nil {
			h.cfg.Alerts.UnknownSource(ctx, provider.Salesforce, msg.OrganizationID)
		}
		return result{status: http.StatusForbidden, outcome: outcomeRejected, reason: "unknown_org",
			err: fmt.Errorf("no tenant for organization %s", msg.OrganizationID)}
	case errors.Is(err, tenant.ErrSourceConflict):
		// Two tenants claim the org: neither gets its messages; Salesforce retries for 24 hours.
		return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "source_conflict", err: err}
	case err != nil:
		return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "tenant_lookup", err: err}
	}
	if !tenant.ValidID(t.ID) {
		return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "invalid_tenant",
			err: fmt.Errorf("tenant id %q of organization %s is not a valid subject token", t.ID, msg.OrganizationID)}
	}
	matched = t.ID
	if r := h.checkSharedKey(c, t, received); r != nil {
		return *r
	}
	if !t.Salesforce.Enabled {
		// The tenant turned Salesforce off: acknowledge (the org would retry for 24 hours) and
		// publish nothing.
		h.ignore(ctx, provider.Salesforce, "provider_disabled", len(msg.Notifications)+len(msg.Ignored))
		return result{status: http.StatusOK, outcome: outcomeAcked}
	}
	events, ignored, err := salesforceEvents(t.ID, msg, received, func(id string, at time.Time) time.Time {
		return h.sourceTime(ctx, provider.Salesforce, t.ID, id, at, received)
	})
	if err != nil {
		return result{status: http.StatusBadRequest, outcome: outcomeRejected, reason: "malformed", err: err}
	}
	for kind, n := range ignored {
		h.ignore(ctx, provider.Salesforce, kind, n)
	}
	if err := h.publishAll(ctx, provider.Salesforce, events); err != nil {
		return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "publish", err: err}
	}
	h.log.DebugContext(ctx, "outbound message acknowledged", "tenant", t.ID, "org", msg.OrganizationID,
		"events", len(events), "notifications", len(msg.Notifications)+len(msg.Ignored))
	return result{status: http.StatusOK, outcome: outcomeAcked}
}

// ackBody is the acknowledgement every accepted message gets; it is only ever read.
var ackBody = soap.Ack()

// queryValue is url.ParseQuery(rawQuery).Get(name) without building the map of every parameter:
// the first value of name, "" when it has none. Pairs ParseQuery refuses (a semicolon, a bad
// escape) are skipped alike.
func queryValue(rawQuery, name string) string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil || k != name {
			continue
		}
		if v, err = url.QueryUnescape(v); err != nil {
			continue
		}
		return v
	}
	return ""
}

// checkSharedKey verifies the shared key in the Outbound Message URL (query parameter "key",
// docs/architecture.md#ingress) against the digests the connection stores (one model, issue 13
// item 3): the current key's, or the previous key's until the rotation overlap ends. Both are
// compared, in constant time, whatever matched first. A connection with no key accepts messages
// only when keys are not required. A key still kept as a secret reference (a connection saved
// before the one model, until mapper migrates it to its digest at start) is not verified here:
// 503, so that Salesforce retries once the digest is stored.
func (h *Handler) checkSharedKey(c echo.Context, t *tenant.Tenant, now time.Time) *result {
	sf := t.Salesforce
	if tenant.IsLegacySharedKeyRef(sf.SharedKeyRef) {
		return &result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "shared_key_not_migrated",
			err: fmt.Errorf("tenant %s: the Salesforce shared key is not a digest yet (mapper migrates it at start)", t.ID)}
	}
	refs := make([]string, 0, 2)
	if sf.SharedKeyRef != "" {
		refs = append(refs, sf.SharedKeyRef)
	}
	if sf.PreviousKeyValid(now) && tenant.IsSharedKeyDigest(sf.PreviousSharedKeyRef) {
		refs = append(refs, sf.PreviousSharedKeyRef)
	}
	if len(refs) == 0 {
		if h.cfg.RequireSharedKey {
			return &result{status: http.StatusForbidden, outcome: outcomeRejected, reason: "no_shared_key",
				err: fmt.Errorf("tenant %s: the Salesforce connection has no shared key; refused", t.ID)}
		}
		return nil
	}
	got := queryValue(c.Request().URL.RawQuery, SharedKeyParam)
	ok := false
	for _, ref := range refs {
		ok = tenant.MatchesSharedKeyDigest(ref, got) || ok
	}
	if !ok {
		return &result{status: http.StatusForbidden, outcome: outcomeRejected, reason: "bad_shared_key",
			err: fmt.Errorf("tenant %s: wrong or missing shared key", t.ID)}
	}
	return nil
}

// salesforceEvents turns a message into events: Contact and Lead → CrmOwnerChanged, User →
// CrmUserChanged. ignored counts notifications acknowledged without an event, by kind. clamp bounds
// each source time (see Handler.sourceTime).
func salesforceEvents(tenantID string, m *soap.Message, received time.Time, clamp func(eventID string, at time.Time) time.Time) (events []event, ignored map[string]int, err error) {
	// Most messages ignore nothing: the map is made on first use (reading a nil map is fine).
	ignore := func(kind string) {
		if ignored == nil {
			ignored = map[string]int{}
		}
		ignored[kind]++
	}
	for _, n := range m.Ignored {
		ignore(ignoredObjectKind(n.Object.Type))
	}
	events = make([]event, 0, len(m.Notifications))
	for _, n := range m.Notifications {
		o := n.Object
		id := "sf:" + m.OrganizationID + ":" + n.ID
		meta := &ownersyncv1.EventMeta{
			EventId:       id,
			TenantId:      tenantID,
			OccurredAt:    timestamppb.New(clamp(id, occurredAt(o, received))),
			ReceivedAt:    timestamppb.New(received),
			Source:        provider.Salesforce.String(),
			SourceEventId: n.ID,
		}
		switch o.Type {
		case soap.Contact, soap.Lead:
			if !o.Has("OwnerId") {
				// The outbound message definition does not include OwnerId: nothing to sync.
				ignore("no_owner_field")
				continue
			}
			ev := &ownersyncv1.CrmOwnerChanged{
				Meta:         meta,
				Provider:     ownersyncv1.Provider_PROVIDER_SALESFORCE,
				RecordType:   ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
				RecordId:     o.ID,
				ChangeSource: provider.Salesforce.String(),
			}
			if o.Type == soap.Lead {
				ev.RecordType = ownersyncv1.RecordType_RECORD_TYPE_LEAD
			}
			ev.RecordEmail, _ = o.Get("Email")
			if owner, ok := o.Get("OwnerId"); ok && strings.TrimSpace(owner) != "" {
				id, err := sfid.To18(strings.TrimSpace(owner))
				if err != nil {
					return nil, nil, fmt.Errorf("notification %s: OwnerId is not a Salesforce id", n.ID)
				}
				ev.OwnerId = id
				switch sfid.Prefix(id) {
				case sfid.PrefixUser:
					ev.OwnerKind = ownersyncv1.CrmUserKind_CRM_USER_KIND_USER
				case sfid.PrefixQueue:
					ev.OwnerKind = ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE
				}
			}
			if actor, ok := o.Get("LastModifiedById"); ok {
				if id, err := sfid.To18(strings.TrimSpace(actor)); err == nil {
					ev.ActorId = id
				}
			}
			events = append(events, event{subject: streams.CrmOwnerChanged(tenantID, provider.Salesforce), id: meta.EventId, kind: kindOwnerChanged, msg: ev})
		case soap.User:
			u := &ownersyncv1.CrmUser{Id: o.ID, Kind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER}
			var fields []string
			for _, f := range []struct {
				sf, name string
				dst      *string
			}{
				{"Email", FieldEmail, &u.Email},
				{"FirstName", FieldFirstName, &u.FirstName},
				{"LastName", FieldLastName, &u.LastName},
				{"UserType", FieldUserType, &u.UserType},
				{"Username", FieldUsername, &u.Username},
			} {
				if o.Has(f.sf) {
					// A nil field is carried as blank.
					*f.dst, _ = o.Get(f.sf)
					fields = append(fields, f.name)
				}
			}
			active, ok, err := o.Bool("IsActive")
			if err != nil {
				return nil, nil, fmt.Errorf("notification %s: %w", n.ID, err)
			}
			if ok {
				u.Active = active
				fields = append(fields, FieldActive)
			}
			ev := &ownersyncv1.CrmUserChanged{Meta: meta, Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE, User: u, Fields: fields}
			events = append(events, event{subject: streams.CrmUserChanged(tenantID, provider.Salesforce), id: meta.EventId, kind: kindUserChanged, msg: ev})
		}
	}
	return events, ignored, nil
}

// ignoredObjectKinds are the metric labels of standard objects an outbound message may be defined
// on; any other xsi:type (custom objects, or whatever a forged message names) is "object_other",
// so that a label value is never chosen by the sender (issue 13 item 12).
var ignoredObjectKinds = map[string]string{
	"Account": "object_account", "Opportunity": "object_opportunity", "Case": "object_case",
	"Task": "object_task", "Event": "object_event", "Campaign": "object_campaign", "Order": "object_order",
}

func ignoredObjectKind(objectType string) string {
	if k, ok := ignoredObjectKinds[objectType]; ok {
		return k
	}
	return "object_other"
}

// occurredAt is the record's LastModifiedDate or SystemModstamp when the message carries one,
// otherwise the time the message was received.
func occurredAt(o soap.SObject, received time.Time) time.Time {
	for _, f := range []string{"LastModifiedDate", "SystemModstamp"} {
		if v, ok := o.Get(f); ok {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v)); err == nil {
				return t
			}
		}
	}
	return received
}
