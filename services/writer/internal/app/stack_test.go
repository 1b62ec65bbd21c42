package app

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/config"
	"github.com/ownersync/ownersync/services/writer/internal/events"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

// stackOptions shape a test stack.
type stackOptions struct {
	// providers are the enabled CRMs of tenant acme.
	providers []string
	// contacts adds that many contacts to each sandbox (Salesforce ids generated, HubSpot 1000+i).
	contacts int
	// sfPerSecond and hsPer10s are the sandboxes' burst limits (0: none).
	sfPerSecond, hsPer10s int
	// concurrency and maxAckPending size the consumers (defaults 16 and 1000).
	concurrency, maxAckPending int
	// startLater leaves the consumers to stack.start, so that a backlog can be published first.
	startLater bool
	// detachedHistory is app.Options.DetachedHistory.
	detachedHistory bool
}

// stack is the writer core running behind real consumers on embedded NATS and FerretDB, with both
// CRM sandboxes. Tenant acme maps pu-ada to Salesforce Ada and HubSpot owner 7001, pu-grace to 7003.
type stack struct {
	ctx    context.Context
	bus    *natsbus.Conn
	mongo  *mongodb.Conn
	org    *sfsim.Org
	acct   *hssim.Account
	app    *App
	sfIDs  []string // the added Salesforce contacts
	cancel context.CancelFunc
	start  func()
}

func newStack(tb testing.TB, o stackOptions) *stack {
	tb.Helper()
	if o.concurrency == 0 {
		o.concurrency = 16
	}
	if o.maxAckPending == 0 {
		o.maxAckPending = 1000
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &stack{ctx: ctx, cancel: cancel}

	nats := harness.JetStream(tb)
	st.bus = nats.Conn
	buckets := nats.KV(tb)
	for _, m := range []struct{ provider, platform, crm string }{
		{"salesforce", "pu-ada", sfAda}, {"hubspot", "pu-ada", "7001"}, {"hubspot", "pu-grace", "7003"},
	} {
		v := `{"platform_user_id":"` + m.platform + `","crm_user_id":"` + m.crm + `","status":"synced","usable":true,"active":true,"kind":"user"}`
		for _, k := range []string{streams.KVKey("acme", m.provider, "crm", m.crm), streams.KVKey("acme", m.provider, "platform", m.platform)} {
			if _, err := buckets[streams.MappingsBucket].PutString(ctx, k, v); err != nil {
				tb.Fatal(err)
			}
		}
	}

	st.mongo = harness.MongoDB(tb, "writer_e2e")
	if err := mongodb.EnsureIndexes(ctx, st.mongo.DB, ownerhistory.Indexes()); err != nil {
		tb.Fatal(err)
	}

	sfCfg := sfsim.Config{DailyLimit: -1}
	if o.sfPerSecond > 0 {
		sfCfg.BurstLimit, sfCfg.BurstInterval = o.sfPerSecond, time.Second
	}
	var err error
	st.org, err = sfsim.New(sfCfg)
	if err != nil {
		tb.Fatal(err)
	}
	sfSeed := sfsim.Seed{
		Users: []sfsim.SeedUser{
			{ID: sfAda, Username: "ada@acme.test", Email: "ada@example.com", LastName: "Lovelace"},
			{ID: sfGrace, Username: "grace@acme.test", Email: "grace@example.com", LastName: "Hopper"},
		},
		Contacts: []sfsim.SeedRecord{{ID: sfContact, Email: "c1@example.org", LastName: "One", Owner: sfGrace}},
	}
	for i := range o.contacts {
		sfSeed.Contacts = append(sfSeed.Contacts, sfsim.SeedRecord{Email: "c" + strconv.Itoa(i) + "@bench.example.org", LastName: "B", Owner: sfGrace})
	}
	if err := st.org.Load(sfSeed); err != nil {
		tb.Fatal(err)
	}
	for _, r := range st.org.Records("Contact") {
		if r.ID != sfContact {
			st.sfIDs = append(st.sfIDs, r.ID)
		}
	}
	sfURL, err := st.org.Start("")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.org.Close() })

	hsCfg := hssim.Config{AccessTokens: []string{"pat-test"}, BurstLimit: -1, DailyLimit: -1}
	if o.hsPer10s > 0 {
		hsCfg.BurstLimit, hsCfg.BurstInterval = o.hsPer10s, 10*time.Second
	}
	st.acct, err = hssim.New(hsCfg)
	if err != nil {
		tb.Fatal(err)
	}
	hsSeed := hssim.Seed{
		Owners: []hssim.Owner{{ID: "7001", Email: "ada@example.com", Type: "PERSON", UserID: 1},
			{ID: "7003", Email: "grace@example.com", Type: "PERSON", UserID: 3}},
		Contacts: []hssim.SeedContact{{ID: "101", Email: "c1@example.org", Owner: "7003"}},
	}
	for i := range o.contacts {
		hsSeed.Contacts = append(hsSeed.Contacts, hssim.SeedContact{ID: strconv.Itoa(1000 + i), Email: "c" + strconv.Itoa(i) + "@bench.example.org", Owner: "7003"})
	}
	if err := st.acct.Load(hsSeed); err != nil {
		tb.Fatal(err)
	}
	hsURL, err := st.acct.Start("")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.acct.Close() })

	acme := &tenant.Tenant{ID: "acme"}
	for _, p := range o.providers {
		switch p {
		case "salesforce":
			acme.Salesforce = &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional,
				ObjectModules: []string{"contact", "lead"}, APIBaseURL: sfURL}, APIVersion: "62.0",
				Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "writer", ClientSecretRef: "env:OWNERSYNC_SECRET_SF"}}
		case "hubspot":
			acme.HubSpot = &tenant.HSConfig{Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional, APIBaseURL: hsURL},
				Auth: tenant.HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_HS_TOKEN"}}
		}
	}
	env := map[string]string{"OWNERSYNC_SECRET_SF": "s", "OWNERSYNC_SECRET_HS_TOKEN": "pat-test"}
	st.app, err = New(ctx, Options{
		Records: buckets[streams.RecordsBucket], Mappings: buckets[streams.MappingsBucket], DB: st.mongo.DB,
		Tenants:         tenants{"acme": acme},
		Publisher:       natsbus.NewPublisher(st.bus.JS, nil, 5*time.Second),
		Secrets:         &secretref.Resolver{Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: "/run/secrets/ownersync"}, Getenv: func(k string) string { return env[k] }},
		AnyCRMHost:      true,
		Tuning:          defaultTuning(tb),
		DetachedHistory: o.detachedHistory,
	})
	if err != nil {
		tb.Fatal(err)
	}

	var wg sync.WaitGroup
	st.start = func() {
		for _, c := range []struct {
			stream, durable, filter string
			h                       natsbus.Handler
		}{
			{streams.CRM, "writer-crm-owners", "crm.owner.changed.>", events.CRMHandler(st.app.Engine)},
			{streams.Platform, "writer-platform-owners", "platform.owner.changed.>", events.PlatformHandler(st.app.Engine)},
		} {
			cons, err := natsbus.NewConsumer(ctx, st.bus, natsbus.ConsumerOptions{Service: "writer", Stream: c.stream,
				Config: jetstream.ConsumerConfig{Durable: c.durable, FilterSubjects: []string{c.filter}, AckWait: time.Minute,
					MaxDeliver: 5, MaxAckPending: o.maxAckPending},
				Concurrency: o.concurrency})
			if err != nil {
				tb.Fatal(err)
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = cons.Run(ctx, c.h) }()
		}
	}
	if !o.startLater {
		st.start()
	}
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := st.app.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return st
}

// defaultTuning is the configuration's tuning with no variable set.
func defaultTuning(tb testing.TB) config.Tuning {
	tb.Helper()
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "MONGODB_URI": "mongodb://127.0.0.1:1"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	return cfg.Tuning
}
