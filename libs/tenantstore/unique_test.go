package tenantstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestSourcesAreUniqueAcrossTenants is issue 13 item 2: a Salesforce org (in either id form) or a
// HubSpot portal belongs to one tenant at most, held by unique indexes (on the embedded FerretDB
// here, as in MongoDB), so a tenant cannot claim another's webhooks by saving its ids.
func TestSourcesAreUniqueAcrossTenants(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := harness.MongoDB(t, "t")
	if err := mongodb.EnsureIndexes(ctx, conn.DB, tenantstore.Indexes); err != nil {
		t.Fatal(err)
	}
	st := tenantstore.New(conn.DB, nil)
	mk := func(id, org string, portal, app int64) *tenant.Tenant {
		tn := &tenant.Tenant{ID: id}
		if org != "" {
			tn.Salesforce = &tenant.SFConfig{OrgID: org, Auth: tenant.SFAuth{Flow: "client_credentials"}}
		}
		if portal != 0 {
			tn.HubSpot = &tenant.HSConfig{PortalID: portal, AppID: app, Auth: tenant.HSAuth{Kind: "private_app"}}
		}
		return tn
	}
	put := func(tn *tenant.Tenant) error { return st.Put(ctx, tn) }
	for _, tn := range []*tenant.Tenant{mk("acme", "00D5g000004XyZa", 4412345, 31), mk("none1", "", 0, 0), mk("none2", "", 0, 0), mk("hsonly", "", 77, 31)} {
		if err := put(tn); err != nil {
			t.Fatalf("put %s: %v", tn.ID, err)
		}
	}
	// Saving a tenant again keeps its own sources.
	if err := put(mk("acme", "00D5g000004XyZaEAK", 4412345, 31)); err != nil {
		t.Fatalf("acme again: %v", err)
	}
	for _, tc := range []struct {
		name string
		t    *tenant.Tenant
		want string
	}{
		{"the org in 15 characters", mk("thief", "00D5g000004XyZa", 0, 0), "salesforce org 00D5g000004XyZaEAK"},
		{"the org in 18 characters", mk("thief", "00D5g000004XyZaEAK", 0, 0), "salesforce org 00D5g000004XyZaEAK"},
		{"the portal with the same app", mk("thief", "", 4412345, 31), "hubspot portal 4412345"},
		{"the portal with another app", mk("thief", "", 4412345, 99), "hubspot portal 4412345"},
		{"an existing tenant taking the portal", mk("none1", "", 77, 31), "hubspot portal 77"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := put(tc.t)
			var ce *tenant.SourceClaimedError
			if !errors.As(err, &ce) || !errors.Is(err, tenant.ErrSourceClaimed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("put = %v, want ErrSourceClaimed naming %s", err, tc.want)
			}
			if got, err := st.Get(ctx, tc.t.ID); err == nil && (got.Salesforce != nil || got.HubSpot != nil) {
				t.Errorf("the refused configuration was stored: %+v", got)
			}
		})
	}
	// A source released is free for another tenant.
	if err := put(mk("acme", "", 4412345, 31)); err != nil {
		t.Fatal(err)
	}
	if err := put(mk("thief", "00D5g000004XyZa", 0, 0)); err != nil {
		t.Errorf("the released org: %v", err)
	}

	// Tenants stored before the indexes (without their source keys, some claiming one source) get
	// their keys at start; the claimants of a shared source get none, so the index can be built,
	// and stay refused by ingress until the operator resolves it.
	legacy := conn.Client.Database(conn.DB.Name() + "_legacy")
	t.Cleanup(func() { _ = legacy.Drop(context.Background()) })
	for _, d := range []bson.D{
		{{Key: "_id", Value: "a"}, {Key: "salesforce", Value: bson.D{{Key: "org_id", Value: "00D5g000004XyZaEAK"}}}},
		{{Key: "_id", Value: "b"}, {Key: "salesforce", Value: bson.D{{Key: "org_id", Value: "00D5g000004XyZaEAK"}}}},
		{{Key: "_id", Value: "c"}, {Key: "hubspot", Value: bson.D{{Key: "portal_id", Value: int64(5)}}}},
		{{Key: "_id", Value: "d"}},
	} {
		if _, err := legacy.Collection(tenantstore.Collection).InsertOne(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	conflicts, err := tenantstore.New(legacy, nil).ClaimSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || !strings.Contains(conflicts[0], "a, b") {
		t.Errorf("conflicts = %q", conflicts)
	}
	if err := mongodb.EnsureIndexes(ctx, legacy, tenantstore.Indexes); err != nil {
		t.Fatalf("indexes after claiming: %v", err)
	}
	if err := tenantstore.New(legacy, nil).Put(ctx, mk("e", "", 5, 1)); !errors.Is(err, tenant.ErrSourceClaimed) {
		t.Errorf("a legacy tenant's portal: %v", err)
	}
}
