package mapper_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/mappingkv"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/mapper"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

const operatorToken = "operator-token-0123456789"

// stack is mapper running against sandboxes, with a test client for its API and NATS.
type stack struct {
	t    *testing.T
	addr string
	bus  *natsbus.Conn
	pub  *natsbus.Publisher
	sf   *sfsim.Org
	hs   *hssim.Account
	view *kvview.View
}

// startStack starts mapper with tenant acme; hubspotSettings are extra YAML lines of its hubspot
// section (e.g. "auto_provisioning: true").
func startStack(t *testing.T, hubspotSettings ...string) *stack {
	t.Helper()
	infra := harness.Start(t)
	ptrue, pfalse := true, false
	sf, err := sfsim.New(sfsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sf.Close() })
	if err := sf.Load(sfsim.Seed{Users: []sfsim.SeedUser{
		{Username: "alice@acme.test.sf", Email: "Alice@Acme.test", FirstName: "Alice", LastName: "Able", IsActive: &ptrue},
		{Username: "bob1@acme.test.sf", Email: "bob@acme.test", FirstName: "Bob", LastName: "One", IsActive: &ptrue},
		{Username: "bob2@acme.test.sf", Email: "bob@acme.test", FirstName: "Bob", LastName: "Two", IsActive: &ptrue},
		{Username: "carol@acme.test.sf", Email: "carol@acme.test", FirstName: "Carol", LastName: "Gone", IsActive: &pfalse},
		{Username: "dan@acme.test.sf", Email: "dan@acme.test", FirstName: "Dan", LastName: "Solo", IsActive: &ptrue},
	}}); err != nil {
		t.Fatal(err)
	}
	hs, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-na1-test"}, BurstLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	if err := hs.Load(hssim.Seed{Owners: []hssim.Owner{
		{Email: "alice@acme.test", FirstName: "Alice", LastName: "Able", Type: hssim.OwnerPerson, UserID: 101},
		{Email: "erin@acme.test", FirstName: "Erin", LastName: "Archived", Type: hssim.OwnerPerson, UserID: 102, Archived: true},
	}}); err != nil {
		t.Fatal(err)
	}

	seed := fmt.Sprintf(`tenants:
  - id: acme
    name: Acme Inc
    salesforce:
      enabled: true
      remap_on_deactivation: true
      org_id: %s
      instance_url: %s
      auth: {flow: client_credentials, client_id: test-client, client_secret_ref: "env:OWNERSYNC_SECRET_SF"}
    hubspot:
      enabled: true
      remap_on_deactivation: true
      portal_id: %d
      app_id: %d
      client_secret_ref: "env:OWNERSYNC_SECRET_HS_APP"
      api_base_url: %s
      auth: {kind: private_app, token_ref: "env:OWNERSYNC_SECRET_HS_TOKEN"}
`, sf.OrgID(), sf.URL(), hs.PortalID(), hs.AppID(), hs.URL())
	for _, l := range hubspotSettings {
		seed += "      " + l + "\n"
	}
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := harness.Service(t, "mapper", mapper.Run, infra.Env(map[string]string{
		"OWNERSYNC_OPERATOR_TOKEN":  operatorToken,
		"OWNERSYNC_TENANTS_FILE":    file,
		"OWNERSYNC_ADMIN_URL":       "https://admin.example.test",
		"OWNERSYNC_SECRET_SF":       "sf-client-secret",
		"OWNERSYNC_SECRET_HS_APP":   "hs-app-secret",
		"OWNERSYNC_SECRET_HS_TOKEN": "pat-na1-test",
		"OWNERSYNC_CRM_ANY_HOST":    "true", // the sandboxes listen on loopback
	}))
	bus, err := natsbus.Connect(context.Background(), natsbus.Options{URL: infra.NATSURL, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	kv, err := bus.JS.KeyValue(context.Background(), streams.MappingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, addr: addr, bus: bus, pub: natsbus.NewPublisher(bus.JS, nil, 0), sf: sf, hs: hs, view: kvview.New(bus.JS, kv)}
}

func (s *stack) api(method, path string, out any) int {
	s.t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		s.t.Logf("%s %s → %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func (s *stack) platformUser(id, email, first string, kind ownersyncv1.PlatformUserKind) {
	s.t.Helper()
	ev := &ownersyncv1.PlatformUserChanged{
		Meta: &ownersyncv1.EventMeta{EventId: "pu:" + id, TenantId: "acme", OccurredAt: timestamppb.Now(), Source: "test"},
		User: &ownersyncv1.PlatformUser{Id: id, Email: email, FirstName: first, LastName: "Test",
			Status: ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_ACTIVE, Kind: kind},
	}
	if _, err := s.pub.Publish(context.Background(), streams.PlatformUserChanged("acme"), ev.Meta.EventId, ev); err != nil {
		s.t.Fatal(err)
	}
}

type run struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	DryRun    bool   `json:"dry_run"`
	Pulled    int    `json:"pulled"`
	Providers []struct {
		Provider provider.Provider `json:"provider"`
		Error    string            `json:"error"`
		Mapped   int               `json:"mapped"`
		Created  int               `json:"created"`
	} `json:"providers"`
}

func (s *stack) sync(query string) run {
	s.t.Helper()
	var r run
	if code := s.api(http.MethodPost, "/v1/tenants/acme/sync-users"+query, &r); code != http.StatusAccepted {
		s.t.Fatalf("start sync: %d", code)
	}
	harness.Eventually(s.t, 20*time.Second, "sync run finishes", func() bool {
		s.api(http.MethodGet, "/v1/tenants/acme/sync-runs/"+r.ID, &r)
		return r.State != "running"
	})
	return r
}

// messages returns the payloads stored on the SYNC stream under subject.
func (s *stack) messages(subject string, into func() proto.Message) []proto.Message {
	s.t.Helper()
	return s.streamMessages(streams.Sync, subject, into)
}

// streamMessages returns the payloads stored on a stream under subject.
func (s *stack) streamMessages(stream, subject string, into func() proto.Message) []proto.Message {
	s.t.Helper()
	ctx := context.Background()
	c, err := s.bus.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []proto.Message
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			s.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			p := into()
			if err := proto.Unmarshal(m.Data(), p); err != nil {
				s.t.Fatal(err)
			}
			out = append(out, p)
		}
		if n == 0 {
			return out
		}
	}
}

type mappingItem struct {
	Provider       provider.Provider `json:"provider"`
	PlatformUserID string            `json:"platform_user_id"`
	CRMUserID      string            `json:"crm_user_id"`
	CRMUserActive  bool              `json:"crm_user_active"`
	Status         string            `json:"status"`
	MadeBy         string            `json:"made_by"`
}

func TestSyncUsersEndToEnd(t *testing.T) {
	s := startStack(t)
	s.platformUser("p-alice", "alice@acme.test", "Alice", ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER)
	s.platformUser("p-bob", "bob@acme.test", "Bob", ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER)
	s.platformUser("p-carol", "carol@acme.test", "Carol", ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER)
	s.platformUser("p-erin", "erin@acme.test", "Erin", ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER)
	s.platformUser("p-ivr", "alice@acme.test", "IVR", ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_EXTENSION)
	harness.Eventually(t, 10*time.Second, "platform users stored", func() bool {
		var o struct {
			Providers []struct {
				PlatformUsers int `json:"platform_users"`
			} `json:"providers"`
		}
		s.api(http.MethodGet, "/v1/tenants/acme/users/overview", &o)
		return len(o.Providers) > 0 && o.Providers[0].PlatformUsers == 5
	})

	// A dry run reports the plan and writes nothing.
	dry := s.sync("?dry_run=true")
	if dry.State != "succeeded" || !dry.DryRun {
		t.Fatalf("dry run = %+v", dry)
	}
	var page struct {
		Items []mappingItem `json:"items"`
		Total int           `json:"total"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/mappings", &page)
	if page.Total != 0 {
		t.Fatalf("dry run wrote %d mappings", page.Total)
	}

	r := s.sync("")
	if r.State != "succeeded" || r.Pulled != 7 {
		t.Fatalf("run = %+v, want succeeded with 7 users pulled (5 Salesforce, 2 HubSpot)", r)
	}
	s.api(http.MethodGet, "/v1/tenants/acme/mappings", &page)
	sfAlice, ok := s.sf.UserByUsername("alice@acme.test.sf")
	if !ok {
		t.Fatal("no alice in sfsim")
	}
	if page.Total != 2 || page.Items[0].Provider != "hubspot" || page.Items[1].CRMUserID != sfAlice.ID ||
		page.Items[0].PlatformUserID != "p-alice" || page.Items[1].PlatformUserID != "p-alice" || page.Items[1].Status != "synced" {
		t.Fatalf("mappings = %+v", page)
	}

	var problems struct {
		Items []struct {
			Provider       provider.Provider `json:"provider"`
			Code           string            `json:"code"`
			PlatformUserID string            `json:"platform_user_id"`
			Fix            string            `json:"fix"`
		} `json:"items"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/errors", &problems)
	codes := map[string]bool{}
	for _, p := range problems.Items {
		codes[string(p.Provider)+"/"+p.Code+"/"+p.PlatformUserID] = true
		if p.Fix == "" {
			t.Errorf("problem %+v has no fix", p)
		}
	}
	for _, want := range []string{"salesforce/ambiguous_email/p-bob", "salesforce/crm_user_inactive/p-carol", "hubspot/crm_user_inactive/p-erin"} {
		if !codes[want] {
			t.Errorf("errors lack %s; have %v", want, codes)
		}
	}
	var unmapped struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	s.api(http.MethodGet, "/v1/tenants/acme/unmapped/crm-users?provider=salesforce", &unmapped)
	sfDan, _ := s.sf.UserByUsername("dan@acme.test.sf")
	foundDan := false
	for _, u := range unmapped.Items {
		foundDan = foundDan || u.ID == sfDan.ID
	}
	if !foundDan {
		t.Errorf("unmapped Salesforce users %v lack dan %s", unmapped, sfDan.ID)
	}

	reports := s.messages("report.sync.acme", func() proto.Message { return &ownersyncv1.SyncReport{} })
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2 (dry run and real)", len(reports))
	}
	rep := reports[1].(*ownersyncv1.SyncReport)
	if rep.GetMeta().GetEventId() != "report:"+r.ID || rep.GetTenantName() != "Acme Inc" || rep.GetAdminUrl() != "https://admin.example.test" || rep.GetDryRun() {
		t.Errorf("report meta = %v name %q url %q dry %v", rep.GetMeta(), rep.GetTenantName(), rep.GetAdminUrl(), rep.GetDryRun())
	}
	if !reports[0].(*ownersyncv1.SyncReport).GetDryRun() {
		t.Error("first report is not marked dry_run")
	}
	for _, p := range rep.GetProviders() {
		if p.GetCounts().GetCreated() != 1 || p.GetCounts().GetMapped() != 1 {
			t.Errorf("%v counts = %v", p.GetProvider(), p.GetCounts())
		}
	}
	changed := s.messages("mapping.changed.acme.>", func() proto.Message { return &ownersyncv1.MappingChanged{} })
	created := 0
	for _, m := range changed {
		if m.(*ownersyncv1.MappingChanged).GetChange() == ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED {
			created++
		}
	}
	if created != 2 {
		t.Errorf("%d mapping.changed created events, want 2", created)
	}

	// The KV view matches the mappings in both directions.
	ctx := context.Background()
	e, ok, err := s.view.Get(ctx, mappingkv.CRMKey("acme", "salesforce", sfAlice.ID))
	if err != nil || !ok || e.PlatformUserID != "p-alice" || !e.Active || !e.Usable || e.Kind != "user" {
		t.Fatalf("KV crm entry = %+v %v %v", e, ok, err)
	}
	e2, ok, _ := s.view.Get(ctx, mappingkv.PlatformKey("acme", "salesforce", "p-alice"))
	if !ok || e2 != e {
		t.Fatalf("KV platform entry = %+v, want %+v", e2, e)
	}
	all, err := s.view.Entries(ctx, "acme", "hubspot")
	if err != nil || len(all) != 2 {
		t.Fatalf("hubspot KV entries = %v %v, want 2 keys", all, err)
	}

	// A Salesforce deactivation event turns the mapping to error at once; the view follows.
	ev := &ownersyncv1.CrmUserChanged{
		Meta:     &ownersyncv1.EventMeta{EventId: "sf:test:deactivate-alice", TenantId: "acme", OccurredAt: timestamppb.Now(), Source: "test"},
		Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE,
		User:     &ownersyncv1.CrmUser{Id: sfAlice.ID, Active: false, Kind: ownersyncv1.CrmUserKind_CRM_USER_KIND_USER},
		Fields:   []string{"active"},
	}
	if _, err := s.pub.Publish(ctx, streams.CrmUserChanged("acme", "salesforce"), ev.Meta.EventId, ev); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "KV shows the deactivated CRM user", func() bool {
		e, ok, _ := s.view.Get(ctx, mappingkv.PlatformKey("acme", "salesforce", "p-alice"))
		return ok && !e.Active && e.Status == "error" && !e.Usable
	})
	s.api(http.MethodGet, "/v1/tenants/acme/mappings?provider=salesforce", &page)
	if page.Total != 1 || page.Items[0].Status != "error" || page.Items[0].CRMUserActive {
		t.Errorf("after deactivation: %+v", page)
	}
	// The same event again (a redelivery past the stream's duplicate window) changes nothing and
	// publishes nothing new.
	before := len(s.messages("mapping.changed.acme.salesforce", func() proto.Message { return &ownersyncv1.MappingChanged{} }))
	ack, err := s.pub.Publish(ctx, streams.CrmUserChanged("acme", "salesforce"), "redelivery-of-deactivate-alice", ev)
	if err != nil || ack {
		t.Fatalf("republish: dup %v err %v", ack, err)
	}
	harness.Eventually(t, 10*time.Second, "mapper-crm-users acked everything", func() bool {
		c, err := s.bus.JS.Consumer(ctx, streams.CRM, "mapper-crm-users")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	changed = s.messages("mapping.changed.acme.salesforce", func() proto.Message { return &ownersyncv1.MappingChanged{} })
	if len(changed) != before {
		t.Errorf("redelivered event published %d more mapping.changed", len(changed)-before)
	}
	last := changed[len(changed)-1].(*ownersyncv1.MappingChanged)
	if last.GetChange() != ownersyncv1.MappingChange_MAPPING_CHANGE_ERROR || last.GetMeta().GetEventId() != "sf:test:deactivate-alice:salesforce:0" {
		t.Errorf("last mapping.changed = %v", last)
	}

	// A HubSpot failure ends that provider's part with the error recorded and reported, and
	// leaves its mappings untouched; the next Sync Users removes the Salesforce mapping.
	// user.refresh re-reads a CRM user from Salesforce: Carol was reactivated there, so she is
	// mapped at once.
	sfCarol, _ := s.sf.UserByUsername("carol@acme.test.sf")
	if _, err := s.sf.UpdateUser(sfCarol.ID, func(u *sfsim.User) { u.IsActive = true }); err != nil {
		t.Fatal(err)
	}
	refresh := &ownersyncv1.UserRefresh{Meta: &ownersyncv1.EventMeta{EventId: "refresh:carol", TenantId: "acme", OccurredAt: timestamppb.Now()},
		Provider: ownersyncv1.Provider_PROVIDER_SALESFORCE, CrmUserId: sfCarol.ID, Reason: "INACTIVE_OWNER_OR_USER"}
	if _, err := s.pub.Publish(ctx, streams.UserRefresh("acme", "salesforce"), refresh.Meta.EventId, refresh); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "refreshed Carol is mapped", func() bool {
		e, ok, _ := s.view.Get(ctx, mappingkv.CRMKey("acme", "salesforce", sfCarol.ID))
		return ok && e.PlatformUserID == "p-carol" && e.Usable
	})

	if _, err := s.sf.UpdateUser(sfAlice.ID, func(u *sfsim.User) { u.IsActive = false }); err != nil {
		t.Fatal(err)
	}
	s.hs.Faults().Add(crmsim.Rule{Name: "owners down", Path: "/crm/v3/owners", Action: crmsim.ActionStatus, Status: 503})
	r = s.sync("")
	if r.State != "failed" || len(r.Providers) != 2 || r.Providers[1].Error == "" || r.Providers[0].Error != "" {
		t.Fatalf("run with HubSpot down = %+v", r)
	}
	s.api(http.MethodGet, "/v1/tenants/acme/mappings", &page)
	if page.Total != 2 || page.Items[0].Provider != "hubspot" || page.Items[0].Status != "synced" || page.Items[1].PlatformUserID != "p-carol" {
		t.Errorf("after partial run: %+v", page)
	}
	s.api(http.MethodGet, "/v1/tenants/acme/errors?provider=hubspot", &problems)
	hasCRMError := false
	for _, p := range problems.Items {
		hasCRMError = hasCRMError || p.Code == "crm_api_error"
	}
	if !hasCRMError {
		t.Errorf("hubspot errors %+v lack crm_api_error", problems)
	}
	if _, ok, _ := s.view.Get(ctx, mappingkv.PlatformKey("acme", "salesforce", "p-alice")); ok {
		t.Error("KV still has the removed Salesforce mapping")
	}
	reports = s.messages("report.sync.acme", func() proto.Message { return &ownersyncv1.SyncReport{} })
	lastRep := reports[len(reports)-1].(*ownersyncv1.SyncReport)
	if f := lastRep.GetProviders()[1].GetFailure(); !strings.Contains(f, "503") {
		t.Errorf("report failure %q does not carry the HubSpot error", f)
	}
}
