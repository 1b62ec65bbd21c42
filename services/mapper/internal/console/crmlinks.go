package console

import (
	"html/template"
	"net/url"
	"regexp"
	"strconv"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Links to the CRMs' own pages, where an admin fixes a CRM user or looks at a record
// (docs/crm-protocols.md#links-to-crm-pages):
//   - Salesforce: <instance URL>/lightning/r/<Object>/<id>/view, the Lightning record page of a
//     User, Contact or Lead (the instance URL redirects to the org's Lightning domain).
//   - HubSpot: https://<ui domain>/contacts/<portal>/record/0-1/<id> for a contact (0-1 is the
//     contact object's type id) and https://<ui domain>/settings/<portal>/users for an owner:
//     owners are the account's users, and an owner id has no page of its own.

var hubspotIDRE = regexp.MustCompile(`^[0-9]{1,20}$`)

// crmUserURL is the CRM's page of a user of the tenant's connected provider; empty when the
// connection or the id does not allow one.
func crmUserURL(t *tenant.Tenant, prov, id string) string {
	if t == nil || id == "" {
		return ""
	}
	switch prov {
	case mapping.Salesforce:
		return salesforceRecordURL(t, "User", id)
	case mapping.HubSpot:
		if hs := t.HubSpot; hs != nil && hs.PortalID > 0 && hubspotIDRE.MatchString(id) {
			return "https://" + hs.UIHost() + "/settings/" + strconv.FormatInt(hs.PortalID, 10) + "/users"
		}
	}
	return ""
}

// crmRecordURL is the CRM's page of a contact or lead ("contact", "lead").
func crmRecordURL(t *tenant.Tenant, prov, recordType, id string) string {
	if t == nil || id == "" {
		return ""
	}
	switch {
	case prov == mapping.Salesforce && recordType == "contact":
		return salesforceRecordURL(t, "Contact", id)
	case prov == mapping.Salesforce && recordType == "lead":
		return salesforceRecordURL(t, "Lead", id)
	case prov == mapping.HubSpot && recordType == "contact":
		if hs := t.HubSpot; hs != nil && hs.PortalID > 0 && hubspotIDRE.MatchString(id) {
			return "https://" + hs.UIHost() + "/contacts/" + strconv.FormatInt(hs.PortalID, 10) + "/record/0-1/" + id
		}
	}
	return ""
}

func salesforceRecordURL(t *tenant.Tenant, object, id string) string {
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

func crmUserLink(t *tenant.Tenant, prov, id string) template.HTML {
	return crmLink(crmUserURL(t, prov, id), id, providerName(prov)+" user")
}

func crmRecordLink(t *tenant.Tenant, prov, recordType, id string) template.HTML {
	return crmLink(crmRecordURL(t, prov, recordType, id), id, providerName(prov)+" "+recordType)
}

// crmLink shows an id as code, linked to its page in the CRM when there is one (opening in a new
// tab: the admin leaves ownersync for the CRM).
func crmLink(href, id, label string) template.HTML {
	code := "<code>" + template.HTMLEscapeString(id) + "</code>"
	if href == "" {
		return template.HTML(code)
	}
	return template.HTML(`<a class="crm-link" href="` + template.HTMLEscapeString(href) + `" target="_blank" rel="noopener noreferrer">` +
		code + `<span class="sr-only"> (` + template.HTMLEscapeString(label) + `, opens in a new tab)</span></a>`)
}
