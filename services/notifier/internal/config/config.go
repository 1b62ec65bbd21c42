// Package config reads notifier's configuration from the environment.
package config

import (
	"net/mail"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
)

// Config is notifier's configuration.
type Config struct {
	Base servicekit.Config
	// SMTPURL is smtp://user:pass@host:port (STARTTLS options in the query) or smtps:// for implicit TLS.
	SMTPURL string
	// From is the sender address.
	From string
	// AlertDigestInterval is the least time between two alert emails to one tenant.
	AlertDigestInterval time.Duration
	// AlertSettle is how long the first alert of a burst waits for the others.
	AlertSettle time.Duration
	// DigestTick is how often due digests are checked.
	DigestTick time.Duration
	// AdminURL is the admin console's public base URL for links.
	AdminURL string
	// MaxRecipients caps the recipients of one email; a longer report list is cut to it.
	MaxRecipients int
	// DigestMaxAttempts is how many times an alert digest is tried before it goes to the DLQ.
	DigestMaxAttempts int
}

// Load reads the configuration and reports every problem at once.
// BaseConfig is the part of the configuration every service has (servicekit.ServiceConfig).
func (c Config) BaseConfig() servicekit.Config { return c.Base }

func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Base:                servicekit.ReadConfig(r, "notifier", ":8083"),
		SMTPURL:             r.URL("SMTP_URL", "", "smtp", "smtps"),
		From:                r.String("OWNERSYNC_MAIL_FROM", "ownersync <noreply@ownersync.local>"),
		AlertDigestInterval: r.Duration("OWNERSYNC_ALERT_DIGEST_INTERVAL", 15*time.Minute),
		AlertSettle:         r.Duration("OWNERSYNC_ALERT_SETTLE", 30*time.Second),
		DigestTick:          r.Duration("OWNERSYNC_DIGEST_TICK", time.Second),
		AdminURL:            strings.TrimRight(r.URL("OWNERSYNC_ADMIN_URL", "http://localhost:8081", "http", "https"), "/"),
		MaxRecipients:       r.Int("OWNERSYNC_MAX_RECIPIENTS", 50, 1, 1000),
		DigestMaxAttempts:   r.Int("OWNERSYNC_ALERT_DIGEST_MAX_ATTEMPTS", 5, 1, 100),
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		r.Problem("OWNERSYNC_MAIL_FROM=%q is not an email address like \"ownersync <noreply@example.com>\": %v", c.From, err)
	}
	if c.SMTPURL == "" {
		r.Problem("SMTP_URL is required (smtp://host:port or smtps://host:port)")
	}
	return c, r.Err()
}
