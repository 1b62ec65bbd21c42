package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testdata = "../../testdata/salesforce"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	org      = "00D5g000004XyZaEAK"
	action   = "04k5g000000AbCdAAK"
	entURL   = "https://acme.my.salesforce.com/services/Soap/c/62.0/00D5g000004XyZa"
	partnURL = "https://acme.my.salesforce.com/services/Soap/u/62.0/00D5g000004XyZa"
)

func TestParse(t *testing.T) {
	contact := Notification{ID: "04l5g00000AbCdEAAV", Object: SObject{Type: Contact, ID: "0035g00000QwErTAAV", Fields: map[string]Field{
		"Id": {Value: "0035g00000QwErTAAV"}, "Email": {Value: "ada@example.com"}, "OwnerId": {Value: "0055g00000AsDfGAAV"},
	}}}
	lead := Notification{ID: "04l5g00000AbCdFAAV", Object: SObject{Type: Lead, ID: "00Q5g00000ZxCvBEAV", Fields: map[string]Field{
		"Id": {Value: "00Q5g00000ZxCvBEAV"}, "Email": {Value: "grace@example.org"}, "OwnerId": {Value: "00G5g000003LkJhEAK"},
	}}}
	tests := []struct {
		name string
		file string
		want *Message
	}{
		{
			name: "reference example: contact and a lead owned by a queue",
			file: "contact_and_queue_lead.xml",
			want: &Message{OrganizationID: org, ActionID: action, EnterpriseURL: entURL, PartnerURL: partnURL,
				Notifications: []Notification{contact, lead}},
		},
		{
			name: "user deactivation",
			file: "user_deactivated.xml",
			want: &Message{OrganizationID: org, ActionID: action, EnterpriseURL: entURL, PartnerURL: partnURL,
				Notifications: []Notification{{ID: "04l5g00000AbCdGAAV", Object: SObject{Type: User, ID: "0055g00000HjKlMAAV", Fields: map[string]Field{
					"Id": {Value: "0055g00000HjKlMAAV"}, "Email": {Value: "linus@example.com"}, "FirstName": {Value: "Linus"},
					"IsActive": {Value: "false"}, "LastName": {Value: "Pauling"},
				}}}}},
		},
		{
			name: "other prefixes, default namespaces, 15-character ids, xsi:nil and absent fields",
			file: "prefixes_15char_nil.xml",
			want: &Message{OrganizationID: org, ActionID: action, EnterpriseURL: entURL, PartnerURL: partnURL,
				Notifications: []Notification{
					{ID: "04l5g00000AbCdHAAV", Object: SObject{Type: Contact, ID: "0035g00000QwErUAAV", Fields: map[string]Field{
						"Id": {Value: "0035g00000QwErUAAV"}, "Email": {Nil: true}, "LastModifiedById": {Value: "0055g00000AsDfGAAV"},
						"LastModifiedDate": {Value: "2026-01-01T00:00:05.000Z"}, "OwnerId": {Value: "0055g00000HjKlMAAV"},
					}}},
					{ID: "04l5g00000AbCdIAAV", Object: SObject{Type: Lead, ID: "00Q5g00000ZxCvCEAV", Fields: map[string]Field{
						"Id": {Value: "00Q5g00000ZxCvCEAV"}, "OwnerId": {Value: "0055g00000AsDfGAAV"},
					}}},
				}},
		},
		{
			name: "an Account is returned as ignored",
			file: "account_ignored.xml",
			want: &Message{OrganizationID: org, ActionID: action, EnterpriseURL: entURL, PartnerURL: partnURL,
				Notifications: []Notification{contact},
				Ignored: []Notification{{ID: "04l5g00000AbCdJAAV", Object: SObject{Type: "Account", ID: "0015g00000PoIuYAAV", Fields: map[string]Field{
					"Id": {Value: "0015g00000PoIuYAAV"}, "OwnerId": {Value: "0055g00000AsDfGAAV"},
				}}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(read(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHundred(t *testing.T) {
	m, err := Parse(read(t, "contacts_100.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Notifications) != 100 {
		t.Fatalf("got %d notifications, want 100", len(m.Notifications))
	}
	seen := map[string]bool{}
	for _, n := range m.Notifications {
		if len(n.ID) != 18 || len(n.Object.ID) != 18 || n.Object.Type != Contact || seen[n.ID] {
			t.Fatalf("bad notification %+v", n)
		}
		seen[n.ID] = true
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		want   error
		reason string
	}{
		{"empty", nil, ErrEmpty, "empty"},
		{"whitespace", []byte(" \n\t"), ErrEmpty, "empty"},
		{"json", []byte(`{"hello":"world"}`), ErrNotOutboundMessage, "wrong_envelope"},
		{"101 notifications", read(t, "contacts_101.xml"), ErrTooManyNotifications, "too_many_notifications"},
		{"DOCTYPE with entities", read(t, "bad/doctype.xml"), ErrDoctype, "doctype"},
		{"external entity", read(t, "bad/external_entity.xml"), ErrDoctype, "doctype"},
		{"SOAP 1.2 envelope", read(t, "bad/wrong_envelope_ns.xml"), ErrNotOutboundMessage, "wrong_envelope"},
		{"wrong outbound namespace", read(t, "bad/wrong_outbound_ns.xml"), ErrNotOutboundMessage, "wrong_envelope"},
		{"wrong sObject namespace", read(t, "bad/wrong_sobject_ns.xml"), ErrNotOutboundMessage, "wrong_envelope"},
		{"deep nesting", read(t, "bad/deep.xml"), ErrTooDeep, "too_deep"},
		{"invalid UTF-8", read(t, "bad/invalid_utf8.xml"), ErrInvalidUTF8, "invalid_utf8"},
		{"ISO-8859-1 declared", read(t, "bad/latin1.xml"), ErrInvalidUTF8, "invalid_utf8"},
		{"no notifications", read(t, "bad/no_notifications.xml"), ErrNoNotifications, "no_notifications"},
		{"empty soap body", read(t, "bad/empty_body.xml"), ErrNotOutboundMessage, "wrong_envelope"},
		{"malformed notification id", read(t, "bad/bad_id.xml"), ErrInvalid, "malformed"},
		{"no OrganizationId", read(t, "bad/no_org.xml"), ErrInvalid, "malformed"},
		{"truncated", read(t, "bad/truncated.xml"), ErrSyntax, "malformed"},
		{"undeclared entity", bytes.Replace(read(t, "contact_and_queue_lead.xml"), []byte("ada@"), []byte("&ada;@"), 1), ErrSyntax, "malformed"},
		{"trailing element", append(read(t, "contact_and_queue_lead.xml"), []byte("<x/>")...), ErrSyntax, "malformed"},
		{"sObject without xsi:type", bytes.Replace(read(t, "contact_and_queue_lead.xml"), []byte(`xsi:type="sf:Contact" `), nil, 1), ErrInvalid, "malformed"},
		{"boolean that is not", bytes.Replace(read(t, "user_deactivated.xml"), []byte(">false<"), []byte(">nope<"), 1), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.body)
			if tt.want == nil {
				// The parser keeps field text; the type check is the caller's (SObject.Bool).
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := m.Notifications[0].Object.Bool("IsActive"); !errors.Is(err, ErrInvalid) {
					t.Fatalf("Bool error = %v, want ErrInvalid", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			if m != nil {
				t.Errorf("Parse returned a message with an error")
			}
			if got := Reason(err); got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestSObjectAccessors(t *testing.T) {
	o := SObject{Fields: map[string]Field{"IsActive": {Value: "true"}, "Email": {Nil: true}, "LastName": {Value: "X"}}}
	if v, ok := o.Get("LastName"); !ok || v != "X" {
		t.Errorf("Get(LastName) = %q, %v", v, ok)
	}
	if _, ok := o.Get("Email"); ok {
		t.Errorf("Get(Email) of a nil field reported ok")
	}
	if !o.Has("Email") || o.Has("FirstName") {
		t.Errorf("Has is wrong")
	}
	if v, ok, err := o.Bool("IsActive"); !v || !ok || err != nil {
		t.Errorf("Bool(IsActive) = %v, %v, %v", v, ok, err)
	}
	if _, ok, err := o.Bool("Missing"); ok || err != nil {
		t.Errorf("Bool(Missing) = %v, %v", ok, err)
	}
}

func TestAck(t *testing.T) {
	want := `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
`
	if diff := cmp.Diff(want, string(Ack())); diff != "" {
		t.Errorf("Ack mismatch (-want +got):\n%s", diff)
	}
	// And it means what it says when read by namespace.
	var env struct {
		XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
		Body    struct {
			Resp struct {
				Ack bool `xml:"http://soap.sforce.com/2005/09/outbound Ack"`
			} `xml:"http://soap.sforce.com/2005/09/outbound notificationsResponse"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(Ack(), &env); err != nil || !env.Body.Resp.Ack {
		t.Fatalf("ack does not decode to Ack=true: %v %+v", err, env)
	}
}

func TestFault(t *testing.T) {
	b := Fault(FaultServer, `events not stored <retry> & "later"`)
	var env struct {
		Body struct {
			Fault struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	want := struct{ Code, String string }{"soapenv:Server", `events not stored <retry> & "later"`}
	got := struct{ Code, String string }{env.Body.Fault.Code, env.Body.Fault.String}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fault mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("fault lacks the XML declaration")
	}
}

// FuzzParse checks that Parse never panics, and that what it accepts is consistent: ids are
// 18 characters, at most 100 notifications, and every notification has a type.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{testdata, filepath.Join(testdata, "bad")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body)
		if err != nil {
			if m != nil {
				t.Fatal("message with error")
			}
			_ = Reason(err)
			return
		}
		if len(m.OrganizationID) != 18 {
			t.Fatalf("org id %q", m.OrganizationID)
		}
		n := len(m.Notifications) + len(m.Ignored)
		if n < 1 || n > MaxNotifications {
			t.Fatalf("%d notifications", n)
		}
		for _, list := range [][]Notification{m.Notifications, m.Ignored} {
			for _, x := range list {
				if len(x.ID) != 18 || len(x.Object.ID) != 18 || x.Object.Type == "" {
					t.Fatalf("bad notification %+v", x)
				}
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"contact_and_queue_lead.xml", "contacts_100.xml"} {
		body := read(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
