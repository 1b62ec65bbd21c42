package writeback_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/mappingview"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/services/writer/internal/recordstate"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

const (
	sfAda     = "0055g00000AsDfGAAV"
	sfGrace   = "0055g00000HjKlMAAV"
	sfContact = "0035g00000QwErTAAV"
)

// recorder is the Publisher and History of the integration test.
type recorder struct {
	mu      sync.Mutex
	assigns []ownership.Assignment
	history []writeback.Entry
}

func (r *recorder) Assign(_ context.Context, _ ownership.CRMOwnerChange, a ownership.Assignment) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.assigns = append(r.assigns, a)
	return nil
}
func (r *recorder) RefreshUser(context.Context, string, provider.Provider, string, string) error {
	return nil
}
func (r *recorder) Alert(context.Context, writeback.Alert) error { return nil }
func (r *recorder) Record(_ context.Context, e writeback.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.history = append(r.history, e)
	return nil
}

func (r *recorder) last() writeback.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.history[len(r.history)-1]
}

type staticPolicies ownership.Policy

func (p staticPolicies) Policy(context.Context, string) (ownership.Policy, error) {
	return ownership.Policy(p), nil
}

// TestWiredWithSandboxes runs the engine on its real collaborators: the records and mappings KV
// buckets on an in-process JetStream server, the batcher, the limiter, both adapters and both CRM
// sandboxes. A platform change is written once to each CRM, the CRMs' notifications of those writes
// are echoes, and a later change made in HubSpot reaches the platform.
func TestWiredWithSandboxes(t *testing.T) {
	ctx := context.Background()
	buckets := harness.JetStream(t).KV(t)
	// Mappings as mapper writes them: pu-ada ⇄ Salesforce Ada and HubSpot 7001, pu-grace ⇄ 7003.
	for _, m := range []struct{ provider, platform, crm string }{
		{"salesforce", "pu-ada", sfAda}, {"hubspot", "pu-ada", "7001"}, {"hubspot", "pu-grace", "7003"},
	} {
		v := `{"platform_user_id":"` + m.platform + `","crm_user_id":"` + m.crm + `","status":"synced","usable":true,"active":true,"kind":"user"}`
		for _, k := range []string{streams.KVKey("acme", m.provider, "crm", m.crm), streams.KVKey("acme", m.provider, "platform", m.platform)} {
			if _, err := buckets[streams.MappingsBucket].PutString(ctx, k, v); err != nil {
				t.Fatal(err)
			}
		}
	}

	org, err := sfsim.New(sfsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := org.Load(sfsim.Seed{
		Users: []sfsim.SeedUser{
			{ID: sfAda, Username: "ada@acme.test", Email: "ada@example.com", LastName: "Lovelace"},
			{ID: sfGrace, Username: "grace@acme.test", Email: "grace@example.com", LastName: "Hopper"},
		},
		Contacts: []sfsim.SeedRecord{{ID: sfContact, Email: "c1@example.org", LastName: "One", Owner: sfGrace}},
	}); err != nil {
		t.Fatal(err)
	}
	sfURL, err := org.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { org.Close() })
	sfClient, err := salesforce.New(salesforce.Config{InstanceURL: sfURL, APIVersion: "62.0",
		ClientCredentials: &salesforce.ClientCredentials{ClientID: "writer", ClientSecret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}

	acct, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Load(hssim.Seed{
		Owners: []hssim.Owner{
			{ID: "7001", Email: "ada@example.com", Type: "PERSON", UserID: 1},
			{ID: "7003", Email: "grace@example.com", Type: "PERSON", UserID: 3},
		},
		Contacts: []hssim.SeedContact{{ID: "101", Email: "c1@example.org", Owner: "7003"}},
	}); err != nil {
		t.Fatal(err)
	}
	hsURL, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	hsClient, err := hubspot.New(hubspot.Config{BaseURL: hsURL, AccessToken: "pat-test"})
	if err != nil {
		t.Fatal(err)
	}

	limiter := ratelimit.New(ratelimit.Config{Limits: func(k ratelimit.Key) ratelimit.Limits {
		if k.Provider == "salesforce" {
			return ratelimit.ForWindow(25, time.Second, 1)
		}
		return ratelimit.ForWindow(190, 10*time.Second, 5)
	}})
	cfg := crmwrite.Config{Limiter: limiter}
	sfw := crmwrite.NewSalesforce(cfg, func(context.Context, string) (crmwrite.SalesforceAPI, error) { return sfClient, nil })
	hsw := crmwrite.NewHubSpot(cfg, func(context.Context, string) (crmwrite.HubSpotAPI, error) { return hsClient, nil })
	finder := crmwrite.NewFinder(sfw, hsw, crmwrite.FinderOptions{Idle: 5 * time.Millisecond})
	t.Cleanup(func() { finder.Close(context.Background()) })
	flush := func(ctx context.Context, k crmwrite.BatchKey, b []batcher.Item[crmwrite.Write]) ([]batcher.Result[crmwrite.Written], error) {
		if k.Provider == provider.Salesforce {
			return sfw.Flush(ctx, k, b)
		}
		return hsw.Flush(ctx, k, b)
	}
	bt := batcher.New(flush, batcher.Options[crmwrite.BatchKey, crmwrite.Write]{
		MaxSize: func(k crmwrite.BatchKey) int {
			if k.Provider == provider.Salesforce {
				return salesforce.MaxCollectionRecords
			}
			return hubspot.MaxBatchInputs
		},
		Linger: 20 * time.Millisecond, MaxInFlight: 4, Supersedes: crmwrite.Supersedes,
	})
	t.Cleanup(func() { bt.Close(context.Background()) })

	records := recordstate.NewJetStreamKV(buckets[streams.RecordsBucket])
	rec := &recorder{}
	engine := writeback.New(writeback.Config{EchoWindow: 10 * time.Minute}, writeback.Deps{
		Policies: staticPolicies{Tenant: "acme", Providers: map[provider.Provider]ownership.ProviderPolicy{
			provider.Salesforce: {Enabled: true, Direction: ownership.Bidirectional, RecordTypes: []ownership.RecordType{ownership.Contact}},
			provider.HubSpot:    {Enabled: true, Direction: ownership.Bidirectional},
		}},
		View:      mappingview.New(buckets[streams.MappingsBucket]),
		States:    recordstate.NewStore(records),
		Writes:    bt,
		Links:     recordstate.NewLinks(records),
		Finder:    finder,
		Publisher: rec,
		History:   rec,
	})

	// 1. The platform gives the record to Ada; it knows no CRM ids, so both records are found by email.
	pc := ownership.PlatformOwnerChange{EventID: "p-1", Tenant: "acme", RecordType: ownership.Contact, PlatformRecordID: "pr-1",
		Email: "c1@example.org", OwnerUserID: "pu-ada", OccurredAt: time.Now().Add(-time.Second)}
	if err := engine.PlatformChange(ctx, pc); err != nil {
		t.Fatalf("PlatformChange: %v", err)
	}
	if r, _ := org.Record(sfContact); r.OwnerID != sfAda {
		t.Errorf("salesforce owner %s, want %s", r.OwnerID, sfAda)
	}
	if c, _ := acct.Contact("101"); c.Properties[hssim.OwnerProperty] != "7001" {
		t.Errorf("hubspot owner %q, want 7001", c.Properties[hssim.OwnerProperty])
	}
	writes := func() int {
		return len(org.Log().Matching("PATCH", "/services/data/v62.0/composite/sobjects")) +
			len(acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update"))
	}
	if got := writes(); got != 2 {
		t.Errorf("%d CRM writes, want one per CRM", got)
	}

	// 2. Both CRMs report the change we made: echoes, nothing reaches the platform.
	sfRec, _ := org.Record(sfContact)
	for _, echo := range []ownership.CRMOwnerChange{
		{EventID: "sf:1", Tenant: "acme", Provider: provider.Salesforce, RecordType: ownership.Contact, RecordID: sfContact,
			OwnerID: sfRec.OwnerID, OwnerKind: ownership.KindUser, OccurredAt: sfRec.LastModifiedDate},
		{EventID: "hs:1", Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact, RecordID: "101",
			OwnerID: "7001", OwnerKind: ownership.KindUser, OccurredAt: time.Now()},
	} {
		if err := engine.CRMChange(ctx, echo, 1); err != nil {
			t.Fatalf("CRMChange(echo): %v", err)
		}
		if got := rec.last().Outcome; got != writeback.Echo {
			t.Errorf("%s notification of our write: %s, want echo", echo.Provider, got)
		}
	}
	// The platform's redelivery of its change is a duplicate; the next change uses the stored links.
	if err := engine.PlatformChange(ctx, pc); err != nil {
		t.Fatal(err)
	}
	if got := writes(); got != 2 {
		t.Errorf("%d CRM writes after echoes and a redelivery, want still 2", got)
	}

	// 3. Someone gives the contact to Grace in HubSpot: the platform is told to assign pu-grace.
	if err := acct.SetContactOwner("101", "7003", 9988776); err != nil {
		t.Fatal(err)
	}
	change := ownership.CRMOwnerChange{EventID: "hs:2", Tenant: "acme", Provider: provider.HubSpot, RecordType: ownership.Contact,
		RecordID: "101", OwnerID: "7003", OwnerKind: ownership.KindUser, OccurredAt: time.Now().Add(time.Second), ChangeSource: "CRM_UI"}
	if err := engine.CRMChange(ctx, change, 1); err != nil {
		t.Fatal(err)
	}
	if len(rec.assigns) != 1 || rec.assigns[0].Outcome != ownership.Assigned || rec.assigns[0].OwnerUserID != "pu-grace" ||
		rec.assigns[0].PlatformRecordID != "pr-1" {
		t.Errorf("assignments %+v, want pu-grace for platform record pr-1", rec.assigns)
	}
}
