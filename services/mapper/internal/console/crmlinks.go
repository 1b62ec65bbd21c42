package console

import (
	"html/template"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/tenant"
)

func crmUserLink(t *tenant.Tenant, prov, id string) template.HTML {
	return crmLink(t.CRMUserURL(provider.Provider(prov), id), id, providerName(prov)+" user")
}

func crmRecordLink(t *tenant.Tenant, prov, recordType, id string) template.HTML {
	return crmLink(t.RecordURL(provider.Provider(prov), recordType, id), id, providerName(prov)+" "+recordType)
}

// crmLink shows an id as code, linked to its page in the CRM when there is one
// (tenant.CRMUserURL, RecordURL), opening in a new tab: the admin leaves ownersync for the CRM.
func crmLink(href, id, label string) template.HTML {
	code := "<code>" + template.HTMLEscapeString(id) + "</code>"
	if href == "" {
		return template.HTML(code)
	}
	return template.HTML(`<a class="crm-link" href="` + template.HTMLEscapeString(href) + `" target="_blank" rel="noopener noreferrer">` +
		code + `<span class="sr-only"> (` + template.HTMLEscapeString(label) + `, opens in a new tab)</span></a>`)
}
