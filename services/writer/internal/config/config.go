// Package config reads writer's configuration from the environment. It is the one place the
// writer's defaults live: the core takes the values as they are, so a zero that validation accepts
// means zero.
package config

import (
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
)

// Config is writer's configuration.
type Config struct {
	Base servicekit.Config
	// Concurrency is how many owner changes are handled at once.
	Concurrency int
	Tuning
}

// Tuning is the writer core's tuning (app.Options.Tuning).
type Tuning struct {
	// EchoWindow is how long after our own write a CRM change with the same owner counts as our echo.
	EchoWindow time.Duration
	// Linger is how long a partial batch waits for another change to join it before it is flushed
	// (≤ 100 ms).
	Linger time.Duration
	// MaxLinger is the longest a write waits for its batch to fill while writes keep joining it (at
	// least Linger). Measured with BenchmarkFullPathEmailOnly: at 100 ms the 200 writes that follow
	// one Salesforce lookup, claimed one by one, went out in two to four calls on a loaded machine;
	// at 300 ms in one.
	MaxLinger time.Duration
	// SalesforceCallsPerSecond and HubSpotCallsPer10s size the per-tenant limiters.
	SalesforceCallsPerSecond float64
	HubSpotCallsPer10s       int
	// QuotaReserve is the share of the daily quota kept in reserve; below it writes are held and an
	// alert is raised. 0 keeps none: writes are held only when the quota is spent.
	QuotaReserve float64
	// CRMTimeout bounds each CRM API call.
	CRMTimeout time.Duration
	// MaxInFlight is the concurrent CRM calls per (tenant, provider, record type).
	MaxInFlight int
}

// Load reads the configuration and reports every problem at once.
// BaseConfig is the part of the configuration every service has (servicekit.ServiceConfig).
func (c Config) BaseConfig() servicekit.Config { return c.Base }

func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Base:        servicekit.ReadConfig(r, "writer", ":8082"),
		Concurrency: r.Int("OWNERSYNC_WRITER_CONCURRENCY", 1000, 1, 10000),
		Tuning: Tuning{
			EchoWindow:               r.Duration("OWNERSYNC_ECHO_WINDOW", 10*time.Minute),
			Linger:                   r.Duration("OWNERSYNC_BATCH_LINGER", 50*time.Millisecond),
			SalesforceCallsPerSecond: float64(r.Int("OWNERSYNC_SALESFORCE_CALLS_PER_SECOND", 25, 1, 1000)),
			HubSpotCallsPer10s:       r.Int("OWNERSYNC_HUBSPOT_CALLS_PER_10S", 190, 1, 10000),
			QuotaReserve:             float64(r.Int("OWNERSYNC_QUOTA_RESERVE_PERCENT", 5, 0, 50)) / 100,
			CRMTimeout:               r.Duration("OWNERSYNC_CRM_TIMEOUT", 30*time.Second),
			// Four calls in flight per batch key keep a CRM busy without tripping its concurrency
			// limits (Salesforce allows 25 long-running requests per org).
			MaxInFlight: 4,
		},
	}
	c.MaxLinger = max(300*time.Millisecond, c.Linger)
	if c.Linger <= 0 || c.Linger > 100*time.Millisecond {
		r.Problem("OWNERSYNC_BATCH_LINGER must be more than 0 and at most 100ms")
	}
	if c.CRMTimeout <= 0 {
		r.Problem("OWNERSYNC_CRM_TIMEOUT must be more than 0")
	}
	if c.EchoWindow <= 0 {
		r.Problem("OWNERSYNC_ECHO_WINDOW must be more than 0")
	}
	return c, r.Err()
}
