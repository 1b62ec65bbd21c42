package tenant

import (
	"testing"

	"github.com/ownersync/ownersync/libs/provider"
)

func TestCRMLinks(t *testing.T) {
	tn := &Tenant{ID: "acme",
		Salesforce: &SFConfig{InstanceURL: "https://acme.my.salesforce.com/"},
		HubSpot:    &HSConfig{PortalID: 4412345, UIDomain: "app-eu1.hubspot.com"}}
	for _, tt := range []struct {
		name, got, want string
	}{
		{"salesforce user", tn.CRMUserURL(provider.Salesforce, "0055g00000AsDfGAAV"), "https://acme.my.salesforce.com/lightning/r/User/0055g00000AsDfGAAV/view"},
		{"salesforce 15-char user", tn.CRMUserURL(provider.Salesforce, "0055g00000AsDfG"), "https://acme.my.salesforce.com/lightning/r/User/0055g00000AsDfG/view"},
		{"salesforce contact", tn.RecordURL(provider.Salesforce, "contact", "0035g00000QwErTAAV"), "https://acme.my.salesforce.com/lightning/r/Contact/0035g00000QwErTAAV/view"},
		{"salesforce lead", tn.RecordURL(provider.Salesforce, "lead", "00Q5g00000ZxCvBEAV"), "https://acme.my.salesforce.com/lightning/r/Lead/00Q5g00000ZxCvBEAV/view"},
		{"salesforce id that is not one", tn.CRMUserURL(provider.Salesforce, "../../evil"), ""},
		{"hubspot owner", tn.CRMUserURL(provider.HubSpot, "71234501"), "https://app-eu1.hubspot.com/settings/4412345/users"},
		{"hubspot contact", tn.RecordURL(provider.HubSpot, "contact", "151"), "https://app-eu1.hubspot.com/contacts/4412345/record/0-1/151"},
		{"hubspot lead", tn.RecordURL(provider.HubSpot, "lead", "151"), ""},
		{"hubspot id that is not one", tn.RecordURL(provider.HubSpot, "contact", "1/../x"), ""},
		{"hubspot default host", (&Tenant{HubSpot: &HSConfig{PortalID: 7}}).RecordURL(provider.HubSpot, "contact", "1"), "https://app.hubspot.com/contacts/7/record/0-1/1"},
		{"hubspot host that is not HubSpot's", (&Tenant{HubSpot: &HSConfig{PortalID: 7, UIDomain: "evil.example"}}).RecordURL(provider.HubSpot, "contact", "1"), "https://app.hubspot.com/contacts/7/record/0-1/1"},
		{"not connected", (&Tenant{}).CRMUserURL(provider.Salesforce, "0055g00000AsDfGAAV"), ""},
		{"nil tenant", (*Tenant)(nil).CRMUserURL(provider.HubSpot, "1"), ""},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	bad := &Tenant{ID: "acme", HubSpot: &HSConfig{PortalID: 1, ClientSecretRef: "env:S", Auth: HSAuth{Kind: "private_app", TokenRef: "env:T"}, UIDomain: "evil.example"}}
	if err := bad.Validate(); err == nil {
		t.Error("a ui_domain that is not a HubSpot app host was accepted")
	}
}
