package tenantstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/workbench/harness"
)

const seed = `
tenants:
  - id: acme
    name: Acme Corp
    report_recipients: [admin@acme.example]
    reports_enabled: true
    salesforce:
      enabled: true
      org_id: 00D5g000004XyZa
      instance_url: https://acme.my.salesforce.com
      auth: {flow: client_credentials, client_id: abc, client_secret_ref: env:ACME_SF_SECRET}
    hubspot:
      enabled: true
      portal_id: 4412345
      app_id: 3100456
      client_secret_ref: env:ACME_HS_CLIENT_SECRET
      auth: {kind: private_app, token_ref: env:ACME_HS_TOKEN}
`

func TestSeedStoreAndCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := tenantstore.LoadSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	conn := harness.MongoDB(t, "t")
	st := tenantstore.New(conn.DB, nil)
	for i := range ts {
		if err := st.Put(ctx, &ts[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.Salesforce.OrgID != "00D5g000004XyZaEAK" || got.Salesforce.Direction != tenant.Bidirectional || got.HubSpot.PortalID != 4412345 {
		t.Errorf("stored tenant = %+v", got)
	}
	c := tenantstore.NewCache(st, tenantstore.CacheOptions{Interval: 10 * time.Second, MinRefresh: time.Second})
	if tt, err := c.BySalesforceOrg(ctx, "00D5g000004XyZaEAK"); err != nil || tt.ID != "acme" {
		t.Errorf("BySalesforceOrg = %v, %v", tt, err)
	}
	if tt, err := c.ByHubSpotPortal(ctx, 4412345); err != nil || tt.ID != "acme" {
		t.Errorf("ByHubSpotPortal = %v, %v", tt, err)
	}
	if _, err := c.ByHubSpotPortal(ctx, 1); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("unknown portal: %v", err)
	}
	bad := tenant.Tenant{ID: "Bad Id", HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true}, ClientSecretRef: "literal-secret"}}
	var ve *tenant.ValidationError
	if err := st.Put(ctx, &bad); !errors.As(err, &ve) || len(ve.Problems) < 3 {
		t.Errorf("Put(bad) = %v, want several problems", err)
	}
}

// TestFollowRefreshesOnAnnouncement: a tenant written through a store that announces changes is
// visible in another service's cache at once, not at the next periodic refresh.
func TestFollowRefreshesOnAnnouncement(t *testing.T) {
	infra := harness.Start(t)
	ctx := context.Background()
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: infra.MongoURI, Database: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	nc, err := nats.Connect(infra.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	writer := tenantstore.New(conn.DB, nil)
	writer.OnChange = tenantstore.Announce(nc)
	cache := tenantstore.NewCache(tenantstore.New(conn.DB, nil), tenantstore.CacheOptions{Interval: time.Hour, MinRefresh: time.Hour})
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	stop, err := cache.Follow(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := writer.Put(ctx, &tenant.Tenant{ID: "beta", Name: "Beta"}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "cache sees the new tenant", func() bool {
		return len(cache.All()) == 1
	})
}

// TestCacheNeverHoldsTwoTenantsForOneSource covers issue 13 item 2 (ingress part): when two
// tenants claim one Salesforce org or HubSpot portal, the cache answers for neither — the same
// whichever was written last — instead of handing the source to the last writer.
func TestCacheNeverHoldsTwoTenantsForOneSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := harness.MongoDB(t, "t")
	st := tenantstore.New(conn.DB, nil)
	mk := func(id, org string, portal int64) *tenant.Tenant {
		return &tenant.Tenant{ID: id,
			Salesforce: &tenant.SFConfig{OrgID: org, Auth: tenant.SFAuth{Flow: "client_credentials"}},
			HubSpot:    &tenant.HSConfig{PortalID: portal, Auth: tenant.HSAuth{Kind: "private_app"}}}
	}
	for _, order := range [][]string{{"victim", "attacker"}, {"attacker", "victim"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			if _, err := conn.DB.Collection(tenantstore.Collection).DeleteMany(ctx, map[string]any{}); err != nil {
				t.Fatal(err)
			}
			for _, id := range order {
				if err := st.Put(ctx, mk(id, "00D5g000004XyZa", 4412345)); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Put(ctx, mk("bystander", "00D5g000004XyZb", 99)); err != nil {
				t.Fatal(err)
			}
			c := tenantstore.NewCache(st, tenantstore.CacheOptions{Interval: 10 * time.Second, MinRefresh: time.Second})
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if tt, err := c.BySalesforceOrg(ctx, "00D5g000004XyZaEAK"); !errors.Is(err, tenant.ErrSourceConflict) {
				t.Errorf("BySalesforceOrg = %v, %v; want ErrSourceConflict", tt, err)
			}
			if tt, err := c.ByHubSpotPortal(ctx, 4412345); !errors.Is(err, tenant.ErrSourceConflict) {
				t.Errorf("ByHubSpotPortal = %v, %v; want ErrSourceConflict", tt, err)
			}
			if tt, err := c.ByHubSpotPortal(ctx, 99); err != nil || tt.ID != "bystander" {
				t.Errorf("the bystander's portal: %v, %v", tt, err)
			}
			if tt, err := c.Get(ctx, "victim"); err != nil || tt.ID != "victim" {
				t.Errorf("Get(victim) = %v, %v", tt, err)
			}
		})
	}
}

// TestSetHubSpotTimeZone: the zone read from HubSpot is recorded in a connection that names none,
// never over one the admin set, and not in a tenant without HubSpot (issue 14 item 9).
func TestSetHubSpotTimeZone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := harness.MongoDB(t, "tz")
	st := tenantstore.New(conn.DB, nil)
	changed := 0
	st.OnChange = func(context.Context, string) { changed++ }
	put := func(tn *tenant.Tenant) {
		t.Helper()
		if err := st.Put(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	put(&tenant.Tenant{ID: "nozone", HubSpot: &tenant.HSConfig{PortalID: 1001, Auth: tenant.HSAuth{Kind: "private_app"}}})
	put(&tenant.Tenant{ID: "zoned", HubSpot: &tenant.HSConfig{PortalID: 1002, Auth: tenant.HSAuth{Kind: "private_app"}, TimeZone: "Europe/Berlin"}})
	put(&tenant.Tenant{ID: "sfonly", Salesforce: &tenant.SFConfig{OrgID: "00D5g000004XyZa", Auth: tenant.SFAuth{Flow: "client_credentials"}}})
	changed = 0
	for _, id := range []string{"nozone", "zoned", "sfonly"} {
		if err := st.SetHubSpotTimeZone(ctx, id, "America/New_York"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetHubSpotTimeZone(ctx, "nozone", "Not/AZone"); err == nil {
		t.Error("an unknown zone was accepted")
	}
	want := map[string]string{"nozone": "America/New_York", "zoned": "Europe/Berlin"}
	for id, zone := range want {
		got, err := st.Get(ctx, id)
		if err != nil || got.HubSpot.TimeZone != zone {
			t.Errorf("%s: time zone %v, %v; want %s", id, got, err, zone)
		}
	}
	if got, err := st.Get(ctx, "sfonly"); err != nil || got.HubSpot != nil {
		t.Errorf("sfonly gained a HubSpot part: %+v, %v", got, err)
	}
	if changed != 1 {
		t.Errorf("%d change announcements, want 1", changed)
	}
}
