// Package config reads mapper's configuration from the environment.
package config

import (
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

// Config is mapper's configuration.
type Config struct {
	Base servicekit.Config
	// TenantsFile seeds tenants at start (development).
	TenantsFile string
	// OperatorToken is the admin API's operator token (all tenants); stored hashed.
	OperatorToken string
	// PreviousOperatorToken is accepted as well until PreviousOperatorTokenUntil during a rotation
	// (OWNERSYNC_OPERATOR_TOKEN_PREVIOUS, OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL, RFC 3339).
	PreviousOperatorToken      string
	PreviousOperatorTokenUntil time.Time
	// TenantTokens are per-tenant admin tokens "tenant=token", stored hashed.
	TenantTokens map[string]string
	// AdminURL is the public base URL of the admin API and console (links in reports).
	AdminURL string
	// IngressURL is ingress's public base URL (its OWNERSYNC_PUBLIC_URL): a generated Outbound
	// Message key is shown with the endpoint URL under it.
	IngressURL string
	// SchedulerInterval is how often due Sync Users schedules are checked.
	SchedulerInterval time.Duration
	// CRMTimeout bounds each CRM API call.
	CRMTimeout time.Duration
	// PlatformUserURL is where the console sends admins to fix a platform user ({tenant} and {id}
	// are filled in); "#" when unset.
	PlatformUserURL string
	// BulkWrites is how Sync Users replaces documents in bulk: per_document (MongoDB; each
	// replacement atomic; also the embedded FerretDB, whose wrapper indexes _id lookups) or
	// delete_insert (a FerretDB v1 without that index, where every write by _id scans; see
	// mongostore.BulkWrites). OWNERSYNC_MONGODB_BULK_WRITES, default per_document.
	BulkWrites mongostore.BulkWrites
	// EventLockWait bounds how long an event waits for a Sync Users run of its tenant and provider
	// before it is redelivered later; below the consumers' AckWait (30 s).
	EventLockWait time.Duration
	// SyncListCap caps the changes and errors listed per provider in a run's report and record
	// (the totals are always complete).
	SyncListCap int
	// SyncLockTTL is how long a Sync Users run's lock lives without a refresh (a crashed run's
	// tenant is free again after it).
	SyncLockTTL time.Duration
	// SyncMaxUsers, SyncMaxPages and SyncRunDeadline bound a Sync Users run: users and pages
	// per provider, and the time from its start to the end of its CRM reads
	// (OWNERSYNC_SYNC_MAX_USERS 200000, OWNERSYNC_SYNC_MAX_PAGES 5000, OWNERSYNC_SYNC_RUN_DEADLINE
	// 30m). Exceeding one fails the run before anything is written.
	SyncMaxUsers    int
	SyncMaxPages    int
	SyncRunDeadline time.Duration
	// SignInClientPerMinute limits console sign-in attempts per client address
	// (OWNERSYNC_SIGNIN_CLIENT_PER_MINUTE, default 10; burst the same).
	SignInClientPerMinute int
	// SignInGlobalPerSecond is the ceiling on sign-in attempts of all clients together
	// (OWNERSYNC_SIGNIN_GLOBAL_PER_SECOND, default 50; burst ten seconds' worth). It must stay
	// at least 100 clients' worth, so that no single client can reach it.
	SignInGlobalPerSecond int
	// Connect configures the console's Connect flows (connect.go).
	Connect Connect
	// Admin are the admin API's limits: request bodies up to 1 MiB, and 20 runs and 100 dead
	// letters listed when a request names no limit.
	Admin httpapi.Config
}

// (Connect is read by readConnect, connect.go.)

// maxEventLockWait keeps an event's wait for the tenant's lock inside its consumer's AckWait (30 s).
const maxEventLockWait = 25 * time.Second

// Load reads the configuration and reports every problem at once.
// BaseConfig is the part of the configuration every service has (servicekit.ServiceConfig).
func (c Config) BaseConfig() servicekit.Config { return c.Base }

func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Base:              servicekit.ReadConfig(r, "mapper", ":8081"),
		TenantsFile:       r.String("OWNERSYNC_TENANTS_FILE", ""),
		OperatorToken:     r.Required("OWNERSYNC_OPERATOR_TOKEN"),
		TenantTokens:      map[string]string{},
		AdminURL:          strings.TrimRight(r.URL("OWNERSYNC_ADMIN_URL", "http://localhost:8081", "http", "https"), "/"),
		IngressURL:        strings.TrimRight(r.URL("OWNERSYNC_INGRESS_URL", "http://localhost:8080", "http", "https"), "/"),
		SchedulerInterval: r.Duration("OWNERSYNC_SCHEDULER_INTERVAL", 30*time.Second),
		CRMTimeout:        r.Duration("OWNERSYNC_CRM_TIMEOUT", 30*time.Second),
		PlatformUserURL:   r.String("OWNERSYNC_PLATFORM_USER_URL", ""),
		BulkWrites:        mongostore.BulkWrites(r.String("OWNERSYNC_MONGODB_BULK_WRITES", string(mongostore.PerDocument))),
		EventLockWait:     r.Duration("OWNERSYNC_EVENT_LOCK_WAIT", 20*time.Second),
		SyncListCap:       r.Int("OWNERSYNC_SYNC_LIST_CAP", 100, 1, 10000),
		SyncLockTTL:       r.Duration("OWNERSYNC_SYNC_LOCK_TTL", 2*time.Minute),
		SyncMaxUsers:      r.Int("OWNERSYNC_SYNC_MAX_USERS", 200000, 1, 100000000),
		SyncMaxPages:      r.Int("OWNERSYNC_SYNC_MAX_PAGES", 5000, 1, 10000000),
		SyncRunDeadline:   r.Duration("OWNERSYNC_SYNC_RUN_DEADLINE", 30*time.Minute),

		SignInClientPerMinute: r.Int("OWNERSYNC_SIGNIN_CLIENT_PER_MINUTE", 10, 1, 600),
		SignInGlobalPerSecond: r.Int("OWNERSYNC_SIGNIN_GLOBAL_PER_SECOND", 50, 1, 100000),

		Admin: httpapi.Config{MaxBodyBytes: 1 << 20, RunsLimit: 20, DLQLimit: 100,
			KeyOverlap: r.Duration("OWNERSYNC_SHARED_KEY_OVERLAP", 72*time.Hour)},
	}
	c.Admin.SalesforceWebhookURL = c.IngressURL + "/webhooks/salesforce"
	if c.Admin.KeyOverlap <= 0 || c.Admin.KeyOverlap > 30*24*time.Hour {
		r.Problem("OWNERSYNC_SHARED_KEY_OVERLAP must be longer than zero and at most 720h")
	}
	if c.SignInGlobalPerSecond*60 < 100*c.SignInClientPerMinute {
		r.Problem("OWNERSYNC_SIGNIN_GLOBAL_PER_SECOND must be at least 100 clients' worth of OWNERSYNC_SIGNIN_CLIENT_PER_MINUTE (%d/s), so one client cannot reach it", (100*c.SignInClientPerMinute+59)/60)
	}
	if c.BulkWrites != mongostore.PerDocument && c.BulkWrites != mongostore.DeleteInsert {
		r.Problem("OWNERSYNC_MONGODB_BULK_WRITES must be per_document or delete_insert")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"OWNERSYNC_SCHEDULER_INTERVAL", c.SchedulerInterval}, {"OWNERSYNC_CRM_TIMEOUT", c.CRMTimeout}, {"OWNERSYNC_SYNC_LOCK_TTL", c.SyncLockTTL}, {"OWNERSYNC_SYNC_RUN_DEADLINE", c.SyncRunDeadline}} {
		if d.v <= 0 {
			r.Problem("%s must be longer than zero", d.name)
		}
	}
	if c.EventLockWait <= 0 || c.EventLockWait > maxEventLockWait {
		r.Problem("OWNERSYNC_EVENT_LOCK_WAIT must be longer than zero and at most %s (the consumers' AckWait is 30s)", maxEventLockWait)
	}
	if c.OperatorToken != "" && len(c.OperatorToken) < 16 {
		r.Problem("OWNERSYNC_OPERATOR_TOKEN must be at least 16 characters")
	}
	c.PreviousOperatorToken = r.String("OWNERSYNC_OPERATOR_TOKEN_PREVIOUS", "")
	until := r.String("OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL", "")
	switch {
	case c.PreviousOperatorToken == "" && until != "":
		r.Problem("OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL is set without OWNERSYNC_OPERATOR_TOKEN_PREVIOUS")
	case c.PreviousOperatorToken == "":
	case len(c.PreviousOperatorToken) < 16:
		r.Problem("OWNERSYNC_OPERATOR_TOKEN_PREVIOUS must be at least 16 characters")
	case c.PreviousOperatorToken == c.OperatorToken:
		r.Problem("OWNERSYNC_OPERATOR_TOKEN_PREVIOUS must differ from OWNERSYNC_OPERATOR_TOKEN")
	default:
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			r.Problem("OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL must be an RFC 3339 time (e.g. 2026-12-24T12:00:00Z): when the previous operator token stops being accepted")
		}
		c.PreviousOperatorTokenUntil = t
	}
	for _, kv := range r.List("OWNERSYNC_TENANT_TOKENS") {
		t, tok, ok := strings.Cut(kv, "=")
		if !ok || t == "" || len(tok) < 16 {
			r.Problem("OWNERSYNC_TENANT_TOKENS entries must be tenant=token with tokens of at least 16 characters")
			continue
		}
		c.TenantTokens[t] = tok
	}
	c.Connect = readConnect(r)
	if c.TenantsFile != "" {
		// Read now, so a wrong path or bad file is reported with every other problem, before any
		// connection is made.
		if _, err := tenantstore.LoadSeed(c.TenantsFile); err != nil {
			r.Problem("OWNERSYNC_TENANTS_FILE=%q: %v", c.TenantsFile, err)
		}
	}
	return c, r.Err()
}
