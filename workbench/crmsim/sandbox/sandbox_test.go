package sandbox

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseDurationsAndInline(t *testing.T) {
	f, err := Parse([]byte(`
salesforce:
  orgId: 00D5g000004XyZaEAK
  outbound: {url: "http://x/om", baseDelay: 250ms, window: 1h}
  users: [{username: a@b.c, isActive: false}]
hubspot:
  portalId: 42
  webhooks: {targetUrl: "http://x/hs", baseDelay: 2s, maxRetries: 3}
  owners: [{id: "1", email: a@b.c, archived: true}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{f.Salesforce.OrgID, f.Salesforce.Outbound.BaseDelay, f.Salesforce.Outbound.Window, *f.Salesforce.Users[0].IsActive,
		f.HubSpot.PortalID, f.HubSpot.Webhooks.BaseDelay, f.HubSpot.Webhooks.MaxRetries, f.HubSpot.Owners[0].Archived}
	want := []any{"00D5g000004XyZaEAK", 250 * time.Millisecond, time.Hour, false, int64(42), 2 * time.Second, 3, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	sb, err := Start(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if sb.Salesforce.OrgID() != "00D5g000004XyZaEAK" || sb.HubSpot.PortalID() != 42 || len(sb.HubSpot.Owners()) != 1 {
		t.Errorf("started %+v", sb)
	}
}

func TestParseRejectsBadYAML(t *testing.T) {
	if _, err := Parse([]byte("salesforce: [")); err == nil {
		t.Fatal("want error")
	}
}

func TestDemoSeedLoads(t *testing.T) {
	sb, err := Start(Demo(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	inactive, archived := 0, 0
	for _, u := range sb.Salesforce.Users() {
		if !u.IsActive {
			inactive++
		}
	}
	for _, o := range sb.HubSpot.Owners() {
		if o.Archived {
			archived++
		}
	}
	if n := len(sb.Salesforce.Users()); n < 24 || inactive != 2 {
		t.Errorf("salesforce users %d, inactive %d", n, inactive)
	}
	if n := len(sb.HubSpot.Owners()); n < 24 || archived != 2 {
		t.Errorf("hubspot owners %d, archived %d", n, archived)
	}
	if len(sb.Salesforce.Queues()) != 1 || len(sb.HubSpot.Contacts()) != 16 {
		t.Errorf("queues %d, hubspot contacts %d", len(sb.Salesforce.Queues()), len(sb.HubSpot.Contacts()))
	}
}
