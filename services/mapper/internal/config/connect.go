package config

import (
	"strconv"
	"strings"

	"github.com/ownersync/ownersync/libs/envconfig"
)

// Connect is the operator's configuration of the console's Connect flows (issue 16).
type Connect struct {
	// IngressURL is ingress's public base URL (OWNERSYNC_INGRESS_URL): the Outbound Message
	// endpoint and the HubSpot webhook target the Connections page shows.
	IngressURL string
	// HubSpot public app (OWNERSYNC_HUBSPOT_APP_*); connecting HubSpot needs at least the client id
	// and secret. AppID and DeveloperAPIKey let ownersync create the webhook subscriptions.
	HubSpotClientID, HubSpotClientSecret, HubSpotDeveloperAPIKey string
	HubSpotAppID                                                 int64
	// HubSpotAuthorizeURL and HubSpotAPIURL override HubSpot's hosts (the sandboxes).
	HubSpotAuthorizeURL, HubSpotAPIURL string
	// Salesforce connected app (OWNERSYNC_SALESFORCE_APP_*).
	SalesforceClientID, SalesforceClientSecret string
	// SalesforceSandboxOrigins are extra login/instance origins allowed (the CRM sandbox of the dev
	// stack and tests; never in production): OWNERSYNC_SALESFORCE_SANDBOX_ORIGINS, comma-separated.
	SalesforceSandboxOrigins []string
}

func readConnect(r *envconfig.Reader) Connect {
	c := Connect{
		IngressURL:               strings.TrimRight(r.URL("OWNERSYNC_INGRESS_URL", "http://localhost:8080", "http", "https"), "/"),
		HubSpotClientID:          r.String("OWNERSYNC_HUBSPOT_APP_CLIENT_ID", ""),
		HubSpotClientSecret:      r.String("OWNERSYNC_HUBSPOT_APP_CLIENT_SECRET", ""),
		HubSpotDeveloperAPIKey:   r.String("OWNERSYNC_HUBSPOT_DEVELOPER_API_KEY", ""),
		HubSpotAuthorizeURL:      r.String("OWNERSYNC_HUBSPOT_AUTHORIZE_URL", ""),
		HubSpotAPIURL:            r.String("OWNERSYNC_HUBSPOT_API_URL", ""),
		SalesforceClientID:       r.String("OWNERSYNC_SALESFORCE_APP_CLIENT_ID", ""),
		SalesforceClientSecret:   r.String("OWNERSYNC_SALESFORCE_APP_CLIENT_SECRET", ""),
		SalesforceSandboxOrigins: r.List("OWNERSYNC_SALESFORCE_SANDBOX_ORIGINS"),
	}
	if v := r.String("OWNERSYNC_HUBSPOT_APP_ID", ""); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			r.Problem("OWNERSYNC_HUBSPOT_APP_ID must be the app's numeric id")
		}
		c.HubSpotAppID = id
	}
	if (c.HubSpotClientID == "") != (c.HubSpotClientSecret == "") {
		r.Problem("OWNERSYNC_HUBSPOT_APP_CLIENT_ID and OWNERSYNC_HUBSPOT_APP_CLIENT_SECRET are set together")
	}
	if (c.SalesforceClientID == "") != (c.SalesforceClientSecret == "") {
		r.Problem("OWNERSYNC_SALESFORCE_APP_CLIENT_ID and OWNERSYNC_SALESFORCE_APP_CLIENT_SECRET are set together")
	}
	return c
}
