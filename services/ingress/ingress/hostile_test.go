package ingress_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/ingress/ingress"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestHostileInputsAgainstRunningIngress runs issue 13's ingress cases against ingress.Run with
// real JetStream and FerretDB: each hostile request gets its answer and stores nothing, the one
// accepted message is stored with its future source time clamped, and the heap stays within a
// ratio of where it started.
func TestHostileInputsAgainstRunningIngress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	infra := harness.Start(t)
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: infra.MongoURI, Database: "ownersync"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	acme := &tenant.Tenant{ID: "acme", Name: "Acme", Salesforce: &tenant.SFConfig{
		Settings: tenant.Settings{Enabled: true}, OrgID: "00D5g000004XyZa",
		Auth:         tenant.SFAuth{Flow: "client_credentials", ClientID: "x", ClientSecretRef: "env:OWNERSYNC_SECRET_SF_CLIENT"},
		SharedKeyRef: tenant.SharedKeyDigest("k3y-0123456789abcdef"),
	}}
	if err := tenantstore.New(conn.DB, nil).Put(ctx, acme); err != nil {
		t.Fatal(err)
	}
	addr := harness.Service(t, "ingress", ingress.Run, infra.Env(map[string]string{
		"OWNERSYNC_PUBLIC_URL":       "https://hooks.example.com",
		"OWNERSYNC_PLATFORM_TOKEN":   "platform-token-0123456789",
		"OWNERSYNC_SECRET_SF_CLIENT": "unused",
	}))
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: infra.NATSURL})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	stored := func(stream string) uint64 {
		s, err := bus.JS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	post := func(path, contentType string, body []byte, header ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	message, err := os.ReadFile("../testdata/salesforce/contact_and_queue_lead.xml")
	if err != nil {
		t.Fatal(err)
	}
	var wide strings.Builder
	for i := range 20_000 {
		fmt.Fprintf(&wide, ` xmlns:p%d="urn:x:%d" p%d:a="v"`, i, i, i)
	}
	hostileSOAP := bytes.Replace(message, []byte("<soapenv:Body>"), []byte("<soapenv:Header><h"+wide.String()+"/></soapenv:Header><soapenv:Body>"), 1)
	if bytes.Equal(hostileSOAP, message) {
		t.Fatal("the test message has no soapenv:Body")
	}

	before := heapInUse()
	tests := []struct {
		name       string
		path, ct   string
		body       []byte
		header     []string
		wantStatus int
	}{
		{name: "outbound message without the shared key", path: "/webhooks/salesforce", ct: "text/xml", body: message, wantStatus: 403},
		{name: "outbound message with a wrong key", path: "/webhooks/salesforce?key=guess", ct: "text/xml", body: message, wantStatus: 403},
		{name: "quadratic SOAP", path: "/webhooks/salesforce?key=k3y-0123456789abcdef", ct: "text/xml", body: hostileSOAP, wantStatus: 400},
		{name: "platform event for a tenant that does not exist", path: "/v1/platform/events", ct: "application/json",
			body:   []byte(`{"userChanges":[{"meta":{"eventId":"e1","tenantId":"nosuch"},"user":{"id":"u1","status":"PLATFORM_USER_STATUS_ACTIVE","kind":"PLATFORM_USER_KIND_USER"}}]}`),
			header: []string{"Authorization", "Bearer platform-token-0123456789"}, wantStatus: 422},
		{name: "unsigned hubspot junk", path: "/webhooks/hubspot", ct: "application/json", body: []byte(`[{"portalId":1}]`), wantStatus: 400},
	}
	for _, tt := range tests {
		for range 20 {
			if status, body := post(tt.path, tt.ct, tt.body, tt.header...); status != tt.wantStatus {
				t.Fatalf("%s: status %d, want %d: %.300s", tt.name, status, tt.wantStatus, body)
			}
		}
	}
	if n := stored(streams.CRM) + stored(streams.Platform); n != 0 {
		t.Fatalf("hostile requests stored %d messages", n)
	}

	// The real message with its key, LastModifiedDate in 2099: stored, clamped.
	future := bytes.Replace(message, []byte("<sf:OwnerId>"), []byte("<sf:LastModifiedDate>2099-01-01T00:00:00Z</sf:LastModifiedDate><sf:OwnerId>"), 1)
	start := time.Now()
	if status, body := post("/webhooks/salesforce?key=k3y-0123456789abcdef", "text/xml", future); status != 200 {
		t.Fatalf("the keyed message: status %d: %s", status, body)
	}
	s, err := bus.JS.Stream(ctx, streams.CRM)
	if err != nil {
		t.Fatal(err)
	}
	clamped := false
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev ownersyncv1.CrmOwnerChanged
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		at := ev.GetMeta().GetOccurredAt().AsTime()
		if at.After(time.Now().Add(6 * time.Minute)) {
			t.Errorf("occurred_at %s: not clamped to receipt + 5 min", at)
		}
		clamped = clamped || at.After(start.Add(4*time.Minute))
	}
	if !clamped {
		t.Error("no stored event carries the clamped time")
	}
	after := heapInUse()
	t.Logf("heap in use %d MB before the hostile requests, %d MB after", before>>20, after>>20)
	if ratio := float64(after) / float64(before); ratio > 3 {
		t.Errorf("heap grew %.1f× under hostile requests", ratio)
	}
}
