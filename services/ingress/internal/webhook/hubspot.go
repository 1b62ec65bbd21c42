package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/hubspot"
	"github.com/ownersync/ownersync/services/ingress/internal/hubspotsig"
)

// HubSpot handles POST /webhooks/hubspot. HubSpot retries every non-2xx answer for 24 hours, so
// only what can never succeed gets a 4xx (400 malformed, 401 bad signature, 413, 415); an unknown
// portal gets 404 so that the events arrive once the tenant is configured; events ignored on
// purpose are answered 200; anything not stored is 503.
func (h *Handler) HubSpot(c echo.Context) error {
	start := time.Now()
	r := h.hubspot(c)
	h.finish(c.Request().Context(), provider.HubSpot, start, r)
	if r.outcome == outcomeAcked {
		return c.NoContent(http.StatusOK)
	}
	return c.JSON(r.status, map[string]map[string]string{"error": {"code": r.reason, "message": http.StatusText(r.status)}})
}

func (h *Handler) hubspot(c echo.Context) (r result) {
	ctx := c.Request().Context()
	// The portals' tenants, in order of appearance: a batch normally names one portal, so a short
	// list costs less than a map.
	var tenants portalTenants
	defer func() {
		for _, pt := range tenants.list {
			r.tenants = append(r.tenants, pt.t.ID)
		}
	}()
	req := c.Request()
	if r := checkContentType(c, "application/json"); r != nil {
		return *r
	}
	body, release, rr := h.readBody(c, h.cfg.HubSpotBodyLimit)
	defer release()
	if rr != nil {
		return *rr
	}
	now := h.cfg.Now()
	events, err := hubspot.Decode(body)
	if err != nil {
		return result{status: http.StatusBadRequest, outcome: outcomeRejected, reason: hubspot.Reason(err), err: err}
	}

	// Each portal's tenant; the signature must verify with the client secret of every one of them
	// (a batch normally carries one portal of one app).
	for _, e := range events {
		pid := int64(e.PortalID)
		t := tenants.get(pid)
		if t == nil {
			t, err = h.tenants.ByHubSpotPortal(ctx, pid)
			if err == nil && (t == nil || t.HubSpot == nil) {
				err = tenant.ErrNotFound
			}
			switch {
			case errors.Is(err, tenant.ErrNotFound):
				if h.cfg.Alerts != nil {
					h.cfg.Alerts.UnknownSource(ctx, provider.HubSpot, strconv.FormatInt(pid, 10))
				}
				return result{status: http.StatusNotFound, outcome: outcomeRejected, reason: "unknown_portal",
					err: fmt.Errorf("no tenant for portal %d", pid)}
			case errors.Is(err, tenant.ErrSourceConflict):
				// Two tenants claim the portal: neither gets its events; HubSpot retries for 24 hours.
				return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "source_conflict", err: err}
			case err != nil:
				return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "tenant_lookup", err: err}
			}
			if !tenant.ValidID(t.ID) {
				return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "invalid_tenant",
					err: fmt.Errorf("tenant id %q of portal %d is not a valid subject token", t.ID, pid)}
			}
			tenants.add(pid, t)
		}
		if t.HubSpot.AppID != 0 && e.AppID != 0 && int64(e.AppID) != t.HubSpot.AppID {
			if h.cfg.Alerts != nil {
				h.cfg.Alerts.UnknownSource(ctx, provider.HubSpot, fmt.Sprintf("%d/app %d", pid, e.AppID))
			}
			return result{status: http.StatusNotFound, outcome: outcomeRejected, reason: "unknown_app",
				err: fmt.Errorf("portal %d is configured for app %d, not app %d", pid, t.HubSpot.AppID, e.AppID)}
		}
	}

	sreq := hubspotsig.Request{Method: req.Method, URI: h.signedURI(c), Body: body, Header: req.Header.Get}
	var checked map[string]bool // made when a second tenant comes up
	for i, pt := range tenants.list {
		t := pt.t
		ref := t.HubSpot.ClientSecretRef
		if checked[ref] {
			continue
		}
		secret, err := h.secrets.Resolve(ref)
		if err != nil {
			return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "secret_unavailable",
				err: fmt.Errorf("tenant %s client secret: %w", t.ID, err)}
		}
		if version, err := hubspotsig.Verify(sreq, secret, t.HubSpot.LegacySignatures, now); err != nil {
			return result{status: http.StatusUnauthorized, outcome: outcomeRejected, reason: signatureReason(err),
				err: fmt.Errorf("tenant %s: signature %s: %w", t.ID, version, err)}
		}
		if i == 0 && len(tenants.list) > 1 {
			checked = map[string]bool{}
		}
		if checked != nil {
			checked[ref] = true
		}
	}

	out := make([]event, 0, len(events))
	ignored := 0
	for _, e := range events {
		et := tenants.get(int64(e.PortalID))
		if !et.HubSpot.Enabled {
			// The tenant turned HubSpot off: acknowledged (HubSpot would retry), not published.
			h.ignore(ctx, provider.HubSpot, "provider_disabled", 1)
			ignored++
			continue
		}
		if !e.IsOwnerChange() {
			h.ignore(ctx, provider.HubSpot, ignoredEventKind(e.Type()), 1)
			ignored++
			continue
		}
		if e.IsSensitive || e.OwnerID() == "REDACTED" {
			// A redacted value names no owner; publishing it would assign a bogus one.
			h.ignore(ctx, provider.HubSpot, "redacted_owner", 1)
			ignored++
			continue
		}
		tid := et.ID
		occurred := time.UnixMilli(int64(e.OccurredAt))
		if occurred.After(now.Add(h.cfg.MaxSourceSkew)) {
			// Only then the event key (it allocates) for the log line.
			occurred = h.sourceTime(ctx, provider.HubSpot, tid, e.EventKey(), occurred, now)
		}
		out = append(out, hubspotOwnerEvent(tid, e, occurred, now))
	}
	if err := h.publishAll(ctx, provider.HubSpot, out); err != nil {
		return result{status: http.StatusServiceUnavailable, outcome: outcomeFailed, reason: "publish", err: err}
	}
	h.log.DebugContext(ctx, "webhook batch acknowledged", "events", len(events), "published", len(out), "ignored", ignored)
	return result{status: http.StatusOK, outcome: outcomeAcked}
}

// portalTenant is the tenant of one portal of a batch.
type portalTenant struct {
	portal int64
	t      *tenant.Tenant
}

// portalTenants are the portals' tenants of one batch in order of appearance: a short list, the
// usual case of one portal costing no map, and an index once a batch names more than a few
// portals, so that a batch of thousands stays linear.
type portalTenants struct {
	list  []portalTenant
	index map[int64]*tenant.Tenant
}

const portalIndexFrom = 8

// get returns the portal's tenant, nil when it has not been looked up.
func (ts *portalTenants) get(portal int64) *tenant.Tenant {
	if ts.index != nil {
		return ts.index[portal]
	}
	for _, pt := range ts.list {
		if pt.portal == portal {
			return pt.t
		}
	}
	return nil
}

func (ts *portalTenants) add(portal int64, t *tenant.Tenant) {
	ts.list = append(ts.list, portalTenant{portal, t})
	if ts.index == nil && len(ts.list) > portalIndexFrom {
		ts.index = make(map[int64]*tenant.Tenant, 2*len(ts.list))
		for _, pt := range ts.list {
			ts.index[pt.portal] = pt.t
		}
	} else if ts.index != nil {
		ts.index[portal] = t
	}
}

// signedURI is the URI HubSpot signed: the configured public base URL, the route path and the raw
// query string — never the Host header or the path a proxy passed on.
func (h *Handler) signedURI(c echo.Context) string {
	u := h.base + c.Path()
	if q := c.Request().URL.RawQuery; q != "" {
		u += "?" + q
	}
	return u
}

// knownSubscriptionTypes are HubSpot's webhook subscription types
// (docs/crm-protocols.md#salesforce) as metric labels; any other is "other", so that a label value
// is never chosen by the sender (issue 13 item 12).
var knownSubscriptionTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, object := range []string{"contact", "company", "deal", "ticket", "product", "line_item", "conversation", "object"} {
		for _, change := range []string{"creation", "deletion", "propertyChange", "associationChange", "merge", "restore", "privacyDeletion"} {
			m[object+"."+change] = true
		}
	}
	return m
}()

func ignoredEventKind(subscriptionType string) string {
	if knownSubscriptionTypes[subscriptionType] {
		return subscriptionType
	}
	return "other"
}

func signatureReason(err error) string {
	switch {
	case errors.Is(err, hubspotsig.ErrMissing):
		return "signature_missing"
	case errors.Is(err, hubspotsig.ErrExpired), errors.Is(err, hubspotsig.ErrFuture), errors.Is(err, hubspotsig.ErrBadTimestamp):
		return "signature_timestamp"
	}
	return "bad_signature"
}

// hubspotOwnerEvent turns an owner change into a CrmOwnerChanged; occurred is its (clamped)
// source time.
func hubspotOwnerEvent(tenantID string, e hubspot.Event, occurred, received time.Time) event {
	id := e.EventKey()
	ev := &ownersyncv1.CrmOwnerChanged{
		Meta: &ownersyncv1.EventMeta{
			EventId:       id,
			TenantId:      tenantID,
			OccurredAt:    timestamppb.New(occurred),
			ReceivedAt:    timestamppb.New(received),
			Source:        provider.HubSpot.String(),
			SourceEventId: e.EventID.String(),
		},
		Provider:     ownersyncv1.Provider_PROVIDER_HUBSPOT,
		RecordType:   ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
		RecordId:     e.ObjectID.String(),
		OwnerId:      e.OwnerID(),
		ChangeSource: e.ChangeSource,
		ActorId:      e.SourceID,
	}
	if ev.OwnerId != "" {
		// HubSpot owners are people unless the owners list says otherwise (mapper knows queues).
		ev.OwnerKind = ownersyncv1.CrmUserKind_CRM_USER_KIND_USER
	}
	return event{subject: streams.CrmOwnerChanged(tenantID, provider.HubSpot), id: id, kind: kindOwnerChanged, msg: ev}
}
