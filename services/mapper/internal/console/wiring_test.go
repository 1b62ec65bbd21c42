package console_test

import (
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi/dlq"
)

// The types mapper.Run passes to console.New satisfy its parameters.
var (
	_ domain.Admin          = (*app.Service)(nil)
	_ console.TenantStore   = (*tenantstore.Store)(nil)
	_ console.Authenticator = (*auth.Store)(nil)
	_ domain.DeadLetters    = (*dlq.DLQ)(nil)
)
