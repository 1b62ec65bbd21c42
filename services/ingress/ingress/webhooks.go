package ingress

import (
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/ingress/internal/config"
)

// registerWebhooks wires the Salesforce and HubSpot webhook handlers.
func registerWebhooks(cfg config.Config, base *servicekit.Base, tenants *tenantstore.Cache, getenv func(string) string) {
}
