package tenant

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// BehaviourFields names what a tenant admin may change with a tenant token (issue 13 item 1): the
// tenant's name, reports, schedule and time zone, and per provider whether it is enabled, the direction,
// object modules, remap on deactivation, auto-provisioning and the fallback owner. Everything
// else is a connection field (ConnectionChanges), which only the operator may change: the ids that
// route webhooks, the URLs ownersync calls, how it authenticates and where its secrets are.
const BehaviourFields = "name, report_recipients, reports_enabled, schedule, time_zone, and per provider enabled, direction, " +
	"object_modules, remap_on_deactivation, auto_provisioning, fallback_owner_id"

// connectionFields lists a tenant's connection fields by their JSON paths, with their values in a
// comparable form. A provider section's presence is itself a field: adding or removing a
// connection is a connection change.
func connectionFields(t *Tenant) map[string]string {
	m := map[string]string{}
	if t == nil {
		return m
	}
	if sf := t.Salesforce; sf != nil {
		for k, v := range map[string]string{
			"":                          "connected",
			"org_id":                    sf.OrgID,
			"instance_url":              sf.InstanceURL,
			"api_version":               sf.APIVersion,
			"api_base_url":              sf.APIBaseURL,
			"auth.flow":                 sf.Auth.Flow,
			"auth.client_id":            sf.Auth.ClientID,
			"auth.client_secret_ref":    sf.Auth.ClientSecretRef,
			"auth.username":             sf.Auth.Username,
			"auth.private_key_ref":      sf.Auth.PrivateKeyRef,
			"auth.token_url":            sf.Auth.TokenURL,
			"auth.audience":             sf.Auth.Audience,
			"auth.refresh_token_ref":    sf.Auth.RefreshTokenRef,
			"auth.connected_by":         sf.Auth.ConnectedBy,
			"auth.connected_at":         sf.Auth.ConnectedAt.UTC().Format(time.RFC3339Nano),
			"shared_key_ref":            sf.SharedKeyRef,
			"shared_key_created_at":     sf.SharedKeyCreatedAt.UTC().Format(time.RFC3339Nano),
			"previous_shared_key_ref":   sf.PreviousSharedKeyRef,
			"previous_shared_key_until": sf.PreviousSharedKeyUntil.UTC().Format(time.RFC3339Nano),
		} {
			m[join("salesforce", k)] = v
		}
	}
	if hs := t.HubSpot; hs != nil {
		for k, v := range map[string]string{
			"":                       "connected",
			"portal_id":              strconv.FormatInt(hs.PortalID, 10),
			"app_id":                 strconv.FormatInt(hs.AppID, 10),
			"client_secret_ref":      hs.ClientSecretRef,
			"legacy_signatures":      strconv.FormatBool(hs.LegacySignatures),
			"api_base_url":           hs.APIBaseURL,
			"time_zone":              hs.TimeZone,
			"ui_domain":              hs.UIDomain,
			"auth.kind":              hs.Auth.Kind,
			"auth.token_ref":         hs.Auth.TokenRef,
			"auth.client_id":         hs.Auth.ClientID,
			"auth.client_secret_ref": hs.Auth.ClientSecretRef,
			"auth.refresh_token_ref": hs.Auth.RefreshTokenRef,
			"auth.token_url":         hs.Auth.TokenURL,
			"auth.scopes":            strings.Join(hs.Auth.Scopes, " "),
			"auth.connected_by":      hs.Auth.ConnectedBy,
			"auth.connected_at":      hs.Auth.ConnectedAt.UTC().Format(time.RFC3339Nano),
		} {
			m[join("hubspot", k)] = v
		}
	}
	return m
}

func join(section, field string) string {
	if field == "" {
		return section
	}
	return section + "." + field
}

// ConnectionChanges returns the connection fields (JSON paths, sorted) whose values differ between
// two normalised configurations: a provider section added or removed is named alone ("salesforce").
// Empty when next changes only behaviour settings (BehaviourFields).
func ConnectionChanges(prev, next *Tenant) []string {
	a, b := connectionFields(prev), connectionFields(next)
	var out []string
	for _, section := range []string{"salesforce", "hubspot"} {
		_, had := a[section]
		_, has := b[section]
		if had != has {
			out = append(out, section)
		}
	}
	for k, v := range b {
		if _, section := a[sectionOf(k)]; section && k != sectionOf(k) && a[k] != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func sectionOf(path string) string {
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			return path[:i]
		}
	}
	return path
}

// RemovedConnections names the provider sections prev has and next does not.
func RemovedConnections(prev, next *Tenant) []string {
	var out []string
	if prev.Salesforce != nil && next.Salesforce == nil {
		out = append(out, "salesforce")
	}
	if prev.HubSpot != nil && next.HubSpot == nil {
		out = append(out, "hubspot")
	}
	return out
}
