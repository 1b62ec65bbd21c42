package webhook

import (
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/tenantstore"
)

// The service wires these implementations in; the build fails here if one stops fitting.
var (
	_ Publisher      = (*natsbus.Publisher)(nil)
	_ Tenants        = (*tenantstore.Cache)(nil)
	_ SecretResolver = secretref.Resolver{}
)
