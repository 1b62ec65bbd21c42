package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/internal/hubspotsig"
)

const hsSecret = "test-client-secret"

// signV3 signs like HubSpot: over the public URI of the route plus the query, at ts.
func signV3(query string, body []byte, ts time.Time) http.Header {
	uri := publicURL + HubSpotPath
	if query != "" {
		uri += "?" + query
	}
	stamp := strconv.FormatInt(ts.UnixMilli(), 10)
	return http.Header{
		"X-Hubspot-Signature-V3":      {hubspotsig.SignV3(hsSecret, "POST", uri, body, stamp)},
		"X-Hubspot-Request-Timestamp": {stamp},
		// Older schemes ride along, as HubSpot sends them.
		"X-Hubspot-Signature":         {hubspotsig.SignV1(hsSecret, body)},
		"X-Hubspot-Signature-Version": {"v1"},
	}
}

func ownerHS(eventID, objectID, occurred int64, owner, source, actor string) published {
	id := fmt.Sprintf("hs:%d:%d:%d:%d:hubspot_owner_id", testPortal, eventID, objectID, occurred)
	kind := userK
	if owner == "" {
		kind = ownersyncv1.CrmUserKind_CRM_USER_KIND_UNSPECIFIED
	}
	return published{
		Subject: "crm.owner.changed.acme.hubspot",
		ID:      id,
		Msg: &ownersyncv1.CrmOwnerChanged{
			Meta: &ownersyncv1.EventMeta{EventId: id, TenantId: "acme", Source: "hubspot", SourceEventId: strconv.FormatInt(eventID, 10),
				OccurredAt: timestamppb.New(time.UnixMilli(occurred)), ReceivedAt: timestamppb.New(testNow)},
			Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT, RecordType: contactT, RecordId: strconv.FormatInt(objectID, 10),
			OwnerId: owner, OwnerKind: kind, ChangeSource: source, ActorId: actor,
		},
	}
}

func TestHubSpotPublishes(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		query       string
		wantIgnored map[string]float64
		want        []published
	}{
		{
			name: "reference batch: owner set in the UI, owner cleared through the API",
			file: "hubspot/owner_changes_reference.json",
			want: []published{
				ownerHS(1849302211, 51234, 1767225600123, "71234567", "CRM_UI", "userId:9988776"),
				ownerHS(1849302987, 51240, 1767225600777, "", "API", "3100456"),
			},
		},
		{
			name:  "mixed batch with encoded characters in the query: only contact owner changes are published",
			file:  "hubspot/mixed_batch.json",
			query: "tenant=acme&next=https%3A%2F%2Fx.example%2Fa%20b&email=ada%40example.com",
			wantIgnored: map[string]float64{
				"contact.creation": 1, "contact.propertyChange": 1, "object.propertyChange": 1,
				"contact.merge": 1, "contact.associationChange": 1, "redacted_owner": 1,
			},
			want: []published{
				ownerHS(100, 51250, 1767225601000, "71234568", "IMPORT", "import:77"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			body := readFile(t, tt.file)
			path := HubSpotPath
			if tt.query != "" {
				path += "?" + tt.query
			}
			status, _, resp := e.post(t, path, "application/json", body, signV3(tt.query, body, testNow.Add(-time.Second)))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, resp)
			}
			if diff := cmp.Diff(tt.want, e.pub.stored(), protocmp.Transform()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			for kind, n := range tt.wantIgnored {
				key := "ownersync.ingress.events.ignored{kind=" + kind + ",provider=hubspot}"
				if got := e.meter.get(key); got != n {
					t.Errorf("%s = %v, want %v", key, got, n)
				}
			}
		})
	}
}

func TestHubSpotHundredAndRetry(t *testing.T) {
	e := newEnv(t, nil)
	body := readFile(t, "hubspot/owner_changes_100.json")
	for attempt := 0; attempt < 2; attempt++ {
		status, _, resp := e.post(t, HubSpotPath, "application/json; charset=utf-8", body, signV3("", body, testNow))
		if status != http.StatusOK {
			t.Fatalf("attempt %d: status %d: %s", attempt, status, resp)
		}
		if n := len(e.pub.stored()); n != 100 {
			t.Fatalf("attempt %d: %d events stored, want 100", attempt, n)
		}
	}
	if got := e.meter.get("ownersync.ingress.events.duplicates{provider=hubspot,type=owner_changed}"); got != 100 {
		t.Errorf("duplicates = %v, want 100", got)
	}
}

func TestHubSpotLegacySignature(t *testing.T) {
	body := readFile(t, "hubspot/owner_changes_reference.json")
	v1 := http.Header{"X-Hubspot-Signature": {hubspotsig.SignV1(hsSecret, body)}, "X-Hubspot-Signature-Version": {"v1"}}
	e := newEnv(t, nil)
	if status, _, _ := e.post(t, HubSpotPath, "application/json", body, v1); status != http.StatusUnauthorized {
		t.Errorf("v1 for a v3 app: status %d, want 401", status)
	}
	e.acme.HubSpot.LegacySignatures = true
	if status, _, resp := e.post(t, HubSpotPath, "application/json", body, v1); status != http.StatusOK {
		t.Errorf("v1 for a legacy app: status %d: %s", status, resp)
	}
	if n := len(e.pub.stored()); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
}

func TestHubSpotRejects(t *testing.T) {
	ref := readFile(t, "hubspot/owner_changes_reference.json")
	tooMany := readFile(t, "hubspot/owner_changes_101.json")
	var big bytes.Buffer
	big.WriteString("[")
	big.Write(bytes.Repeat([]byte(" "), DefaultHubSpotBodyLimit))
	big.Write(ref[1:])
	tests := []struct {
		name        string
		mutate      func(*env)
		cfg         func(*Config)
		path        string
		contentType string
		body        []byte
		header      http.Header
		wantStatus  int
		wantReason  string
		wantAlert   []string
	}{
		{name: "unknown portal", mutate: func(e *env) { delete(e.ten.byPortal, testPortal) }, body: ref, header: signV3("", ref, testNow),
			wantStatus: 404, wantReason: "rejected:unknown_portal", wantAlert: []string{"hubspot:4412345"}},
		{name: "portal configured for another app", mutate: func(e *env) { e.acme.HubSpot.AppID = 999 }, body: ref, header: signV3("", ref, testNow),
			wantStatus: 404, wantReason: "rejected:unknown_app", wantAlert: []string{"hubspot:4412345/app 3100456"}},
		{name: "tenant store down", mutate: func(e *env) { e.ten.err = errors.New("mongo down") }, body: ref, header: signV3("", ref, testNow),
			wantStatus: 503, wantReason: "failed:tenant_lookup"},
		{name: "client secret unresolvable", mutate: func(e *env) { e.acme.HubSpot.ClientSecretRef = "env:NOPE" }, body: ref, header: signV3("", ref, testNow),
			wantStatus: 503, wantReason: "failed:secret_unavailable"},
		{name: "signed by another secret", body: ref, header: http.Header{
			"X-Hubspot-Signature-V3":      {hubspotsig.SignV3("other", "POST", publicURL+HubSpotPath, ref, strconv.FormatInt(testNow.UnixMilli(), 10))},
			"X-Hubspot-Request-Timestamp": {strconv.FormatInt(testNow.UnixMilli(), 10)}},
			wantStatus: 401, wantReason: "rejected:bad_signature"},
		{name: "signed over the Host header's URL", body: ref, header: http.Header{
			"X-Hubspot-Signature-V3":      {hubspotsig.SignV3(hsSecret, "POST", "http://127.0.0.1"+HubSpotPath, ref, strconv.FormatInt(testNow.UnixMilli(), 10))},
			"X-Hubspot-Request-Timestamp": {strconv.FormatInt(testNow.UnixMilli(), 10)}},
			wantStatus: 401, wantReason: "rejected:bad_signature"},
		{name: "query not signed", path: "?tenant=evil", body: ref, header: signV3("", ref, testNow), wantStatus: 401, wantReason: "rejected:bad_signature"},
		{name: "older than 5 minutes", body: ref, header: signV3("", ref, testNow.Add(-5*time.Minute-time.Second)), wantStatus: 401, wantReason: "rejected:signature_timestamp"},
		{name: "more than 5 minutes ahead", body: ref, header: signV3("", ref, testNow.Add(5*time.Minute+time.Second)), wantStatus: 401, wantReason: "rejected:signature_timestamp"},
		{name: "no signature", body: ref, wantStatus: 401, wantReason: "rejected:signature_missing"},
		{name: "publisher fails", mutate: func(e *env) {
			e.pub.fail = func(string, string) error { return errors.New("nats: timeout") }
		}, body: ref, header: signV3("", ref, testNow), wantStatus: 503, wantReason: "failed:publish"},
		{name: "JetStream never acks", mutate: func(e *env) { e.pub.block = true }, cfg: func(c *Config) { c.PublishTimeout = 50 * time.Millisecond },
			body: ref, header: signV3("", ref, testNow), wantStatus: 503, wantReason: "failed:publish"},
		{name: "101 events", body: tooMany, header: signV3("", tooMany, testNow), wantStatus: 400, wantReason: "rejected:too_many_events"},
		{name: "not JSON", body: []byte("<xml/>"), wantStatus: 400, wantReason: "rejected:malformed"},
		{name: "invalid UTF-8", body: []byte("[\"\xff\"]"), wantStatus: 400, wantReason: "rejected:invalid_utf8"},
		{name: "empty", body: nil, wantStatus: 400, wantReason: "rejected:empty"},
		{name: "XML content type", contentType: "text/xml", body: ref, header: signV3("", ref, testNow), wantStatus: 415, wantReason: "rejected:unsupported_media_type"},
		{name: "over 1 MB", body: big.Bytes(), wantStatus: 413, wantReason: "rejected:too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			if tt.mutate != nil {
				tt.mutate(e)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			status, _, body := e.post(t, HubSpotPath+tt.path, ct, tt.body, tt.header)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", status, tt.wantStatus, body)
			}
			var apiErr struct {
				Error struct{ Code string } `json:"error"`
			}
			kind, reason, _ := strings.Cut(tt.wantReason, ":")
			if err := json.Unmarshal(body, &apiErr); err != nil || apiErr.Error.Code != reason {
				t.Errorf("error body %s, want code %s", body, reason)
			}
			if got := e.meter.get(fmt.Sprintf("ownersync.ingress.%s{provider=hubspot,reason=%s}", kind, reason)); got != 1 {
				t.Errorf("%s counter for %s = %v, want 1 (%v)", kind, reason, got, e.meter.sums)
			}
			if diff := cmp.Diff(tt.wantAlert, e.alerts.sources); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
			if kind == "rejected" && len(e.pub.stored()) != 0 {
				t.Errorf("a rejected batch published %d events", len(e.pub.stored()))
			}
		})
	}
}
