package platformapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/libs/tenant"
)

const token = "platform-token-0123456789"

type fakePub struct {
	mu   sync.Mutex
	seen map[string]bool
	ids  []string
}

func (p *fakePub) Publish(_ context.Context, subject, msgID string, _ proto.Message) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[msgID] {
		return true, nil
	}
	p.seen[msgID] = true
	p.ids = append(p.ids, subject+" "+msgID)
	return false, nil
}

func (p *fakePub) stored() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]string(nil), p.ids...)
	sort.Strings(out)
	return out
}

type fakeTenants map[string]bool

func (f fakeTenants) Get(_ context.Context, id string) (*tenant.Tenant, error) {
	if f[id] {
		return &tenant.Tenant{ID: id}, nil
	}
	return nil, fmt.Errorf("tenant %s: %w", id, tenant.ErrNotFound)
}

func serve(t *testing.T, pub *fakePub) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if ae, ok := err.(*echoserver.APIError); ok {
			_ = c.JSON(ae.Status, map[string]any{"error": ae})
			return
		}
		e.DefaultHTTPErrorHandler(err, c)
	}
	New(Config{Token: token, Tenants: fakeTenants{"acme": true, "globex": true}}, pub).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/platform/events", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func userChange(tenantID, eventID string) string {
	return fmt.Sprintf(`{"meta":{"eventId":%q,"tenantId":%q},"user":{"id":"pu-1","status":"PLATFORM_USER_STATUS_ACTIVE","kind":"PLATFORM_USER_KIND_USER"}}`, eventID, tenantID)
}

// TestPlatformEventIDsAreTenantScoped covers issue 13 item 9: the same event_id from two tenants
// are two events (message id platform:<tenant>:<event_id>), not one dropped as a duplicate.
func TestPlatformEventIDsAreTenantScoped(t *testing.T) {
	pub := &fakePub{}
	srv := serve(t, pub)
	for _, tid := range []string{"acme", "globex"} {
		if code, out := post(t, srv, `{"userChanges":[`+userChange(tid, "evt-1")+`]}`); code != 200 || out["accepted"] != float64(1) || out["duplicates"] != float64(0) {
			t.Fatalf("%s: %d %v", tid, code, out)
		}
	}
	want := []string{
		"platform.user.changed.acme platform:acme:evt-1",
		"platform.user.changed.globex platform:globex:evt-1",
	}
	if diff := cmp.Diff(want, pub.stored()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
}

// TestPlatformEventsForUnknownTenantsRefused covers issue 13 item 9: an event for a tenant that
// does not exist is refused with a reason in the answer, per event; the batch's other events are
// published.
func TestPlatformEventsForUnknownTenantsRefused(t *testing.T) {
	pub := &fakePub{}
	srv := serve(t, pub)
	code, out := post(t, srv, `{"userChanges":[`+userChange("acme", "evt-1")+`,`+userChange("nosuch", "evt-2")+`],
		"ownerChanges":[{"meta":{"eventId":"evt-3","tenantId":"ghost"},"recordType":"RECORD_TYPE_CONTACT","platformRecordId":"r1"}]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d %v", code, out)
	}
	wantRejected := []any{
		map[string]any{"event": "user_changes[1]", "event_id": "evt-2", "tenant_id": "nosuch", "reason": "unknown_tenant"},
		map[string]any{"event": "owner_changes[0]", "event_id": "evt-3", "tenant_id": "ghost", "reason": "unknown_tenant"},
	}
	if diff := cmp.Diff(wantRejected, out["rejected"]); diff != "" {
		t.Errorf("rejected (-want +got):\n%s", diff)
	}
	if out["accepted"] != float64(1) {
		t.Errorf("accepted = %v, want 1", out["accepted"])
	}
	if diff := cmp.Diff([]string{"platform.user.changed.acme platform:acme:evt-1"}, pub.stored()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}

	// Only unknown tenants: nothing is published and the answer says so with a 422.
	code, out = post(t, srv, `{"userChanges":[`+userChange("nosuch", "evt-4")+`]}`)
	if code != http.StatusUnprocessableEntity || out["accepted"] != float64(0) || len(out["rejected"].([]any)) != 1 {
		t.Errorf("all unknown: %d %v", code, out)
	}
	if n := len(pub.stored()); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
}
