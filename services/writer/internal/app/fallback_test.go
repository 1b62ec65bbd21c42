package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/crmuserkv"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestFallbackAlertOncePerTenantAcrossReplicas is issue 14 item 1's "once per tenant and
// provider, not per record", with replicas: two writer cores on one NATS and MongoDB each get
// three platform changes that need the tenant's Salesforce fallback owner, which the CRM user
// directory knows as inactive. Every change is refused (nothing to write) and recorded failed with
// the reason, and the SYNC stream holds one alert for the tenant, not six.
func TestFallbackAlertOncePerTenantAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	nats := harness.JetStream(t)
	buckets := nats.KV(t)
	db := harness.MongoDB(t, "writer_fallback")
	if err := mongodb.EnsureIndexes(ctx, db.DB, ownerhistory.Indexes()); err != nil {
		t.Fatal(err)
	}
	b, _ := crmuserkv.Encode(crmuserkv.Entry{Tenant: "acme", Provider: provider.Salesforce, CRMUserID: sfGrace, Kind: crmuserkv.KindUser, Active: false})
	if _, err := buckets[streams.CRMUsersBucket].Put(ctx, crmuserkv.Key("acme", provider.Salesforce, sfGrace), b); err != nil {
		t.Fatal(err)
	}
	acme := &tenant.Tenant{ID: "acme", Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional,
		FallbackOwnerID: sfGrace, APIBaseURL: "http://127.0.0.1:1"}, APIVersion: "62.0",
		Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "writer", ClientSecretRef: "env:OWNERSYNC_SECRET_SF"}}}
	for r := range 2 {
		a, err := New(ctx, Options{
			Records: buckets[streams.RecordsBucket], Mappings: buckets[streams.MappingsBucket], CRMUsers: buckets[streams.CRMUsersBucket],
			DB: db.DB, Tenants: tenants{"acme": acme}, Publisher: natsbus.NewPublisher(nats.Conn.JS, nil, 5*time.Second),
			Secrets: &secretref.Resolver{Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_"}, Getenv: func(string) string { return "s" }}, AnyCRMHost: true, Tuning: defaultTuning(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close(context.Background()) })
		for i := range 3 {
			err := a.Engine.PlatformChange(ctx, ownership.PlatformOwnerChange{EventID: fmt.Sprintf("pc-%d-%d", r, i), Tenant: "acme",
				RecordType: ownership.Contact, PlatformRecordID: fmt.Sprintf("pr-%d-%d", r, i), OwnerUserID: "pu-nobody",
				CRMRecordIDs: map[provider.Provider]string{provider.Salesforce: sfContact}, OccurredAt: time.Now()})
			if err == nil || !strings.Contains(err.Error(), ownership.ReasonFallbackInactive) {
				t.Errorf("replica %d change %d: error %v, want a refusal naming %q", r, i, err, ownership.ReasonFallbackInactive)
			}
		}
	}
	st, err := nats.Conn.JS.Stream(ctx, streams.Sync)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(streams.Alert("acme")))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[streams.Alert("acme")]; n != 1 {
		t.Errorf("%d alerts on %s for 6 refused changes on 2 replicas, want 1", n, streams.Alert("acme"))
	}
	hist, err := ownerhistory.Read(ctx, db.DB, ownerhistory.Record{Tenant: "acme", Provider: provider.Salesforce, RecordType: "contact", RecordID: sfContact})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, d := range hist {
		if d.Outcome == ownerhistory.Failed && strings.HasPrefix(d.Reason, ownership.ReasonFallbackInactive) {
			failed++
		}
	}
	if failed != 6 {
		t.Errorf("%d history entries failed with %q, want 6: %+v", failed, ownership.ReasonFallbackInactive, hist)
	}
}
