package mapper

import (
	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
)

// connectService builds the Connect flows from the configuration: an app the operator did not
// configure cannot be connected (the Connections page says so).
func connectService(cfg config.Config, tenants connect.Tenants, stored *secretbox.Store, clients *crmconn.Clients, secrets crmconn.Resolver) *connect.Service {
	cc := connect.Config{AdminURL: cfg.AdminURL, IngressURL: cfg.Connect.IngressURL, Secrets: secrets}
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
