package mapper_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	libprovider "github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// ownerChange publishes a CRM owner change naming owner.
func (s *stack) ownerChange(provider string, id, owner string) {
	s.t.Helper()
	p := ownersyncv1.Provider_PROVIDER_HUBSPOT
	if provider == "salesforce" {
		p = ownersyncv1.Provider_PROVIDER_SALESFORCE
	}
	ev := &ownersyncv1.CrmOwnerChanged{
		Meta:     &ownersyncv1.EventMeta{EventId: id, TenantId: "acme", OccurredAt: timestamppb.Now(), Source: "test"},
		Provider: p, RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "rec-" + id,
		OwnerId: owner, OwnerKind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER,
	}
	if _, err := s.pub.Publish(context.Background(), streams.CrmOwnerChanged("acme", libprovider.Provider(provider)), id, ev); err != nil {
		s.t.Fatal(err)
	}
}

// ownerActivityDone waits until mapper-owner-activity has acknowledged every owner change.
func (s *stack) ownerActivityDone() {
	s.t.Helper()
	ctx := context.Background()
	harness.Eventually(s.t, 10*time.Second, "mapper-owner-activity acked everything", func() bool {
		c, err := s.bus.JS.Consumer(ctx, streams.CRM, "mapper-owner-activity")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

func (s *stack) provisions() []*ownersyncv1.PlatformUserProvision {
	s.t.Helper()
	var out []*ownersyncv1.PlatformUserProvision
	for _, m := range s.streamMessages(streams.Platform, streams.PlatformUserProvision("acme"), func() proto.Message { return &ownersyncv1.PlatformUserProvision{} }) {
		out = append(out, m.(*ownersyncv1.PlatformUserProvision))
	}
	return out
}

func (s *stack) hubspotMapping(platformUserID string) (mappingItem, bool) {
	s.t.Helper()
	var page struct {
		Items []mappingItem `json:"items"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/mappings?provider=hubspot", &page)
	for _, m := range page.Items {
		if m.PlatformUserID == platformUserID {
			return m, true
		}
	}
	return mappingItem{}, false
}

func (s *stack) platformUserWithTeam(id, email, team string, version int) {
	s.t.Helper()
	ev := &ownersyncv1.PlatformUserChanged{
		Meta: &ownersyncv1.EventMeta{EventId: "pu:" + id + ":" + team, TenantId: "acme",
			OccurredAt: timestamppb.New(time.Now().Add(time.Duration(version) * time.Millisecond)), Source: "test"},
		User: &ownersyncv1.PlatformUser{Id: id, Email: email, FirstName: "Dana", LastName: "New", TeamId: team,
			Status: ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_ACTIVE, Kind: ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER},
	}
	if _, err := s.pub.Publish(context.Background(), streams.PlatformUserChanged("acme"), ev.Meta.EventId, ev); err != nil {
		s.t.Fatal(err)
	}
}

// TestAutoProvisioning: an owner change naming an active HubSpot owner whom nobody maps publishes
// one provisioning request (rule 7), lists the owner as pending_team, and the platform user it
// yields is mapped auto_provisioned, pending_team until it has a team, then synced. Repeats and
// providers with the setting off publish nothing.
func TestAutoProvisioning(t *testing.T) {
	s := startStack(t, "auto_provisioning: true")
	dana, err := s.hs.CreateOwner(hssim.Owner{Email: "Dana@acme.test", FirstName: "Dana", LastName: "New", Type: hssim.OwnerPerson, UserID: 103})
	if err != nil {
		t.Fatal(err)
	}

	// Mapper has never seen Dana: it reads her from HubSpot, then asks for a platform user.
	s.ownerChange("hubspot", "oc-1", dana.ID)
	harness.Eventually(t, 10*time.Second, "provisioning request published", func() bool { return len(s.provisions()) > 0 })
	s.ownerActivityDone()
	got := s.provisions()
	if len(got) != 1 {
		t.Fatalf("%d provisioning requests, want 1", len(got))
	}
	p := got[0]
	if p.GetMeta().GetEventId() != "prov:hubspot:"+dana.ID || p.GetMeta().GetSourceEventId() != "oc-1" ||
		p.GetProvider() != ownersyncv1.Provider_PROVIDER_HUBSPOT || p.GetCrmUser().GetId() != dana.ID ||
		p.GetCrmUser().GetEmail() != "dana@acme.test" || p.GetCrmUser().GetFirstName() != "Dana" || !p.GetCrmUser().GetActive() {
		t.Errorf("request = %v", p)
	}

	// The owner is listed as pending_team.
	var unmapped struct {
		Items []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"items"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/unmapped/crm-users?provider=hubspot", &unmapped)
	found := false
	for _, u := range unmapped.Items {
		if u.ID == dana.ID {
			found = true
			if u.Status != "pending_team" {
				t.Errorf("unmapped CRM user %s status %q, want pending_team", u.ID, u.Status)
			}
		}
	}
	if !found {
		t.Errorf("owner %s not listed among unmapped CRM users: %v", dana.ID, unmapped)
	}

	// Redelivery (the same change past the duplicate window) and later changes to the same owner
	// publish nothing new; a provider with the setting off publishes nothing.
	s.ownerChange("hubspot", "oc-1-again", dana.ID)
	s.ownerChange("hubspot", "oc-2", dana.ID)
	s.ownerChange("salesforce", "oc-sf", "0055g00000ZzZzZAAV")
	s.ownerActivityDone()
	if n := len(s.provisions()); n != 1 {
		t.Fatalf("%d provisioning requests after repeats, want 1", n)
	}

	// The platform reports the provisioned user without a team: mapped auto_provisioned, pending_team.
	s.platformUserWithTeam("pu_dana", "dana@acme.test", "", 1)
	harness.Eventually(t, 10*time.Second, "provisioned user mapped pending_team", func() bool {
		m, ok := s.hubspotMapping("pu_dana")
		return ok && m.CRMUserID == dana.ID && m.MadeBy == "auto_provisioned" && m.Status == "pending_team"
	})
	// Then with a team: synced, still auto_provisioned.
	s.platformUserWithTeam("pu_dana", "dana@acme.test", "team-1", 2)
	harness.Eventually(t, 10*time.Second, "provisioned user synced once it has a team", func() bool {
		m, ok := s.hubspotMapping("pu_dana")
		return ok && m.MadeBy == "auto_provisioned" && m.Status == "synced"
	})
	// Mapped now: a further owner change asks for nothing.
	s.ownerChange("hubspot", "oc-3", dana.ID)
	s.ownerActivityDone()
	if n := len(s.provisions()); n != 1 {
		t.Fatalf("%d provisioning requests after mapping, want 1", n)
	}
}

// TestAutoProvisioningOff: with the setting off (the default) owner changes publish nothing.
func TestAutoProvisioningOff(t *testing.T) {
	s := startStack(t)
	dana, err := s.hs.CreateOwner(hssim.Owner{Email: "dana@acme.test", FirstName: "Dana", LastName: "New", Type: hssim.OwnerPerson, UserID: 103})
	if err != nil {
		t.Fatal(err)
	}
	s.ownerChange("hubspot", "oc-1", dana.ID)
	s.ownerActivityDone()
	if n := len(s.provisions()); n != 0 {
		t.Fatalf("%d provisioning requests with auto-provisioning off", n)
	}
}
