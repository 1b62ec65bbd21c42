package connect_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestFlowsAreSharedBetweenReplicas (issue 15 meets issue 16): a Connect flow started on one
// mapper replica finishes its callback on another replica on the same MongoDB (no sticky
// sessions; a restart keeps the flows in progress), including Salesforce's PKCE verifier, and
// the state is spent: a replayed callback is refused on either replica. A flow past StateTTL is
// refused and its document removed.
func TestFlowsAreSharedBetweenReplicas(t *testing.T) {
	const admin = "https://ownersync.example"
	acct, hsURL, org, sfURL := sandboxes(t, admin, "", hssim.Seed{},
		sfsim.Seed{Users: []sfsim.SeedUser{{Username: "admin@acme.test", Email: "admin@acme.test", LastName: "Admin"}}})

	conn := harness.MongoDB(t, "connectflows")
	ctx := context.Background()
	if err := mongodb.EnsureIndexes(ctx, conn.DB, append(append(append([]mongodb.Index{}, tenantstore.Indexes...), secretbox.Indexes...), connect.FlowIndexes...)); err != nil {
		t.Fatal(err)
	}
	ts := tenantstore.New(conn.DB, nil)
	if err := ts.Put(ctx, &tenant.Tenant{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	kr, _ := secretbox.ParseKeyring(secretbox.NewKey("k1"))
	store := secretbox.NewStore(conn.DB, kr)
	resolver := secretbox.Resolver(store, &secretref.Resolver{})
	clock := time.Now()
	replica := func() *connect.Service {
		clients := crmconn.New(crmconn.Config{Secrets: resolver, Stored: store, Timeout: 5 * time.Second, AnyCRMHost: true})
		return newReplica(conn.DB, connect.Config{AdminURL: admin, IngressURL: "https://hooks.ownersync.example",
			Now:        func() time.Time { return clock },
			HubSpot:    &connect.HubSpotApp{ClientID: "hs-app", ClientSecret: "hs-secret", AuthorizeURL: hsURL + "/oauth/authorize", APIBaseURL: hsURL},
			Salesforce: &connect.SalesforceApp{ClientID: "sf-app", ClientSecret: "sf-secret", SandboxOrigins: []string{sfURL}}}, ts, store, clients)
	}
	a, b := replica(), replica()

	// HubSpot: started on a, finished on b, replay refused on both.
	cb := consent(t, mustStart(t, func() (string, error) { return a.StartHubSpot(ctx, "acme", "tenant:acme:t1", "session-1") }), url.Values{"decision": {"grant"}})
	state, code := cb.Query().Get("state"), cb.Query().Get("code")
	if got, err := b.Tenant(ctx, state); got != "acme" || err != nil {
		t.Fatalf("replica b does not know the state started on a: tenant %q %v", got, err)
	}
	if _, err := b.Callback(ctx, connect.HubSpot, state, code, "", "another-session"); err != connect.ErrState {
		t.Fatalf("callback in another session: %v", err)
	}
	if _, err := b.Callback(ctx, connect.Salesforce, state, code, "", "session-1"); err != connect.ErrState {
		t.Fatalf("callback for another provider: %v", err)
	}
	if f, err := b.Callback(ctx, connect.HubSpot, state, code, "", "session-1"); err != nil || f.Tenant != "acme" {
		t.Fatalf("HubSpot callback on replica b: %q %v", f.Tenant, err)
	}
	for name, r := range map[string]*connect.Service{"a": a, "b": b} {
		if _, err := r.Callback(ctx, connect.HubSpot, state, code, "", "session-1"); err != connect.ErrState {
			t.Fatalf("replayed callback on replica %s: %v", name, err)
		}
		if got, err := r.Tenant(ctx, state); got != "" || err != nil {
			t.Fatalf("spent state still names tenant %q on replica %s (%v)", got, name, err)
		}
	}
	if tn, _ := ts.Get(ctx, "acme"); tn.HubSpot == nil || tn.HubSpot.PortalID != acct.PortalID() {
		t.Fatalf("HubSpot connection %+v", tn.HubSpot)
	}

	// Salesforce: the PKCE verifier kept by a is what b sends with the code.
	cb = consent(t, mustStart(t, func() (string, error) {
		return a.StartSalesforce(ctx, "acme", "tenant:acme:t1", "session-1", connect.EnvMyDomain, sfURL)
	}), url.Values{"decision": {"allow"}, "username": {"admin@acme.test"}})
	if _, err := b.Callback(ctx, connect.Salesforce, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1"); err != nil {
		t.Fatalf("Salesforce callback on replica b: %v", err)
	}
	if _, err := a.Callback(ctx, connect.Salesforce, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1"); err != connect.ErrState {
		t.Fatalf("replayed Salesforce callback on replica a: %v", err)
	}
	if tn, _ := ts.Get(ctx, "acme"); tn.Salesforce == nil || tn.Salesforce.OrgID != org.OrgID() {
		t.Fatalf("Salesforce connection %+v", tn.Salesforce)
	}

	// Expired: refused on any replica, and the flow's document is gone.
	cb = consent(t, mustStart(t, func() (string, error) { return a.StartHubSpot(ctx, "acme", "tenant:acme:t1", "session-1") }), url.Values{"decision": {"grant"}})
	clock = clock.Add(connect.StateTTL)
	if got, err := b.Tenant(ctx, cb.Query().Get("state")); got != "" || err != nil {
		t.Fatalf("expired state names tenant %q %v", got, err)
	}
	if _, err := b.Callback(ctx, connect.HubSpot, cb.Query().Get("state"), cb.Query().Get("code"), "", "session-1"); err != connect.ErrState {
		t.Fatalf("expired callback: %v", err)
	}
	if n := flowCount(t, conn.DB); n != 0 {
		t.Fatalf("%d flow documents left after the expired one was refused", n)
	}
}

func flowCount(t *testing.T, db *mongo.Database) int64 {
	t.Helper()
	n, err := db.Collection(connect.FlowsCollection).CountDocuments(context.Background(), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newReplica is one mapper replica's Connect service on the shared database.
func newReplica(db *mongo.Database, cfg connect.Config, ts connect.Tenants, store *secretbox.Store, clients *crmconn.Clients) *connect.Service {
	cfg.Flows = connect.NewFlows(db)
	return connect.New(cfg, ts, store, clients)
}
