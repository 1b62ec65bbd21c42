package mapping

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sfUser(id, email, userType, license string) CRMUser {
	u := cu(id, email)
	u.UserType, u.License = userType, license
	return u
}

// TestSalesforceUsersWhoAreNotPeople checks that Salesforce users who are not people (the
// Automated Process user, Chatter Free and Chatter External users, site guests, integration users
// by licence) are neither errors nor matched: Sync Users lists them apart as not mappable, with the
// reason, and leaves them out of the error and unmapped counts.
func TestSalesforceUsersWhoAreNotPeople(t *testing.T) {
	in := sf(
		[]PlatformUser{pu("p1", "ada@x.io"), pu("p2", "admin@x.io")},
		[]CRMUser{
			sfUser("005A", "ada@x.io", "Standard", "Salesforce"),
			// The integration user carries the admin's email, like the person who set it up.
			sfUser("005B", "admin@x.io", "Standard", "Salesforce Integration"),
			sfUser("005C", "admin@x.io", "Standard", "Salesforce"),
			sfUser("005D", "autoproc@00d.example", "AutomatedProcess", ""),
			sfUser("005E", "chatter@x.io", "CsnOnly", "Chatter Free"),
			sfUser("005F", "site@x.io", "Guest", "Guest User License"),
			sfUser("005G", "analytics@x.io", "Standard", "Analytics Cloud Integration User"),
			sfUser("005H", "platform@x.io", "Standard", "Salesforce Platform"),
			inactive(sfUser("005I", "old-int@x.io", "Standard", "Salesforce Integration")),
		},
	)
	r := Reconcile(in)
	wantMappings := []mp{
		{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail},
		{P: "p2", C: "005C", Status: StatusSynced, MadeBy: MadeByEmail},
	}
	if diff := cmp.Diff(wantMappings, mps(r.Mappings)); diff != "" {
		t.Errorf("mappings (-want +got):\n%s", diff)
	}
	// The Salesforce Platform user is a person without a platform user: an ordinary error.
	if diff := cmp.Diff([]pr{{Code: CodePlatformUserNotFound, C: "005H"}}, prs(r.Problems)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	want := []NotMappable{
		{Provider: Salesforce, CRMUserID: "005B", Name: "F005B L005B", Email: "admin@x.io", UserType: "Standard", License: "Salesforce Integration",
			Reason: "an integration user (Salesforce Integration licence), used by other systems, not by a person"},
		{Provider: Salesforce, CRMUserID: "005D", Name: "F005D L005D", Email: "autoproc@00d.example", UserType: "AutomatedProcess",
			Reason: "Salesforce's Automated Process user, which runs flows and platform events"},
		{Provider: Salesforce, CRMUserID: "005E", Name: "F005E L005E", Email: "chatter@x.io", UserType: "CsnOnly", License: "Chatter Free",
			Reason: "a Chatter-only user (Chatter Free licence), who cannot own contacts or leads"},
		{Provider: Salesforce, CRMUserID: "005F", Name: "F005F L005F", Email: "site@x.io", UserType: "Guest", License: "Guest User License",
			Reason: "the guest user of a site, not a person"},
		{Provider: Salesforce, CRMUserID: "005G", Name: "F005G L005G", Email: "analytics@x.io", UserType: "Standard", License: "Analytics Cloud Integration User",
			Reason: "an integration user (Analytics Cloud Integration User licence), used by other systems, not by a person"},
	}
	if diff := cmp.Diff(want, r.NotMappable); diff != "" {
		t.Errorf("not mappable (-want +got):\n%s", diff)
	}
	if r.Counts.Errors != 1 || r.Counts.Conflicts != 0 || r.Counts.UnmappedCRM != 1 || r.Counts.NotMappable != 5 {
		t.Errorf("counts = %+v, want 1 error, 0 conflicts, 1 unmapped CRM user (005H), 5 not mappable", r.Counts)
	}
}

// TestNotPersonReason covers each kind of Salesforce user that is not a person, and the people.
func TestNotPersonReason(t *testing.T) {
	for _, tt := range []struct {
		name, userType, license string
		person                  bool
	}{
		{name: "standard", userType: "Standard", license: "Salesforce", person: true},
		{name: "platform", userType: "Standard", license: "Salesforce Platform", person: true},
		{name: "no licence known", userType: "Standard", person: true},
		{name: "partner", userType: "PowerPartner", license: "Partner Community", person: true},
		{name: "HubSpot owner", person: true},
		{name: "automated process", userType: "AutomatedProcess"},
		{name: "chatter free", userType: "CsnOnly", license: "Chatter Free"},
		{name: "chatter external", userType: "CsnOnly", license: "Chatter External"},
		{name: "chatter only licence", userType: "Standard", license: "Chatter Only"},
		{name: "guest", userType: "Guest"},
		{name: "integration licence", userType: "Standard", license: "Salesforce Integration"},
		{name: "integration licence any case", userType: "Standard", license: "salesforce integration"},
		{name: "analytics integration", userType: "Standard", license: "Analytics Cloud Integration User"},
		{name: "cloud integration user", userType: "Standard", license: "Cloud Integration User"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := sfUser("005X", "x@x.io", tt.userType, tt.license)
			reason := u.NotPersonReason()
			if (reason == "") != tt.person {
				t.Fatalf("NotPersonReason = %q, want a person: %t", reason, tt.person)
			}
			if u.Mappable() != tt.person {
				t.Errorf("Mappable = %t, want %t", u.Mappable(), tt.person)
			}
		})
	}
}
