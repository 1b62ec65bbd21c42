// Package syncbed wires Sync Users as the mapper does, on a database, a JetStream and the CRM
// sandboxes (workbench/crmsim), for the tests that drive whole runs (internal/syncusers) and the
// Sync Users benchmark (cmd/syncbench). It is test support: no service imports it
// (scripts/check-deps.sh).
package syncbed

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/crm"
	"github.com/ownersync/ownersync/services/mapper/internal/events"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// Sandboxes are the CRM sandboxes a tenant of the bed connects to.
type Sandboxes struct {
	SFOrgID, SFURL      string
	HSURL               string
	HSPortalID, HSAppID int64
}

// Tenant is a tenant with both CRMs connected to sb, its secrets references to the bed's
// environment (Bed.Env); remap turns on remap on deactivation for both.
func Tenant(id, name string, sb Sandboxes, remap bool) *tenant.Tenant {
	tn := &tenant.Tenant{ID: id, Name: name,
		Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: true, RemapOnDeactivation: remap}, OrgID: sb.SFOrgID, InstanceURL: sb.SFURL,
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: id, ClientSecretRef: "env:OWNERSYNC_SECRET_SF"}},
		HubSpot: &tenant.HSConfig{Settings: tenant.Settings{Enabled: true, RemapOnDeactivation: remap, APIBaseURL: sb.HSURL}, PortalID: sb.HSPortalID,
			AppID: sb.HSAppID, ClientSecretRef: "env:OWNERSYNC_SECRET_HS", Auth: tenant.HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_HS_TOKEN"}},
	}
	tn.Normalize()
	return tn
}

// Bed is Sync Users' parts: the store, the tenants, the event publisher, the mapping writer and
// the CRM directories (the sandboxes' secrets come from Env).
type Bed struct {
	Store       *mongostore.Store
	Tenants     *tenantstore.Store
	Events      *events.Publisher
	Writer      *changes.Writer
	Directories crm.Factory
	// Env holds the secrets Tenant's references name; hsToken is the HubSpot private app token.
	Env map[string]string
}

// New wires a bed on db and js (mappings is the mappings view's bucket).
func New(db *mongo.Database, js jetstream.JetStream, mappings jetstream.KeyValue, bulk mongostore.BulkWrites, hsToken string) *Bed {
	b := &Bed{Store: mongostore.New(db, mongostore.Options{BulkWrites: bulk}), Tenants: tenantstore.New(db, nil),
		Events: events.NewPublisher(natsbus.NewPublisher(js, nil, 30*time.Second), nil),
		Env:    map[string]string{"OWNERSYNC_SECRET_SF": "s", "OWNERSYNC_SECRET_HS": "s", "OWNERSYNC_SECRET_HS_TOKEN": hsToken}}
	b.Writer = changes.New(b.Store, kvview.New(js, mappings), b.Events, nil)
	b.Directories = crm.Factory{Clients: crmconn.New(crmconn.Config{Secrets: &secretref.Resolver{
		Namespace: secretref.Namespace{EnvPrefix: "OWNERSYNC_SECRET_"}, Getenv: func(k string) string { return b.Env[k] }},
		AnyCRMHost: true, Timeout: time.Minute})}
	return b
}

// Runner is a Sync Users runner on the bed: o with the bed's parts, ListCap 100 and LockTTL two
// minutes unless o sets them.
func (b *Bed) Runner(ctx context.Context, o syncusers.Options) *syncusers.Runner {
	o.Writer, o.Store, o.Tenants, o.Reports, o.Directories = b.Writer, b.Store, b.Tenants, b.Events, b.Directories
	if o.ListCap == 0 {
		o.ListCap = 100
	}
	if o.LockTTL == 0 {
		o.LockTTL = 2 * time.Minute
	}
	return syncusers.New(ctx, o)
}

// Salesforce starts a Salesforce sandbox without a daily API limit, holding users; the caller
// closes it.
func Salesforce(users []sfsim.SeedUser) (*sfsim.Org, error) {
	sf, err := sfsim.New(sfsim.Config{DailyLimit: -1})
	if err != nil {
		return nil, err
	}
	if _, err := sf.Start(""); err != nil {
		sf.Close()
		return nil, err
	}
	if err := sf.Load(sfsim.Seed{Users: users}); err != nil {
		sf.Close()
		return nil, err
	}
	return sf, nil
}
