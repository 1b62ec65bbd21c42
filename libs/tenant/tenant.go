// Package tenant holds a tenant's configuration
// (docs/architecture.md#tenant-configuration-and-secrets): who it is, who gets its reports and how
// each CRM is connected. Secrets are references ("env:NAME", "file:/path"), never values.
package tenant

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidID reports whether id is a valid tenant id ([a-z0-9][a-z0-9_-]{0,62}). Tenant ids are
// subject tokens and KV key tokens, so anything else could break subject routing.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Direction says which way owners flow between the platform and one CRM.
type Direction string

// Directions.
const (
	Bidirectional Direction = "bidirectional"
	CRMToPlatform Direction = "crm_to_platform"
	PlatformToCRM Direction = "platform_to_crm"
)

// AllowsCRMToPlatform reports whether CRM owner changes reach the platform.
func (d Direction) AllowsCRMToPlatform() bool { return d == Bidirectional || d == CRMToPlatform }

// AllowsPlatformToCRM reports whether platform owner changes reach the CRM.
func (d Direction) AllowsPlatformToCRM() bool { return d == Bidirectional || d == PlatformToCRM }

// Tenant is one customer account of the platform.
type Tenant struct {
	ID               string    `json:"id" yaml:"id" bson:"_id"`
	Name             string    `json:"name" yaml:"name" bson:"name"`
	ReportRecipients []string  `json:"report_recipients" yaml:"report_recipients" bson:"report_recipients"`
	ReportsEnabled   bool      `json:"reports_enabled" yaml:"reports_enabled" bson:"reports_enabled"`
	Schedule         Schedule  `json:"schedule" yaml:"schedule" bson:"schedule"`
	Salesforce       *SFConfig `json:"salesforce,omitempty" yaml:"salesforce,omitempty" bson:"salesforce,omitempty"`
	HubSpot          *HSConfig `json:"hubspot,omitempty" yaml:"hubspot,omitempty" bson:"hubspot,omitempty"`
	// TimeZone is the IANA name (e.g. "Europe/Berlin") in which the console and the report emails
	// show times; a tenant admin may change it. Empty: the HubSpot account's time zone when
	// Connect HubSpot recorded one, else UTC (see Location).
	TimeZone  string    `json:"time_zone,omitempty" yaml:"time_zone,omitempty" bson:"time_zone,omitempty"`
	UpdatedAt time.Time `json:"updated_at" yaml:"-" bson:"updated_at"`
}

// Location is where the tenant's admins read times: TimeZone, else the HubSpot account's time
// zone, else UTC. An unknown name (which Validate refuses) counts as none.
func (t *Tenant) Location() *time.Location {
	if t.TimeZone != "" {
		if loc, err := time.LoadLocation(t.TimeZone); err == nil {
			return loc
		}
		return time.UTC
	}
	if loc, ok := t.HubSpot.Location(); ok {
		return loc
	}
	return time.UTC
}

// Schedule runs Sync Users periodically.
type Schedule struct {
	Enabled bool `json:"enabled" yaml:"enabled" bson:"enabled"`
	// Interval between runs, e.g. "1h"; HubSpot owners are never pulled more often than every 5 minutes.
	Interval string `json:"interval" yaml:"interval" bson:"interval"`
}

// MinScheduleInterval is the shortest schedule: HubSpot asks integrations not to poll owners more often.
const MinScheduleInterval = 5 * time.Minute

// IntervalDuration parses Interval; zero when unset or invalid.
func (s Schedule) IntervalDuration() time.Duration {
	d, err := time.ParseDuration(s.Interval)
	if err != nil {
		return 0
	}
	return d
}

// Settings are what every provider connection has.
type Settings struct {
	Enabled   bool      `json:"enabled" yaml:"enabled" bson:"enabled"`
	Direction Direction `json:"direction" yaml:"direction" bson:"direction"`
	// ObjectModules lists the record types synced: "contact", "lead" (lead is Salesforce only).
	ObjectModules       []string `json:"object_modules" yaml:"object_modules" bson:"object_modules"`
	RemapOnDeactivation bool     `json:"remap_on_deactivation" yaml:"remap_on_deactivation" bson:"remap_on_deactivation"`
	AutoProvisioning    bool     `json:"auto_provisioning" yaml:"auto_provisioning" bson:"auto_provisioning"`
	// FallbackOwnerID is the CRM user that owns records whose platform owner has no valid mapping.
	FallbackOwnerID string `json:"fallback_owner_id,omitempty" yaml:"fallback_owner_id,omitempty" bson:"fallback_owner_id,omitempty"`
	// APIBaseURL overrides the CRM's API base URL (sandboxes and tests).
	APIBaseURL string `json:"api_base_url,omitempty" yaml:"api_base_url,omitempty" bson:"api_base_url,omitempty"`
}

// SyncsRecordType reports whether the provider syncs owners of the record type ("contact", "lead").
func (s Settings) SyncsRecordType(t string) bool {
	if len(s.ObjectModules) == 0 {
		return t == "contact"
	}
	for _, m := range s.ObjectModules {
		if m == t {
			return true
		}
	}
	return false
}

// SFConfig connects one Salesforce org.
type SFConfig struct {
	Settings    `yaml:",inline" bson:",inline"`
	OrgID       string `json:"org_id" yaml:"org_id" bson:"org_id"`
	InstanceURL string `json:"instance_url" yaml:"instance_url" bson:"instance_url"`
	APIVersion  string `json:"api_version" yaml:"api_version" bson:"api_version"`
	Auth        SFAuth `json:"auth" yaml:"auth" bson:"auth"`
	// SharedKeyRef is the SHA-256 digest ("sha256:…") of the Outbound Message key, which the "key"
	// query parameter of Outbound Messages must carry. ownersync generates the key (RotateSharedKey)
	// and shows it once; only the digest is stored (issue 13 item 3). Empty on an enabled connection
	// means no key yet (KeyMissing).
	SharedKeyRef string `json:"shared_key_ref,omitempty" yaml:"shared_key_ref,omitempty" bson:"shared_key_ref,omitempty"`
	// SharedKeyCreatedAt is when the current key was generated (or migrated to a digest).
	SharedKeyCreatedAt time.Time `json:"shared_key_created_at,omitempty" yaml:"shared_key_created_at,omitempty" bson:"shared_key_created_at,omitempty"`
	// PreviousSharedKeyRef is the digest of the key being rotated out: Outbound Messages carrying it
	// are still accepted until PreviousSharedKeyUntil, so that the URLs of the org's outbound
	// messages can be updated one by one (issue 13 item 3).
	PreviousSharedKeyRef   string    `json:"previous_shared_key_ref,omitempty" yaml:"previous_shared_key_ref,omitempty" bson:"previous_shared_key_ref,omitempty"`
	PreviousSharedKeyUntil time.Time `json:"previous_shared_key_until,omitempty" yaml:"previous_shared_key_until,omitempty" bson:"previous_shared_key_until,omitempty"`
	// SharedKeyMissing is output only (API answers, see MarkKeyMissing): the connection is enabled
	// and has no Outbound Message key, so ingress refuses its messages while keys are required.
	// Never stored; ignored on input.
	SharedKeyMissing bool `json:"shared_key_missing,omitempty" yaml:"-" bson:"-"`
}

// SFAuth is the OAuth flow ownersync uses against Salesforce.
type SFAuth struct {
	// Flow is "client_credentials" or "jwt_bearer".
	Flow            string `json:"flow" yaml:"flow" bson:"flow"`
	ClientID        string `json:"client_id" yaml:"client_id" bson:"client_id"`
	ClientSecretRef string `json:"client_secret_ref,omitempty" yaml:"client_secret_ref,omitempty" bson:"client_secret_ref,omitempty"`
	// Username is the JWT bearer subject.
	Username      string `json:"username,omitempty" yaml:"username,omitempty" bson:"username,omitempty"`
	PrivateKeyRef string `json:"private_key_ref,omitempty" yaml:"private_key_ref,omitempty" bson:"private_key_ref,omitempty"`
	// TokenURL overrides <instance or login URL>/services/oauth2/token.
	TokenURL string `json:"token_url,omitempty" yaml:"token_url,omitempty" bson:"token_url,omitempty"`
	// Audience is the JWT aud (https://login.salesforce.com or https://test.salesforce.com).
	Audience string `json:"audience,omitempty" yaml:"audience,omitempty" bson:"audience,omitempty"`
	// RefreshTokenRef is the web_server flow's refresh token (a stored: reference, issue 16).
	RefreshTokenRef string `json:"refresh_token_ref,omitempty" yaml:"refresh_token_ref,omitempty" bson:"refresh_token_ref,omitempty"`
	// ConnectedBy and ConnectedAt record who ran "Connect Salesforce" and when.
	ConnectedBy string    `json:"connected_by,omitempty" yaml:"connected_by,omitempty" bson:"connected_by,omitempty"`
	ConnectedAt time.Time `json:"connected_at,omitzero" yaml:"connected_at,omitempty" bson:"connected_at,omitempty"`
}

// HSConfig connects one HubSpot account (portal).
type HSConfig struct {
	Settings `yaml:",inline" bson:",inline"`
	PortalID int64 `json:"portal_id" yaml:"portal_id" bson:"portal_id"`
	AppID    int64 `json:"app_id" yaml:"app_id" bson:"app_id"`
	// ClientSecretRef is the app's client secret, the key of webhook signatures.
	ClientSecretRef string `json:"client_secret_ref" yaml:"client_secret_ref" bson:"client_secret_ref"`
	// LegacySignatures accepts v1 signatures for an app that cannot send v3.
	LegacySignatures bool   `json:"legacy_signatures,omitempty" yaml:"legacy_signatures,omitempty" bson:"legacy_signatures,omitempty"`
	Auth             HSAuth `json:"auth" yaml:"auth" bson:"auth"`
	// TimeZone is the account's time zone (an IANA name, e.g. "America/New_York"): HubSpot's daily
	// API limit resets at its midnight. Empty: read from the account info API
	// (GET /account-info/v3/details, timeZone) when ownersync connects.
	TimeZone string `json:"time_zone,omitempty" yaml:"time_zone,omitempty" bson:"time_zone,omitempty"`
	// UIDomain is the host of the account's HubSpot app (account info's uiDomain: app.hubspot.com,
	// or app-eu1.hubspot.com for an account hosted in the EU), recorded by Connect HubSpot; links to
	// HubSpot pages use it. Empty: app.hubspot.com.
	UIDomain string `json:"ui_domain,omitempty" yaml:"ui_domain,omitempty" bson:"ui_domain,omitempty"`
}

var hubspotUIRE = regexp.MustCompile(`^app(-[a-z0-9]{1,10})?\.hubspot\.com$`)

// ValidHubSpotUIDomain reports whether d is a HubSpot app host (app.hubspot.com, app-eu1.hubspot.com).
func ValidHubSpotUIDomain(d string) bool { return hubspotUIRE.MatchString(d) }

// UIHost is the host of the account's HubSpot app: UIDomain when valid, else app.hubspot.com.
func (h *HSConfig) UIHost() string {
	if h != nil && ValidHubSpotUIDomain(h.UIDomain) {
		return h.UIDomain
	}
	return "app.hubspot.com"
}

// Location returns the account's configured time zone; false when none is configured or the name
// is unknown.
func (h *HSConfig) Location() (*time.Location, bool) {
	if h == nil || h.TimeZone == "" {
		return nil, false
	}
	loc, err := time.LoadLocation(h.TimeZone)
	return loc, err == nil
}

// HSAuth is how ownersync calls HubSpot's APIs.
type HSAuth struct {
	// Kind is "private_app" (static token) or "oauth" (refresh token).
	Kind            string `json:"kind" yaml:"kind" bson:"kind"`
	TokenRef        string `json:"token_ref,omitempty" yaml:"token_ref,omitempty" bson:"token_ref,omitempty"`
	ClientID        string `json:"client_id,omitempty" yaml:"client_id,omitempty" bson:"client_id,omitempty"`
	ClientSecretRef string `json:"client_secret_ref,omitempty" yaml:"client_secret_ref,omitempty" bson:"client_secret_ref,omitempty"`
	RefreshTokenRef string `json:"refresh_token_ref,omitempty" yaml:"refresh_token_ref,omitempty" bson:"refresh_token_ref,omitempty"`
	TokenURL        string `json:"token_url,omitempty" yaml:"token_url,omitempty" bson:"token_url,omitempty"`
	// Scopes are the scopes granted by "Connect HubSpot"; ConnectedBy/At who ran it and when.
	Scopes      []string  `json:"scopes,omitempty" yaml:"scopes,omitempty" bson:"scopes,omitempty"`
	ConnectedBy string    `json:"connected_by,omitempty" yaml:"connected_by,omitempty" bson:"connected_by,omitempty"`
	ConnectedAt time.Time `json:"connected_at,omitzero" yaml:"connected_at,omitempty" bson:"connected_at,omitempty"`
}

// ProviderSettings returns the common settings of a connected provider, or false.
func (t *Tenant) ProviderSettings(p provider.Provider) (Settings, bool) {
	switch p {
	case provider.Salesforce:
		if t.Salesforce != nil {
			return t.Salesforce.Settings, true
		}
	case provider.HubSpot:
		if t.HubSpot != nil {
			return t.HubSpot.Settings, true
		}
	}
	return Settings{}, false
}

// Connected lists the enabled providers in a stable order.
func (t *Tenant) Connected() []provider.Provider {
	var out []provider.Provider
	for _, p := range provider.All {
		if s, ok := t.ProviderSettings(p); ok && s.Enabled {
			out = append(out, p)
		}
	}
	return out
}

// ValidationError lists every problem of a tenant configuration at once.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "invalid tenant configuration: " + strings.Join(e.Problems, "; ")
}

// ErrNotFound is returned by stores when no tenant matches.
var ErrNotFound = errors.New("tenant not found")

// ErrSourceConflict is returned by lookups by source (Salesforce org id, HubSpot portal) when more
// than one tenant claims the source: its webhooks belong to none of them until an operator resolves
// the conflict (docs/architecture.md#tenant-configuration-and-secrets, one tenant per source).
var ErrSourceConflict = errors.New("source claimed by more than one tenant")

// Normalize fills defaults (direction, modules, API version, remap) in place and stores the
// Salesforce org id in its 18-character form (the one ingress compares and the unique index holds).
func (t *Tenant) Normalize() {
	t.ID = strings.TrimSpace(t.ID)
	if t.Salesforce != nil && t.Salesforce.OrgID != "" {
		if id18, err := sfid.To18(t.Salesforce.OrgID); err == nil {
			t.Salesforce.OrgID = id18
		}
	}
	norm := func(s *Settings, modules []string) {
		if s.Direction == "" {
			s.Direction = Bidirectional
		}
		if len(s.ObjectModules) == 0 {
			s.ObjectModules = modules
		}
	}
	if t.Salesforce != nil {
		norm(&t.Salesforce.Settings, []string{"contact", "lead"})
		if t.Salesforce.APIVersion == "" {
			t.Salesforce.APIVersion = "62.0"
		}
		if t.Salesforce.Auth.Flow == "" {
			t.Salesforce.Auth.Flow = "client_credentials"
		}
		t.Salesforce.SharedKeyMissing = false // output only
	}
	if t.HubSpot != nil {
		norm(&t.HubSpot.Settings, []string{"contact"})
		if t.HubSpot.Auth.Kind == "" {
			t.HubSpot.Auth.Kind = "private_app"
		}
	}
	if t.Schedule.Enabled && t.Schedule.Interval == "" {
		t.Schedule.Interval = "1h"
	}
}

// Validate reports every problem at once as a *ValidationError.
func (t *Tenant) Validate() error {
	var p []string
	add := func(f string, a ...any) { p = append(p, fmt.Sprintf(f, a...)) }
	if !ValidID(t.ID) {
		add("id %q must match [a-z0-9][a-z0-9_-]{0,62}", t.ID)
	}
	for _, r := range t.ReportRecipients {
		if _, err := mail.ParseAddress(r); err != nil {
			add("report recipient %q is not an email address", r)
		}
	}
	if t.Schedule.Enabled {
		if d := t.Schedule.IntervalDuration(); d < MinScheduleInterval {
			add("schedule interval %q must be a duration of at least %s", t.Schedule.Interval, MinScheduleInterval)
		}
	}
	checkSettings := func(name string, s Settings, allowed ...string) {
		switch s.Direction {
		case Bidirectional, CRMToPlatform, PlatformToCRM:
		default:
			add("%s.direction %q must be bidirectional, crm_to_platform or platform_to_crm", name, s.Direction)
		}
		for _, m := range s.ObjectModules {
			ok := false
			for _, a := range allowed {
				ok = ok || m == a
			}
			if !ok {
				add("%s.object_modules: %q must be one of %s", name, m, strings.Join(allowed, ", "))
			}
		}
		if s.APIBaseURL != "" {
			if u, err := url.Parse(s.APIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("%s.api_base_url %q must be an http(s) URL", name, s.APIBaseURL)
			}
		}
	}
	checkRef := func(name, ref string, required bool) {
		if ref == "" {
			if required {
				add("%s is required", name)
			}
			return
		}
		if !IsSecretRef(ref) {
			add("%s must be a secret reference (env:NAME, file:/path or stored:<tenant>/<name>), not a value", name)
		} else if st, _, ok := strings.Cut(strings.TrimPrefix(ref, "stored:"), "/"); strings.HasPrefix(ref, "stored:") && (!ok || st != t.ID) {
			add("%s names another tenant's stored secret", name)
		}
	}
	if sf := t.Salesforce; sf != nil {
		checkSettings("salesforce", sf.Settings, "contact", "lead")
		if len(sf.OrgID) != 15 && len(sf.OrgID) != 18 || !strings.HasPrefix(sf.OrgID, "00D") {
			add("salesforce.org_id %q must be a 15- or 18-character organization id (00D…)", sf.OrgID)
		}
		if sf.FallbackOwnerID != "" && !strings.HasPrefix(sf.FallbackOwnerID, "005") {
			add("salesforce.fallback_owner_id %q must be a user id (005…)", sf.FallbackOwnerID)
		}
		switch sf.Auth.Flow {
		case "client_credentials":
			checkRef("salesforce.auth.client_secret_ref", sf.Auth.ClientSecretRef, sf.Enabled)
		case "jwt_bearer":
			checkRef("salesforce.auth.private_key_ref", sf.Auth.PrivateKeyRef, sf.Enabled)
			if sf.Enabled && sf.Auth.Username == "" {
				add("salesforce.auth.username is required for jwt_bearer")
			}
		case "web_server":
			// Set by "Connect Salesforce" (issue 16): a refresh token stored encrypted.
			checkRef("salesforce.auth.client_secret_ref", sf.Auth.ClientSecretRef, sf.Enabled)
			checkRef("salesforce.auth.refresh_token_ref", sf.Auth.RefreshTokenRef, sf.Enabled)
			if sf.Enabled && (sf.Auth.ClientID == "" || sf.Auth.TokenURL == "") {
				add("salesforce.auth.client_id and token_url are required for web_server")
			}
		default:
			add("salesforce.auth.flow %q must be client_credentials, jwt_bearer or web_server", sf.Auth.Flow)
		}
		// One model (issue 13 item 3): ownersync generates the key and keeps its digest; a secret
		// reference (env:, file:, stored:) is no longer a shared key.
		for _, k := range [][2]string{{"salesforce.shared_key_ref", sf.SharedKeyRef}, {"salesforce.previous_shared_key_ref", sf.PreviousSharedKeyRef}} {
			if name, ref := k[0], k[1]; ref != "" && !IsSharedKeyDigest(ref) {
				add("%s must be the digest (sha256:<64 hex>) of a key ownersync generated; generate or rotate the key with "+
					"POST /v1/tenants/{tenant}/salesforce/shared-key or the console's Connections page instead", name)
			}
		}
	}
	if t.TimeZone != "" {
		if _, err := time.LoadLocation(t.TimeZone); err != nil || t.TimeZone == "Local" {
			add("time_zone %q is not a known time zone (an IANA name such as Europe/Berlin)", t.TimeZone)
		}
	}
	if hs := t.HubSpot; hs != nil {
		checkSettings("hubspot", hs.Settings, "contact")
		if hs.PortalID <= 0 {
			add("hubspot.portal_id must be a positive number")
		}
		checkRef("hubspot.client_secret_ref", hs.ClientSecretRef, hs.Enabled)
		if hs.UIDomain != "" && !ValidHubSpotUIDomain(hs.UIDomain) {
			add("hubspot.ui_domain %q is not a HubSpot app host (app.hubspot.com, app-eu1.hubspot.com)", hs.UIDomain)
		}
		if hs.TimeZone != "" {
			if _, err := time.LoadLocation(hs.TimeZone); err != nil {
				add("hubspot.time_zone %q is not a known time zone (an IANA name such as America/New_York)", hs.TimeZone)
			}
		}
		switch hs.Auth.Kind {
		case "private_app":
			checkRef("hubspot.auth.token_ref", hs.Auth.TokenRef, hs.Enabled)
		case "oauth":
			checkRef("hubspot.auth.client_secret_ref", hs.Auth.ClientSecretRef, hs.Enabled)
			checkRef("hubspot.auth.refresh_token_ref", hs.Auth.RefreshTokenRef, hs.Enabled)
		default:
			add("hubspot.auth.kind %q must be private_app or oauth", hs.Auth.Kind)
		}
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// IsSecretRef reports whether s is a secret reference rather than a literal secret.
func IsSecretRef(s string) bool {
	return strings.HasPrefix(s, "env:") && len(s) > 4 || strings.HasPrefix(s, "file:/") || isStoredRef(s)
}

// isStoredRef reports whether s is "stored:<tenant>/<name>", a value a Connect flow stored
// encrypted (libs/secretbox).
func isStoredRef(s string) bool {
	rest, ok := strings.CutPrefix(s, "stored:")
	t, name, ok2 := strings.Cut(rest, "/")
	return ok && ok2 && t != "" && name != ""
}

// ErrSourceClaimed is returned when a configuration names a Salesforce org or HubSpot portal that
// another tenant is connected to (issue 13 item 2).
var ErrSourceClaimed = errors.New("source connected to another tenant")

// SourceClaimedError names the source a save was refused for, and (for logs and the operator,
// never a tenant admin's answer) the tenant that holds it.
type SourceClaimedError struct {
	// Source is "salesforce org <18-char id>" or "hubspot portal <id>".
	Source string
	// Holder is the tenant connected to it, when known.
	Holder string
}

func (e *SourceClaimedError) Error() string {
	return e.Source + " is already connected to another tenant"
}

func (e *SourceClaimedError) Is(target error) bool { return target == ErrSourceClaimed }
