package tenant

import (
	"net/url"
	"regexp"
	"strconv"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
)

// Links to the CRMs' own pages, where an admin fixes a CRM user or looks at a record
// (docs/crm-protocols.md#links-to-crm-pages). The console and the report emails use them.
//   - Salesforce: <instance URL>/lightning/r/<Object>/<id>/view, the Lightning record page of a
//     User, Contact or Lead (the instance URL redirects to the org's Lightning domain).
//   - HubSpot: https://<ui domain>/contacts/<portal>/record/0-1/<id> for a contact (0-1 is the
//     contact object's type id) and https://<ui domain>/settings/<portal>/users for an owner:
//     owners are the account's users, and an owner id has no page of its own.

var hubspotIDRE = regexp.MustCompile(`^[0-9]{1,20}$`)

// CRMUserURL is the CRM's page of a user of the tenant's connected provider; empty when the
// connection or the id does not allow one.
func (t *Tenant) CRMUserURL(p provider.Provider, id string) string {
	if t == nil || id == "" {
		return ""
	}
	switch p {
	case provider.Salesforce:
		return t.salesforceRecordURL("User", id)
	case provider.HubSpot:
		if hs := t.HubSpot; hs != nil && hs.PortalID > 0 && hubspotIDRE.MatchString(id) {
			return "https://" + hs.UIHost() + "/settings/" + strconv.FormatInt(hs.PortalID, 10) + "/users"
		}
	}
	return ""
}

// RecordURL is the CRM's page of a contact or lead (recordType "contact" or "lead").
func (t *Tenant) RecordURL(p provider.Provider, recordType, id string) string {
	if t == nil || id == "" {
		return ""
	}
	switch {
	case p == provider.Salesforce && recordType == "contact":
		return t.salesforceRecordURL("Contact", id)
	case p == provider.Salesforce && recordType == "lead":
		return t.salesforceRecordURL("Lead", id)
	case p == provider.HubSpot && recordType == "contact":
		if hs := t.HubSpot; hs != nil && hs.PortalID > 0 && hubspotIDRE.MatchString(id) {
			return "https://" + hs.UIHost() + "/contacts/" + strconv.FormatInt(hs.PortalID, 10) + "/record/0-1/" + id
		}
	}
	return ""
}

func (t *Tenant) salesforceRecordURL(object, id string) string {
	sf := t.Salesforce
	if sf == nil || sf.InstanceURL == "" {
		return ""
	}
	if _, err := sfid.To18(id); err != nil {
		return ""
	}
	u, err := url.Parse(sf.InstanceURL)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/lightning/r/" + object + "/" + url.PathEscape(id) + "/view"
}
