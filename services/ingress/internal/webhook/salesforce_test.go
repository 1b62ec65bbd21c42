package webhook

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/soap"
)

const (
	testOrg    = "00D5g000004XyZaEAK"
	testPortal = 4412345
	testApp    = 3100456
	publicURL  = "https://hooks.example.com/ownersync"
)

// testNow is one second after the HubSpot reference timestamp.
var testNow = time.UnixMilli(1767225602000).UTC()

type env struct {
	srv    *httptest.Server
	pub    *fakePublisher
	ten    *fakeTenants
	alerts *fakeAlerts
	meter  *fakeMeter
	acme   *tenant.Tenant
}

// testTenants holds one tenant, acme, with both CRMs connected.
func testTenants() (*fakeTenants, *tenant.Tenant) {
	acme := &tenant.Tenant{
		ID:         "acme",
		Salesforce: &tenant.SFConfig{OrgID: testOrg, Settings: tenant.Settings{Enabled: true}},
		HubSpot:    &tenant.HSConfig{PortalID: testPortal, AppID: testApp, ClientSecretRef: "env:HS_SECRET", Settings: tenant.Settings{Enabled: true}},
	}
	return &fakeTenants{byOrg: map[string]*tenant.Tenant{testOrg: acme}, byPortal: map[int64]*tenant.Tenant{testPortal: acme}}, acme
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	ten, acme := testTenants()
	e := &env{
		pub:    &fakePublisher{},
		ten:    ten,
		alerts: &fakeAlerts{},
		meter:  &fakeMeter{},
		acme:   acme,
	}
	cfg := Config{PublicURL: publicURL, Now: func() time.Time { return testNow }, Meter: e.meter, Alerts: e.alerts, PublishTimeout: time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg, e.pub, e.ten, envSecrets{"HS_SECRET": "test-client-secret", "SF_KEY": "s3cret-key", "SF_KEY_NEW": "n3w-key-0123"})
	if err != nil {
		t.Fatal(err)
	}
	ec := echo.New()
	h.Register(ec)
	e.srv = httptest.NewServer(ec)
	t.Cleanup(e.srv.Close)
	return e
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) post(t *testing.T, path, contentType string, body []byte, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func sfMeta(notif string, occurred time.Time) *ownersyncv1.EventMeta {
	return &ownersyncv1.EventMeta{
		EventId: "sf:" + testOrg + ":" + notif, TenantId: "acme", Source: "salesforce", SourceEventId: notif,
		OccurredAt: timestamppb.New(occurred), ReceivedAt: timestamppb.New(testNow),
	}
}

func ownerSF(notif string, rt ownersyncv1.RecordType, record, email, owner string, kind ownersyncv1.CrmUserKind) published {
	return published{
		Subject: "crm.owner.changed.acme.salesforce",
		ID:      "sf:" + testOrg + ":" + notif,
		Msg: &ownersyncv1.CrmOwnerChanged{Meta: sfMeta(notif, testNow), Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE,
			RecordType: rt, RecordId: record, RecordEmail: email, OwnerId: owner, OwnerKind: kind, ChangeSource: "salesforce"},
	}
}

const (
	contactT = ownersyncv1.RecordType_RECORD_TYPE_CONTACT
	leadT    = ownersyncv1.RecordType_RECORD_TYPE_LEAD
	userK    = ownersyncv1.CrmUserKind_CRM_USER_KIND_USER
	queueK   = ownersyncv1.CrmUserKind_CRM_USER_KIND_QUEUE
)

func TestSalesforcePublishes(t *testing.T) {
	actorContact := ownerSF("04l5g00000AbCdHAAV", contactT, "0035g00000QwErUAAV", "", "0055g00000HjKlMAAV", userK)
	actorContact.Msg.(*ownersyncv1.CrmOwnerChanged).ActorId = "0055g00000AsDfGAAV"
	actorContact.Msg.(*ownersyncv1.CrmOwnerChanged).Meta.OccurredAt = timestamppb.New(time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC))
	tests := []struct {
		name string
		file string
		want []published
	}{
		{
			name: "contact owned by a user and lead owned by a queue",
			file: "salesforce/contact_and_queue_lead.xml",
			want: []published{
				ownerSF("04l5g00000AbCdEAAV", contactT, "0035g00000QwErTAAV", "ada@example.com", "0055g00000AsDfGAAV", userK),
				ownerSF("04l5g00000AbCdFAAV", leadT, "00Q5g00000ZxCvBEAV", "grace@example.org", "00G5g000003LkJhEAK", queueK),
			},
		},
		{
			name: "user deactivation",
			file: "salesforce/user_deactivated.xml",
			want: []published{{
				Subject: "crm.user.changed.acme.salesforce",
				ID:      "sf:" + testOrg + ":04l5g00000AbCdGAAV",
				Msg: &ownersyncv1.CrmUserChanged{Meta: sfMeta("04l5g00000AbCdGAAV", testNow), Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE,
					User: &ownersyncv1.CrmUser{Id: "0055g00000HjKlMAAV", Email: "linus@example.com", FirstName: "Linus", LastName: "Pauling",
						Active: false, Kind: userK},
					Fields: []string{"email", "first_name", "last_name", "active"}},
			}},
		},
		{
			name: "other prefixes, 15-character ids, xsi:nil email, LastModifiedById and LastModifiedDate",
			file: "salesforce/prefixes_15char_nil.xml",
			want: []published{
				actorContact,
				ownerSF("04l5g00000AbCdIAAV", leadT, "00Q5g00000ZxCvCEAV", "", "0055g00000AsDfGAAV", userK),
			},
		},
		{
			name: "an Account notification is acknowledged, not published",
			file: "salesforce/account_ignored.xml",
			want: []published{
				ownerSF("04l5g00000AbCdEAAV", contactT, "0035g00000QwErTAAV", "ada@example.com", "0055g00000AsDfGAAV", userK),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			status, hdr, body := e.post(t, SalesforcePath, "text/xml; charset=utf-8", readFile(t, tt.file), nil)
			if status != http.StatusOK || string(body) != string(soap.Ack()) {
				t.Fatalf("status %d body %s", status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != soap.ContentType {
				t.Errorf("Content-Type = %q", ct)
			}
			if diff := cmp.Diff(tt.want, e.pub.stored(), protocmp.Transform()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSalesforceHundredAndRedelivery(t *testing.T) {
	e := newEnv(t, nil)
	body := readFile(t, "salesforce/contacts_100.xml")
	if status, _, b := e.post(t, SalesforcePath, "text/xml", body, nil); status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	if n := len(e.pub.stored()); n != 100 {
		t.Fatalf("%d events published, want 100", n)
	}
	// Salesforce delivers the same message again: acknowledged, nothing new stored.
	if status, _, b := e.post(t, SalesforcePath, "text/xml", body, nil); status != http.StatusOK || string(b) != string(soap.Ack()) {
		t.Fatalf("redelivery: status %d: %s", status, b)
	}
	if n := len(e.pub.stored()); n != 100 {
		t.Fatalf("%d events after redelivery, want 100", n)
	}
	for key, want := range map[string]float64{
		"ownersync.ingress.events.published{provider=salesforce,type=owner_changed}":  100,
		"ownersync.ingress.events.duplicates{provider=salesforce,type=owner_changed}": 100,
		"ownersync.ingress.requests{outcome=acked,provider=salesforce}":               2,
		"ownersync.ingress.request.duration.count{outcome=acked,provider=salesforce}": 2,
	} {
		if got := e.meter.get(key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

// TestSalesforceUserNotificationsKeepTheirOrder is issue 14 item 4: the notifications of one
// Outbound Message about users are stored in the order the message lists them, so mapper applies
// a deactivation and the users created around it in the order Salesforce made them. The fake
// publisher holds the earlier notifications longer, so publishing them all at once would store
// them out of order.
func TestSalesforceUserNotificationsKeepTheirOrder(t *testing.T) {
	const n = 12
	tmpl := string(readFile(t, "salesforce/user_deactivated.xml"))
	start, end := strings.Index(tmpl, "<Notification>"), strings.Index(tmpl, "</Notification>")+len("</Notification>")
	one := tmpl[start:end]
	var notes strings.Builder
	ids := make([]string, n)
	for i := range n {
		ids[i] = mustTo18(t, fmt.Sprintf("04l5g00000Or%03d", i))
		note := strings.Replace(one, "04l5g00000AbCdGAAV", ids[i], 1)
		note = strings.Replace(note, "0055g00000HjKlMAAV", mustTo18(t, fmt.Sprintf("0055g00000Us%03d", i)), 1)
		notes.WriteString(note)
	}
	body := tmpl[:start] + notes.String() + tmpl[end:]
	e := newEnv(t, nil)
	e.pub.delay = func(id string) time.Duration {
		for i, nid := range ids {
			if strings.HasSuffix(id, nid) {
				return time.Duration(n-i) * 3 * time.Millisecond
			}
		}
		return 0
	}
	if status, _, b := e.post(t, SalesforcePath, "text/xml", []byte(body), nil); status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	got := e.pub.inOrder()
	if len(got) != n {
		t.Fatalf("%d events stored, want %d", len(got), n)
	}
	for i, m := range got {
		if want := "sf:" + testOrg + ":" + ids[i]; m.ID != want {
			t.Errorf("stored #%d is %s, want %s (message order)", i, m.ID, want)
		}
	}
}

func mustTo18(t *testing.T, id15 string) string {
	t.Helper()
	id, err := sfid.To18(id15)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fault decodes a SOAP fault.
func fault(t *testing.T, b []byte) (code, msg string) {
	t.Helper()
	var env struct {
		Body struct {
			Fault *struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(b, &env); err != nil || env.Body.Fault == nil {
		t.Fatalf("not a SOAP fault (%v): %s", err, b)
	}
	return env.Body.Fault.Code, env.Body.Fault.String
}

func TestSalesforceRejects(t *testing.T) {
	ref := readFile(t, "salesforce/contact_and_queue_lead.xml")
	tests := []struct {
		name        string
		mutate      func(*env)
		cfg         func(*Config)
		path        string
		contentType string
		body        []byte
		wantStatus  int
		wantCode    string
		wantReason  string // ownersync.ingress.rejected / failed reason
		wantAlert   []string
	}{
		{name: "unknown org", mutate: func(e *env) { delete(e.ten.byOrg, testOrg) }, body: ref,
			wantStatus: 403, wantCode: soap.FaultClient, wantReason: "rejected:unknown_org", wantAlert: []string{"salesforce:" + testOrg}},
		{name: "tenant store down", mutate: func(e *env) { e.ten.err = errors.New("mongo down") }, body: ref,
			wantStatus: 503, wantCode: soap.FaultServer, wantReason: "failed:tenant_lookup"},
		{name: "shared key missing", mutate: func(e *env) { e.acme.Salesforce.SharedKeyRef = tenant.SharedKeyDigest("s3cret-key") }, body: ref,
			wantStatus: 403, wantCode: soap.FaultClient, wantReason: "rejected:bad_shared_key"},
		{name: "shared key wrong", mutate: func(e *env) { e.acme.Salesforce.SharedKeyRef = tenant.SharedKeyDigest("s3cret-key") }, path: "?key=s3cret-kez", body: ref,
			wantStatus: 403, wantCode: soap.FaultClient, wantReason: "rejected:bad_shared_key"},
		{name: "shared key not migrated to its digest", mutate: func(e *env) { e.acme.Salesforce.SharedKeyRef = "stored:acme/salesforce.shared_key" }, path: "?key=x", body: ref,
			wantStatus: 503, wantCode: soap.FaultServer, wantReason: "failed:shared_key_not_migrated"},
		{name: "publisher fails on one event", mutate: func(e *env) {
			e.pub.fail = func(_, id string) error {
				if strings.HasSuffix(id, "04l5g00000AbCdFAAV") {
					return errors.New("nats: no responders")
				}
				return nil
			}
		}, body: ref, wantStatus: 503, wantCode: soap.FaultServer, wantReason: "failed:publish"},
		{name: "JetStream never acks", mutate: func(e *env) { e.pub.block = true }, cfg: func(c *Config) { c.PublishTimeout = 50 * time.Millisecond },
			body: ref, wantStatus: 503, wantCode: soap.FaultServer, wantReason: "failed:publish"},
		{name: "101 notifications", body: readFile(t, "salesforce/contacts_101.xml"), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:too_many_notifications"},
		{name: "DOCTYPE", body: readFile(t, "salesforce/bad/doctype.xml"), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:doctype"},
		{name: "external entity", body: readFile(t, "salesforce/bad/external_entity.xml"), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:doctype"},
		{name: "invalid UTF-8", body: readFile(t, "salesforce/bad/invalid_utf8.xml"), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:invalid_utf8"},
		{name: "deep nesting", body: readFile(t, "salesforce/bad/deep.xml"), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:too_deep"},
		{name: "SOAP 1.2 namespace", body: readFile(t, "salesforce/bad/wrong_envelope_ns.xml"), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:wrong_envelope"},
		{name: "empty body", body: nil, wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:empty"},
		{name: "JSON content type", contentType: "application/json", body: ref, wantStatus: 415, wantCode: soap.FaultClient, wantReason: "rejected:unsupported_media_type"},
		{name: "Latin-1 charset", contentType: "text/xml; charset=ISO-8859-1", body: ref, wantStatus: 415, wantCode: soap.FaultClient, wantReason: "rejected:unsupported_media_type"},
		{name: "no content type", contentType: "-", body: ref, wantStatus: 415, wantCode: soap.FaultClient, wantReason: "rejected:unsupported_media_type"},
		{name: "over 5 MB", body: append(bytes.Repeat([]byte(" "), DefaultSalesforceBodyLimit), ref...), wantStatus: 413, wantCode: soap.FaultClient, wantReason: "rejected:too_large"},
		{name: "owner id not an id", body: bytes.Replace(ref, []byte("0055g00000AsDfGAAV"), []byte("0055g00000AsDf!AAV"), 1), wantStatus: 400, wantCode: soap.FaultClient, wantReason: "rejected:malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			if tt.mutate != nil {
				tt.mutate(e)
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = "text/xml; charset=utf-8"
			case "-":
				ct = ""
			}
			start := time.Now()
			status, hdr, body := e.post(t, SalesforcePath+tt.path, ct, tt.body, nil)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answer took %s", took)
			}
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", status, tt.wantStatus, body)
			}
			if ct := hdr.Get("Content-Type"); ct != soap.ContentType {
				t.Errorf("Content-Type = %q", ct)
			}
			if code, _ := fault(t, body); code != tt.wantCode {
				t.Errorf("faultcode = %q, want %q", code, tt.wantCode)
			}
			kind, reason, _ := strings.Cut(tt.wantReason, ":")
			if got := e.meter.get(fmt.Sprintf("ownersync.ingress.%s{provider=salesforce,reason=%s}", kind, reason)); got != 1 {
				t.Errorf("%s counter for %s = %v, want 1 (%v)", kind, reason, got, e.meter.sums)
			}
			if diff := cmp.Diff(tt.wantAlert, e.alerts.sources); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
			if tt.wantCode == soap.FaultClient && len(e.pub.stored()) != 0 {
				t.Errorf("a rejected message published %d events", len(e.pub.stored()))
			}
		})
	}
}

func TestSalesforceSharedKey(t *testing.T) {
	e := newEnv(t, nil)
	e.acme.Salesforce.SharedKeyRef = tenant.SharedKeyDigest("s3cret-key")
	status, _, body := e.post(t, SalesforcePath+"?key=s3cret-key", "text/xml", readFile(t, "salesforce/contact_and_queue_lead.xml"), nil)
	if status != http.StatusOK || string(body) != string(soap.Ack()) {
		t.Fatalf("status %d: %s", status, body)
	}
	if n := len(e.pub.stored()); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
}

func TestNewValidates(t *testing.T) {
	for _, u := range []string{"", "hooks.example.com", "ftp://x", "https://x/?q=1", "https:///path"} {
		if _, err := New(Config{PublicURL: u}, &fakePublisher{}, &fakeTenants{}, envSecrets{}); err == nil {
			t.Errorf("New accepted public URL %q", u)
		}
	}
	if _, err := New(Config{PublicURL: publicURL}, nil, &fakeTenants{}, envSecrets{}); err == nil {
		t.Error("New accepted a nil publisher")
	}
}
