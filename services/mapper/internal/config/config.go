// Package config reads mapper's configuration from the environment.
package config

import (
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/tenantstore"
)

// Config is mapper's configuration.
type Config struct {
	Base servicekit.Config
	// TenantsFile seeds tenants at start (development).
	TenantsFile string
	// OperatorToken is the admin API's operator token (all tenants); stored hashed.
	OperatorToken string
	// TenantTokens are per-tenant admin tokens "tenant=token", stored hashed.
	TenantTokens map[string]string
	// AdminURL is the public base URL of the admin API and console (links in reports).
	AdminURL string
	// SchedulerInterval is how often due Sync Users schedules are checked.
	SchedulerInterval time.Duration
	// CRMTimeout bounds each CRM API call.
	CRMTimeout time.Duration
	// PlatformUserURL is where the console sends admins to fix a platform user ({tenant} and {id}
	// are filled in); "#" when unset.
	PlatformUserURL string
}

// Load reads the configuration and reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Base:              servicekit.ReadConfig(r, "mapper", ":8081"),
		TenantsFile:       r.String("OWNERSYNC_TENANTS_FILE", ""),
		OperatorToken:     r.Required("OWNERSYNC_OPERATOR_TOKEN"),
		TenantTokens:      map[string]string{},
		AdminURL:          strings.TrimRight(r.URL("OWNERSYNC_ADMIN_URL", "http://localhost:8081", "http", "https"), "/"),
		SchedulerInterval: r.Duration("OWNERSYNC_SCHEDULER_INTERVAL", 30*time.Second),
		CRMTimeout:        r.Duration("OWNERSYNC_CRM_TIMEOUT", 30*time.Second),
		PlatformUserURL:   r.String("OWNERSYNC_PLATFORM_USER_URL", ""),
	}
	if c.OperatorToken != "" && len(c.OperatorToken) < 16 {
		r.Problem("OWNERSYNC_OPERATOR_TOKEN must be at least 16 characters")
	}
	for _, kv := range r.List("OWNERSYNC_TENANT_TOKENS") {
		t, tok, ok := strings.Cut(kv, "=")
		if !ok || t == "" || len(tok) < 16 {
			r.Problem("OWNERSYNC_TENANT_TOKENS entries must be tenant=token with tokens of at least 16 characters")
			continue
		}
		c.TenantTokens[t] = tok
	}
	if c.TenantsFile != "" {
		// Read now, so a wrong path or bad file is reported with every other problem, before any
		// connection is made.
		if _, err := tenantstore.LoadSeed(c.TenantsFile); err != nil {
			r.Problem("OWNERSYNC_TENANTS_FILE=%q: %v", c.TenantsFile, err)
		}
	}
	return c, r.Err()
}
