package mapper

import (
	"context"
	"log/slog"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
)

// connectService builds the Connect flows from the configuration: an app the operator did not
// configure cannot be connected (the Connections page says so). Pending flows are in flows
// (connect_flows), shared by the replicas.
func connectService(cfg config.Config, flows *connect.Flows, tenants connect.Tenants, stored *secretbox.Store, clients *crmconn.Clients) *connect.Service {
	cc := connect.Config{AdminURL: cfg.AdminURL, IngressURL: cfg.Connect.IngressURL, Flows: flows}
	if cfg.Connect.HubSpotClientID != "" {
		cc.HubSpot = &connect.HubSpotApp{ClientID: cfg.Connect.HubSpotClientID, ClientSecret: cfg.Connect.HubSpotClientSecret,
			AppID: cfg.Connect.HubSpotAppID, DeveloperAPIKey: cfg.Connect.HubSpotDeveloperAPIKey,
			AuthorizeURL: cfg.Connect.HubSpotAuthorizeURL, APIBaseURL: cfg.Connect.HubSpotAPIURL}
	}
	if cfg.Connect.SalesforceClientID != "" {
		cc.Salesforce = &connect.SalesforceApp{ClientID: cfg.Connect.SalesforceClientID, ClientSecret: cfg.Connect.SalesforceClientSecret,
			SandboxOrigins: cfg.Connect.SalesforceSandboxOrigins}
	}
	return connect.New(cc, tenants, stored, clients)
}

// rewrapStored re-seals, at start, every stored token whose data key is not under the primary key
// of OWNERSYNC_STORED_SECRET_KEYS (key rotation: docs/connect-salesforce.md#stored-tokens). A value
// that does not open is logged by name; its key must stay configured until it is reconnected.
func rewrapStored(ctx context.Context, stored *secretbox.Store, log *slog.Logger) {
	if stored == nil {
		return
	}
	res, err := stored.Rewrap(ctx)
	if err != nil {
		log.Warn("stored secrets: rewrap under the primary key failed; will retry at the next start", "error", err)
		return
	}
	if res.Rewrapped > 0 || len(res.Failed) > 0 {
		log.Info("stored secrets re-sealed under the primary key", "key", stored.Keys().Primary(), "rewrapped", res.Rewrapped, "failed", res.Failed)
	}
}

// migrateSharedKeys brings the Salesforce shared keys to the one model at start (issue 13 item 3,
// connect.MigrateSharedKeys): a key kept as a secret reference becomes its digest, a stored value
// is deleted. A key that cannot be read stays as it was (ingress answers 503 for it until it is
// rotated); a connection without a key is logged, as the console and API flag it.
func migrateSharedKeys(ctx context.Context, ks connect.KeyStore, secrets crmconn.Resolver, stored *secretbox.Store, log *slog.Logger) {
	m, err := connect.MigrateSharedKeys(ctx, ks, secrets, stored, time.Now())
	if err != nil {
		log.Warn("shared keys: migration to digests failed; will retry at the next start", "error", err)
	}
	if len(m.Migrated) > 0 {
		log.Info("shared keys: Outbound Message keys migrated to their digests", "tenants", m.Migrated)
	}
	for id, err := range m.Failed {
		log.Error("shared keys: the Salesforce shared key cannot be read to migrate it; rotate it (console Connections › Rotate key)", "tenant", id, "error", err)
	}
	if len(m.Keyless) > 0 {
		log.Warn("shared keys: enabled Salesforce connections without an Outbound Message key (ingress refuses their messages); generate a key", "tenants", m.Keyless)
	}
}
