// Package config reads writer's configuration from the environment.
package config

import (
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
)

// Config is writer's configuration.
type Config struct {
	Base servicekit.Config
	// EchoWindow is how long after our own write a CRM change with the same owner counts as our echo.
	EchoWindow time.Duration
	// Linger is how long a batch waits for more changes before it is flushed (≤ 100 ms).
	Linger time.Duration
	// Concurrency is how many owner changes are handled at once.
	Concurrency int
	// SalesforceCallsPerSecond and HubSpotCallsPer10s size the per-tenant limiters.
	SalesforceCallsPerSecond float64
	HubSpotCallsPer10s       int
	// QuotaReserve is the share of the daily quota kept in reserve; below it writes are held and an alert is raised.
	QuotaReserve float64
	// CRMTimeout bounds each CRM API call.
	CRMTimeout time.Duration
}

// Load reads the configuration and reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Base:                     servicekit.ReadConfig(r, "writer", ":8082"),
		EchoWindow:               r.Duration("OWNERSYNC_ECHO_WINDOW", 10*time.Minute),
		Linger:                   r.Duration("OWNERSYNC_BATCH_LINGER", 50*time.Millisecond),
		Concurrency:              r.Int("OWNERSYNC_WRITER_CONCURRENCY", 1000, 1, 10000),
		SalesforceCallsPerSecond: float64(r.Int("OWNERSYNC_SALESFORCE_CALLS_PER_SECOND", 25, 1, 1000)),
		HubSpotCallsPer10s:       r.Int("OWNERSYNC_HUBSPOT_CALLS_PER_10S", 190, 1, 10000),
		QuotaReserve:             float64(r.Int("OWNERSYNC_QUOTA_RESERVE_PERCENT", 5, 0, 50)) / 100,
		CRMTimeout:               r.Duration("OWNERSYNC_CRM_TIMEOUT", 30*time.Second),
	}
	if c.Linger > 100*time.Millisecond {
		r.Problem("OWNERSYNC_BATCH_LINGER must be at most 100ms")
	}
	return c, r.Err()
}
