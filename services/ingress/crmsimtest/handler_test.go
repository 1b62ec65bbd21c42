package crmsimtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/webhook"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// memPublisher stores events like JetStream with a duplicate window: a known id stores nothing.
type memPublisher struct {
	mu   sync.Mutex
	seen map[string]bool
	msgs []stored
}

type stored struct {
	Subject, ID string
	Msg         proto.Message
}

func (p *memPublisher) Publish(_ context.Context, subject, msgID string, m proto.Message) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[msgID] {
		return true, nil
	}
	p.seen[msgID] = true
	p.msgs = append(p.msgs, stored{subject, msgID, proto.Clone(m)})
	return false, nil
}

func (p *memPublisher) stored() []stored {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

// oneTenant is the tenant directory: acme, connected to both sandboxes.
type oneTenant struct{ t *tenant.Tenant }

func (o oneTenant) BySalesforceOrg(_ context.Context, org string) (*tenant.Tenant, error) {
	if o.t.Salesforce != nil && o.t.Salesforce.OrgID == org {
		return o.t, nil
	}
	return nil, fmt.Errorf("org %s: %w", org, tenant.ErrNotFound)
}

func (o oneTenant) ByHubSpotPortal(_ context.Context, portal int64) (*tenant.Tenant, error) {
	if o.t.HubSpot != nil && o.t.HubSpot.PortalID == portal {
		return o.t, nil
	}
	return nil, fmt.Errorf("portal %d: %w", portal, tenant.ErrNotFound)
}

type mapSecrets map[string]string

func (m mapSecrets) Resolve(ref string) (string, error) {
	if v, ok := m[ref]; ok {
		return v, nil
	}
	return "", errors.New("no such secret")
}

// TestWebhookHandlerAcceptsSandboxTraffic points both sandboxes at ingress's real webhook handler
// (echo, fake publisher): every Outbound Message and webhook request the sandboxes send for writes
// through the real clients and the UI is acknowledged on the first attempt, and the published
// events name the right records, owners, owner kinds and the deactivated user.
func TestWebhookHandlerAcceptsSandboxTraffic(t *testing.T) {
	// The handler needs its public URL before it exists; the server forwards to it once built.
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	const sfKey = "om-shared-key"
	org, sfc := newOrg(t, srv.URL+webhook.SalesforcePath, sfKey)
	acct, hsc := newAccount(t, srv.URL+webhook.HubSpotPath+"?source=crmsim%3Atest")
	acme := &tenant.Tenant{
		ID:         "acme",
		Salesforce: &tenant.SFConfig{OrgID: org.OrgID(), SharedKeyRef: tenant.SharedKeyDigest(sfKey), Settings: tenant.Settings{Enabled: true}},
		HubSpot:    &tenant.HSConfig{PortalID: acct.PortalID(), AppID: acct.AppID(), ClientSecretRef: "env:HS_SECRET", Settings: tenant.Settings{Enabled: true}},
	}
	pub := &memPublisher{seen: map[string]bool{}}
	h, err := webhook.New(webhook.Config{PublicURL: srv.URL, PublishTimeout: 2 * time.Second}, pub, oneTenant{acme},
		mapSecrets{"env:HS_SECRET": hsAppSecret})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	h.Register(e)
	handler = e

	ctx := context.Background()
	if err := sfc.UpdateOwner(ctx, salesforce.Contact, sfContact, sfBob); err != nil {
		t.Fatal(err)
	}
	if err := org.SetOwner(sfLead, sfQueue, sfAda); err != nil {
		t.Fatal(err)
	}
	if _, err := org.UpdateUser(sfLinus, func(u *sfsim.User) { u.IsActive = false }); err != nil {
		t.Fatal(err)
	}
	if res, err := hsc.BatchUpdateOwners(ctx, []hubspot.OwnerUpdate{
		{ContactID: "101", OwnerID: "7002", TraceID: "t-101"},
		{ContactID: "104", OwnerID: "", TraceID: "t-104"},
	}); err != nil || len(res.Failed()) != 0 {
		t.Fatalf("BatchUpdateOwners: %v", err)
	}
	if err := acct.SetContactOwner("102", "7001", 9001); err != nil {
		t.Fatal(err)
	}

	const wantEvents = 3 + 3
	harness.Eventually(t, 10*time.Second, "every event published and acknowledged", func() bool {
		om, wh := org.OutboundStats(), acct.WebhookStats()
		return len(pub.stored()) >= wantEvents && om.Pending == 0 && om.Queued == 0 && wh.Pending == 0 && wh.Active == 0
	})
	for _, d := range org.Deliveries() {
		if !d.Acked || d.Attempt != 1 {
			t.Errorf("Outbound Message delivery %+v not acknowledged at once: %s", d, d.Error)
		}
	}
	for _, d := range acct.WebhookDeliveries() {
		if !d.Delivered || d.AttemptNumber != 0 || d.Status != http.StatusOK {
			t.Errorf("webhook delivery %+v not accepted at once", d)
		}
	}

	type event struct {
		Subject, Record, Owner string
		Kind                   ownersyncv1.CrmUserKind
		Active                 bool
	}
	var got []event
	for _, s := range pub.stored() {
		switch m := s.Msg.(type) {
		case *ownersyncv1.CrmOwnerChanged:
			if m.GetMeta().GetEventId() != s.ID || m.GetMeta().GetTenantId() != "acme" {
				t.Errorf("event %s: meta %v", s.ID, m.GetMeta())
			}
			got = append(got, event{Subject: s.Subject, Record: m.GetRecordId(), Owner: m.GetOwnerId(), Kind: m.GetOwnerKind()})
		case *ownersyncv1.CrmUserChanged:
			got = append(got, event{Subject: s.Subject, Record: m.GetUser().GetId(), Kind: m.GetUser().GetKind(), Active: m.GetUser().GetActive()})
		default:
			t.Errorf("published %T", s.Msg)
		}
		switch {
		case strings.HasPrefix(s.ID, "sf:"+org.OrgID()+":04l"):
		case strings.HasPrefix(s.ID, "hs:"+strconv.FormatInt(acct.PortalID(), 10)+":"):
		default:
			t.Errorf("event id %q", s.ID)
		}
	}
	slices.SortFunc(got, func(a, b event) int { return strings.Compare(a.Subject+a.Record, b.Subject+b.Record) })
	sfOwner, sfUser, hsOwner := streams.CrmOwnerChanged("acme", "salesforce"), streams.CrmUserChanged("acme", "salesforce"), streams.CrmOwnerChanged("acme", "hubspot")
	user := ownersyncv1.CrmUserKind_CRM_USER_KIND_USER
	want := []event{
		{Subject: hsOwner, Record: "101", Owner: "7002", Kind: user},
		{Subject: hsOwner, Record: "102", Owner: "7001", Kind: user},
		{Subject: hsOwner, Record: "104", Owner: "", Kind: ownersyncv1.CrmUserKind_CRM_USER_KIND_UNSPECIFIED},
		{Subject: sfOwner, Record: sfContact, Owner: sfBob, Kind: user},
		{Subject: sfOwner, Record: sfLead, Owner: sfQueue, Kind: ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE},
		{Subject: sfUser, Record: sfLinus, Kind: user, Active: false},
	}
	slices.SortFunc(want, func(a, b event) int { return strings.Compare(a.Subject+a.Record, b.Subject+b.Record) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("published events (-want +got):\n%s", diff)
	}
}
