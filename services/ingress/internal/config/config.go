// Package config reads ingress's configuration from the environment.
package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
)

// Config is ingress's configuration.
type Config struct {
	Base servicekit.Config
	// PublicURL is the scheme://host[:port][/prefix] HubSpot and Salesforce call; HubSpot v3
	// signatures are computed over it, never over the Host header a proxy passed on.
	PublicURL string
	// PlatformToken is the bearer token of POST /v1/platform/events.
	PlatformToken string
	// PublishTimeout bounds the wait for JetStream's acknowledgements of one request.
	PublishTimeout time.Duration
	// SalesforceBodyLimit and HubSpotBodyLimit cap request bodies.
	SalesforceBodyLimit int64
	HubSpotBodyLimit    int64
	PlatformBodyLimit   int64
	// MaxInflightBodyBytes caps the request body bytes the process holds at once; beyond it
	// requests are answered 503 with Retry-After.
	MaxInflightBodyBytes int64
	// RequireSharedKey refuses Outbound Messages of Salesforce connections without a shared key.
	RequireSharedKey bool
	// MaxSourceSkew is how far a CRM's source time may lie past receipt before it is clamped.
	MaxSourceSkew time.Duration
}

// Load reads the configuration and reports every problem at once.
// BaseConfig is the part of the configuration every service has (servicekit.ServiceConfig).
func (c Config) BaseConfig() servicekit.Config { return c.Base }

func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Base:                 servicekit.ReadConfig(r, "ingress", ":8080"),
		PublicURL:            strings.TrimRight(r.URL("OWNERSYNC_PUBLIC_URL", "", "http", "https"), "/"),
		PlatformToken:        r.Required("OWNERSYNC_PLATFORM_TOKEN"),
		PublishTimeout:       r.Duration("OWNERSYNC_PUBLISH_TIMEOUT", 4*time.Second),
		SalesforceBodyLimit:  int64(r.Int("OWNERSYNC_SALESFORCE_BODY_LIMIT", 5<<20, 1<<10, 64<<20)),
		HubSpotBodyLimit:     int64(r.Int("OWNERSYNC_HUBSPOT_BODY_LIMIT", 1<<20, 1<<10, 64<<20)),
		PlatformBodyLimit:    int64(r.Int("OWNERSYNC_PLATFORM_BODY_LIMIT", 5<<20, 1<<10, 64<<20)),
		MaxSourceSkew:        r.Duration("OWNERSYNC_MAX_SOURCE_SKEW", 5*time.Minute),
		MaxInflightBodyBytes: int64(r.Int("OWNERSYNC_MAX_INFLIGHT_BODY_BYTES", 128<<20, 64<<10, 1<<40)),
		RequireSharedKey:     r.Bool("OWNERSYNC_REQUIRE_SHARED_KEY", true),
	}
	if c.MaxSourceSkew <= 0 {
		r.Problem("OWNERSYNC_MAX_SOURCE_SKEW must be a positive duration")
	}
	if c.PublicURL == "" {
		r.Problem("OWNERSYNC_PUBLIC_URL is required (the URL HubSpot calls, used for v3 signatures)")
	} else if u, err := url.Parse(c.PublicURL); err == nil && (u.RawQuery != "" || u.Fragment != "") {
		r.Problem("OWNERSYNC_PUBLIC_URL must not have a query or fragment")
	}
	if c.PlatformToken != "" && len(c.PlatformToken) < 16 {
		r.Problem("OWNERSYNC_PLATFORM_TOKEN must be at least 16 characters")
	}
	return c, r.Err()
}
