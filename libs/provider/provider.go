// Package provider names the CRMs ownersync connects to. Provider is the one type for a CRM's
// name in every service: in subjects, KV keys, URLs, tenant configuration, documents and the
// domain. It is pure (no proto); providerpb converts it to and from the events' enum.
package provider

// Provider is a CRM: "salesforce" or "hubspot".
type Provider string

// The providers. The values are the names used in subjects, KV keys, URLs and configuration.
const (
	Salesforce Provider = "salesforce"
	HubSpot    Provider = "hubspot"
)

// All lists every provider in a stable order (Salesforce first).
var All = []Provider{Salesforce, HubSpot}

// Parse returns the provider named s, or false when s names none.
func Parse(s string) (Provider, bool) {
	p := Provider(s)
	return p, p.Valid()
}

// Valid reports whether p is a known provider.
func (p Provider) Valid() bool { return p == Salesforce || p == HubSpot }

// String returns the provider's name.
func (p Provider) String() string { return string(p) }
