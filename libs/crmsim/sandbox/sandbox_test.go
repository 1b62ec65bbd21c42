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
