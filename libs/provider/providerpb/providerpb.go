// Package providerpb converts provider.Provider to and from the events' ownersyncv1.Provider enum.
// It is the one place the two are mapped, kept apart from package provider so that domain
// packages using the type do not depend on generated proto code.
package providerpb

import (
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"

	"github.com/ownersync/ownersync/libs/provider"
)

// ToProto converts a provider; an unknown one is PROVIDER_UNSPECIFIED.
func ToProto(p provider.Provider) ownersyncv1.Provider {
	switch p {
	case provider.Salesforce:
		return ownersyncv1.Provider_PROVIDER_SALESFORCE
	case provider.HubSpot:
		return ownersyncv1.Provider_PROVIDER_HUBSPOT
	}
	return ownersyncv1.Provider_PROVIDER_UNSPECIFIED
}

// FromProto converts the enum; false for PROVIDER_UNSPECIFIED and unknown values.
func FromProto(p ownersyncv1.Provider) (provider.Provider, bool) {
	switch p {
	case ownersyncv1.Provider_PROVIDER_SALESFORCE:
		return provider.Salesforce, true
	case ownersyncv1.Provider_PROVIDER_HUBSPOT:
		return provider.HubSpot, true
	}
	return "", false
}
