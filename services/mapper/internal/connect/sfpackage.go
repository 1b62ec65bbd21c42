package connect

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/ownersync/ownersync/libs/tenant"
)

// OutboundFields are the fields each Outbound Message sends: exactly what the ingress reads
// (services/ingress/internal/webhook/salesforce.go; Id is always sent). The record messages need
// OwnerId (the change), Email (the link when ownersync has none), LastModifiedById (echo
// suppression) and LastModifiedDate (ordering); the User message the user's identity and state.
var OutboundFields = map[string][]string{
	"Contact": {"Email", "LastModifiedById", "LastModifiedDate", "OwnerId"},
	"Lead":    {"Email", "LastModifiedById", "LastModifiedDate", "OwnerId"},
	"User":    {"Email", "FirstName", "IsActive", "LastModifiedDate", "LastName", "UserType", "Username"},
}

// RuleFormulas fire the messages: a record's owner is set or changes; a user is created or any field
// Sync Users reads changes.
var RuleFormulas = map[string]string{
	"Contact": "ISNEW() || ISCHANGED(OwnerId)",
	"Lead":    "ISNEW() || ISCHANGED(OwnerId)",
	"User":    "ISNEW() || ISCHANGED(IsActive) || ISCHANGED(Email) || ISCHANGED(FirstName) || ISCHANGED(LastName) || ISCHANGED(Username)",
}

const metadataNS = "http://soap.sforce.com/2006/04/metadata"

type xmlPackage struct {
	XMLName xml.Name  `xml:"Package"`
	NS      string    `xml:"xmlns,attr"`
	Types   []xmlType `xml:"types"`
	Version string    `xml:"version"`
}

type xmlType struct {
	Members []string `xml:"members"`
	Name    string   `xml:"name"`
}

type xmlWorkflow struct {
	XMLName  xml.Name      `xml:"Workflow"`
	NS       string        `xml:"xmlns,attr"`
	Outbound []xmlOutbound `xml:"outboundMessages"`
	Rules    []xmlRule     `xml:"rules"`
}

type xmlOutbound struct {
	FullName           string   `xml:"fullName"`
	APIVersion         string   `xml:"apiVersion"`
	Description        string   `xml:"description"`
	EndpointURL        string   `xml:"endpointUrl"`
	Fields             []string `xml:"fields"`
	IncludeSessionID   bool     `xml:"includeSessionId"`
	IntegrationUser    string   `xml:"integrationUser"`
	Name               string   `xml:"name"`
	Protected          bool     `xml:"protected"`
	UseDeadLetterQueue bool     `xml:"useDeadLetterQueue"`
}

type xmlRule struct {
	FullName    string      `xml:"fullName"`
	Actions     []xmlAction `xml:"actions"`
	Active      bool        `xml:"active"`
	Description string      `xml:"description"`
	Formula     string      `xml:"formula"`
	TriggerType string      `xml:"triggerType"`
}

type xmlAction struct {
	Name string `xml:"name"`
	Type string `xml:"type"`
}

// MessageName is the Outbound Message's API name for an object.
func MessageName(object string) string { return "Ownersync_" + object + "_Changes" }

// PackageObjects are the objects of a tenant's package: its record modules and User.
func PackageObjects(t *tenant.Tenant) []string {
	var out []string
	for _, o := range []string{"Contact", "Lead"} {
		if t.Salesforce == nil || t.Salesforce.SyncsRecordType(strings.ToLower(o)) {
			out = append(out, o)
		}
	}
	return append(out, "User")
}

// SalesforcePackage builds the metadata package (Metadata API format, zipped under
// ownersync-salesforce/) for the tenant: package.xml and one workflow file per object with the
// Outbound Message and the rule that sends it. endpointURL carries the shared key.
func SalesforcePackage(t *tenant.Tenant, endpointURL, apiVersion string) ([]byte, error) {
	if apiVersion == "" {
		apiVersion = "62.0"
	}
	user := ""
	if t.Salesforce != nil {
		user = t.Salesforce.Auth.Username
	}
	if user == "" {
		return nil, public("The package needs the Salesforce user the messages are sent as: connect Salesforce first.")
	}
	objects := PackageObjects(t)
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	write := func(name string, v any) error {
		b, err := xml.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		w, err := z.Create("ownersync-salesforce/" + name)
		if err != nil {
			return err
		}
		_, err = w.Write(append([]byte(xml.Header), append(b, '\n')...))
		return err
	}
	if err := write("package.xml", xmlPackage{NS: metadataNS, Version: apiVersion, Types: []xmlType{{Members: objects, Name: "Workflow"}}}); err != nil {
		return nil, err
	}
	for _, o := range objects {
		name := MessageName(o)
		wf := xmlWorkflow{NS: metadataNS,
			Outbound: []xmlOutbound{{FullName: name, APIVersion: apiVersion, EndpointURL: endpointURL, Fields: append([]string{"Id"}, OutboundFields[o]...),
				Description: fmt.Sprintf("ownersync: %s changes for tenant %s", o, t.ID), IntegrationUser: user,
				Name: "ownersync " + o + " changes"}},
			Rules: []xmlRule{{FullName: name, Actions: []xmlAction{{Name: name, Type: "OutboundMessage"}}, Active: true,
				Description: "Sends " + o + " changes to ownersync", Formula: RuleFormulas[o], TriggerType: "onCreateOrTriggeringUpdate"}},
		}
		if err := write("workflows/"+o+".workflow", wf); err != nil {
			return nil, err
		}
	}
	readme := fmt.Sprintf(`ownersync Salesforce package for tenant %s

Contents: package.xml and workflows/{%s}.workflow, each with an Outbound Message to
%s
and the workflow rule that sends it.

Deploy (Salesforce CLI):
  unzip ownersync-salesforce.zip
  sf org login web --alias ownersync-target            # or --instance-url https://test.salesforce.com
  sf project deploy start --metadata-dir ownersync-salesforce --target-org ownersync-target --wait 10

Then in Setup > Process Automation > Outbound Messages check the three messages, and in
ownersync's Connections page watch "last webhook received" after changing a contact's owner.
docs/connect-salesforce.md has every step.
`, t.ID, strings.Join(objects, ","), endpointURL)
	w, err := z.Create("README.txt")
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte(readme)); err != nil {
		return nil, err
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
