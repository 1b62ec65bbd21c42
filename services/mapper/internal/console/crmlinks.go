package console

import (
	"fmt"
	"html/template"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/tenant"
)

// crmUserLink and crmRecordLink take the provider as any: templates pass view fields
// (provider.Provider) and query values (strings) alike.
func crmUserLink(t *tenant.Tenant, prov any, id string) template.HTML {
	return crmLink(t.CRMUserURL(providerOf(prov), id), id, providerName(prov)+" user")
}

func crmRecordLink(t *tenant.Tenant, prov any, recordType, id string) template.HTML {
	return crmLink(t.RecordURL(providerOf(prov), recordType, id), id, providerName(prov)+" "+recordType)
}

func providerOf(v any) provider.Provider { return provider.Provider(fmt.Sprint(v)) }

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
