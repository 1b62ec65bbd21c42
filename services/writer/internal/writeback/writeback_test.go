package writeback

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/services/writer/internal/recordstate"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
)

const (
	sfAda      = "0055g00000AsDfGAAV"
	sfFallback = "0055g00000FbFbFAAV"
	sfC1       = "0035g00000QwErTAAV"
	hsAda      = "71234567"
	hsFallback = "71239999"
	hsC1       = "51234"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// memKV is an in-memory KV with JetStream's revision semantics.
type memKV struct {
	mu   sync.Mutex
	seq  uint64
	data map[string]memEntry
}

type memEntry struct {
	val []byte
	rev uint64
}

func (m *memKV) Get(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[key]
	if !ok {
		return nil, 0, recordstate.ErrNotFound
	}
	return e.val, e.rev, nil
}

func (m *memKV) Create(_ context.Context, key string, val []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[key]; ok {
		return 0, recordstate.ErrExists
	}
	m.seq++
	m.data[key] = memEntry{val: append([]byte(nil), val...), rev: m.seq}
	return m.seq, nil
}

func (m *memKV) Update(_ context.Context, key string, val []byte, last uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.data[key]; !ok || e.rev != last {
		return 0, recordstate.ErrRevisionMismatch
	}
	m.seq++
	m.data[key] = memEntry{val: append([]byte(nil), val...), rev: m.seq}
	return m.seq, nil
}

// fakeCRM is the flush function of both CRMs: it keeps owners per record, counts calls, and fails
// records as told.
type fakeCRM struct {
	mu     sync.Mutex
	owners map[provider.Provider]map[string]string
	calls  map[provider.Provider]int
	// fail: record id → the error of its next writes; times left (< 0: always).
	fail map[string]*failure
}

type failure struct {
	err   *crmwrite.Error
	times int
}

func newFakeCRM() *fakeCRM {
	return &fakeCRM{owners: map[provider.Provider]map[string]string{provider.Salesforce: {}, provider.HubSpot: {}},
		calls: map[provider.Provider]int{}, fail: map[string]*failure{}}
}

func (c *fakeCRM) flush(_ context.Context, key crmwrite.BatchKey, batch []batcher.Item[crmwrite.Write]) ([]batcher.Result[crmwrite.Written], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[key.Provider]++
	out := make([]batcher.Result[crmwrite.Written], len(batch))
	for i, it := range batch {
		if f := c.fail[it.RecordID]; f != nil && f.times != 0 {
			f.times--
			e := *f.err
			e.RecordID = it.RecordID
			out[i].Err = &e
			continue
		}
		c.owners[key.Provider][it.RecordID] = it.Value.OwnerID
		out[i].Value = crmwrite.Written{RecordID: it.RecordID, OwnerID: it.Value.OwnerID}
	}
	return out, nil
}

func (c *fakeCRM) owner(p provider.Provider, id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owners[p][id]
}

func (c *fakeCRM) callCount(p provider.Provider) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[p]
}

type view struct {
	byCRM, byPlatform map[provider.Provider]map[string]ownership.Mapping
}

func (v view) ByCRMUser(_ context.Context, _ string, p provider.Provider, id string) (ownership.Mapping, bool, error) {
	m, ok := v.byCRM[p][id]
	return m, ok, nil
}

func (v view) ByPlatformUser(_ context.Context, _ string, p provider.Provider, id string) (ownership.Mapping, bool, error) {
	m, ok := v.byPlatform[p][id]
	return m, ok, nil
}

func testView() view {
	ada := map[provider.Provider]ownership.Mapping{
		provider.Salesforce: {PlatformUserID: "pu-ada", CRMUserID: sfAda, CRMUserActive: true},
		provider.HubSpot:    {PlatformUserID: "pu-ada", CRMUserID: hsAda, CRMUserActive: true},
	}
	v := view{byCRM: map[provider.Provider]map[string]ownership.Mapping{}, byPlatform: map[provider.Provider]map[string]ownership.Mapping{}}
	for p, m := range ada {
		v.byCRM[p] = map[string]ownership.Mapping{m.CRMUserID: m}
		v.byPlatform[p] = map[string]ownership.Mapping{m.PlatformUserID: m}
	}
	return v
}

type policies map[string]ownership.Policy

func (p policies) Policy(_ context.Context, tenant string) (ownership.Policy, error) {
	pol, ok := p[tenant]
	if !ok {
		return pol, fmt.Errorf("%q: %w", tenant, ErrUnknownTenant)
	}
	return pol, nil
}

// sink records what the engine published and recorded.
type sink struct {
	mu       sync.Mutex
	assigns  []ownership.Assignment
	refresh  []string
	alerts   []Alert
	history  []Entry
	links    map[string]string
	finds    int
	byEmail  map[string]string
	failNext error
	// assignEmails are the record emails the published assignments named, by CRM record id.
	assignEmails map[string]string
}

func (s *sink) Assign(_ context.Context, ch ownership.CRMOwnerChange, a ownership.Assignment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	s.assigns = append(s.assigns, a)
	if s.assignEmails == nil {
		s.assignEmails = map[string]string{}
	}
	s.assignEmails[ch.RecordID] = ch.Email
	return nil
}

func (s *sink) RefreshUser(_ context.Context, tenant string, p provider.Provider, id, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = append(s.refresh, tenant+"/"+string(p)+"/"+id)
	return nil
}

func (s *sink) Alert(_ context.Context, a Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts = append(s.alerts, a)
	return nil
}

func (s *sink) Record(_ context.Context, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, e)
	return nil
}

func (s *sink) Link(_ context.Context, tenant string, p provider.Provider, rt ownership.RecordType, id string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.links[string(p)+"/"+id]
	return v, ok, nil
}

func (s *sink) SaveLink(_ context.Context, _ string, p provider.Provider, _ ownership.RecordType, id, crmID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links[string(p)+"/"+id] = crmID
	return nil
}

func (s *sink) RecordEmail(_ context.Context, _ string, p provider.Provider, _ ownership.RecordType, id string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byEmail {
		if v == id && strings.HasPrefix(k, string(p)+"/") {
			return strings.TrimPrefix(k, string(p)+"/"), true, nil
		}
	}
	return "", false, nil
}

func (s *sink) FindRecord(_ context.Context, _ string, p provider.Provider, _ ownership.RecordType, email string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finds++
	id, ok := s.byEmail[string(p)+"/"+email]
	return id, ok, nil
}

// outcomes lists the history as "<provider> <outcome>" lines.
func (s *sink) outcomes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.history {
		out = append(out, string(e.Provider)+" "+string(e.Outcome))
	}
	return out
}

func (s *sink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigns, s.refresh, s.alerts, s.history = nil, nil, nil, nil
}

type env struct {
	engine *Engine
	crm    *fakeCRM
	sink   *sink
	batch  *batcher.Batcher[crmwrite.BatchKey, crmwrite.Write, crmwrite.Written]
	kv     *memKV
	now    time.Time
	mu     sync.Mutex
}

func (e *env) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func newEnv(t *testing.T, dir ownership.Direction, linger time.Duration) *env {
	t.Helper()
	e := &env{crm: newFakeCRM(), now: t0.Add(time.Hour),
		sink: &sink{links: map[string]string{}, byEmail: map[string]string{}}}
	e.batch = batcher.New(e.crm.flush, batcher.Options[crmwrite.BatchKey, crmwrite.Write]{Linger: linger, Supersedes: crmwrite.Supersedes})
	t.Cleanup(func() { e.batch.Close(context.Background()) })
	pol := policies{"acme": {Tenant: "acme", Providers: map[provider.Provider]ownership.ProviderPolicy{
		provider.Salesforce: {Enabled: true, Direction: dir, RecordTypes: []ownership.RecordType{ownership.Contact, ownership.Lead}, FallbackOwnerID: sfFallback},
		provider.HubSpot:    {Enabled: true, Direction: dir, FallbackOwnerID: hsFallback},
	}}}
	kv := &memKV{data: map[string]memEntry{}}
	e.kv = kv
	e.engine = New(Config{EchoWindow: 10 * time.Minute, Now: e.clock}, Deps{
		Policies: pol, View: testView(), States: recordstate.NewStore(kv), Writes: e.batch,
		Links: e.sink, Finder: e.sink, Publisher: e.sink, History: e.sink,
	})
	return e
}

func crmChange(p provider.Provider, id, owner, event string, at time.Time) ownership.CRMOwnerChange {
	return ownership.CRMOwnerChange{EventID: event, Tenant: "acme", Provider: p, RecordType: ownership.Contact,
		RecordID: id, OwnerID: owner, OwnerKind: ownership.KindUser, OccurredAt: at}
}

func platformChange(owner, event string, at time.Time) ownership.PlatformOwnerChange {
	return ownership.PlatformOwnerChange{EventID: event, Tenant: "acme", RecordType: ownership.Contact, PlatformRecordID: "pr-1",
		Email: "c1@example.org", OwnerUserID: owner, OccurredAt: at,
		CRMRecordIDs: map[provider.Provider]string{provider.Salesforce: sfC1, provider.HubSpot: hsC1}}
}

func TestCRMChangeAssignsOnceAndRejectsStale(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	ch := crmChange(provider.HubSpot, hsC1, hsAda, "hs-1", t0)
	for i := 0; i < 2; i++ { // delivered twice
		if err := e.engine.CRMChange(ctx, ch, 1); err != nil {
			t.Fatalf("CRMChange: %v", err)
		}
	}
	older := crmChange(provider.HubSpot, hsC1, "555", "hs-0", t0.Add(-time.Minute))
	if err := e.engine.CRMChange(ctx, older, 1); err != nil {
		t.Fatalf("CRMChange(older): %v", err)
	}
	wantAssign := ownership.Assignment{Outcome: ownership.Assigned, OwnerUserID: "pu-ada", CRMOwnerID: hsAda,
		Reason: "hubspot user " + hsAda + " maps to platform user pu-ada"}
	// The redelivery republishes the same assignment (deduplicated by JetStream on the event id).
	if diff := cmp.Diff([]ownership.Assignment{wantAssign, wantAssign}, e.sink.assigns); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hubspot applied", "hubspot redelivered", "hubspot stale"}, e.sink.outcomes()); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestCRMChangePublishFailureIsRedone(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	e.sink.failNext = errors.New("nats down")
	ch := crmChange(provider.Salesforce, sfC1, sfAda, "sf-1", t0)
	if err := e.engine.CRMChange(context.Background(), ch, 1); err == nil || ownership.IsUnretryable(err) {
		t.Fatalf("CRMChange with NATS down = %v, want a transient error", err)
	}
	if err := e.engine.CRMChange(context.Background(), ch, 1); err != nil {
		t.Fatalf("redelivered CRMChange: %v", err)
	}
	if len(e.sink.assigns) != 1 || e.sink.assigns[0].OwnerUserID != "pu-ada" {
		t.Errorf("assignments %+v, want the one for pu-ada", e.sink.assigns)
	}
}

func TestDirectionSkips(t *testing.T) {
	e := newEnv(t, ownership.PlatformToCRM, 5*time.Millisecond)
	if err := e.engine.CRMChange(context.Background(), crmChange(provider.HubSpot, hsC1, hsAda, "hs-1", t0), 1); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, ownership.CRMToPlatform, 5*time.Millisecond)
	if err := e2.engine.PlatformChange(context.Background(), platformChange("pu-ada", "p-1", t0)); err != nil {
		t.Fatal(err)
	}
	if len(e.sink.assigns) != 0 || e2.crm.callCount(provider.Salesforce)+e2.crm.callCount(provider.HubSpot) != 0 {
		t.Errorf("a change the direction does not allow had an effect: %d assigns, %d CRM calls", len(e.sink.assigns),
			e2.crm.callCount(provider.Salesforce)+e2.crm.callCount(provider.HubSpot))
	}
	if diff := cmp.Diff([]string{"hubspot skipped"}, e.sink.outcomes()); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"salesforce skipped", "hubspot skipped"}, e2.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestPlatformChangeWritesOnceAndStopsTheEcho is the loop the writer must not start: a platform
// change is written to both CRMs once, their notifications of that write come back and are echoes,
// and a redelivery of the platform change writes nothing.
func TestPlatformChangeWritesOnceAndStopsTheEcho(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	ch := platformChange("pu-ada", "p-1", t0)
	if err := e.engine.PlatformChange(ctx, ch); err != nil {
		t.Fatalf("PlatformChange: %v", err)
	}
	if e.crm.owner(provider.Salesforce, sfC1) != sfAda || e.crm.owner(provider.HubSpot, hsC1) != hsAda {
		t.Fatalf("CRM owners %q, %q; want the mapped users", e.crm.owner(provider.Salesforce, sfC1), e.crm.owner(provider.HubSpot, hsC1))
	}
	e.advance(2 * time.Second)
	for _, echo := range []ownership.CRMOwnerChange{
		crmChange(provider.Salesforce, sfC1[:15], sfAda, "sf-echo", t0.Add(time.Hour+time.Second)),
		crmChange(provider.HubSpot, hsC1, hsAda, "hs-echo", t0.Add(time.Hour+time.Second)),
	} {
		if err := e.engine.CRMChange(ctx, echo, 1); err != nil {
			t.Fatalf("CRMChange(echo): %v", err)
		}
	}
	if err := e.engine.PlatformChange(ctx, ch); err != nil { // redelivered
		t.Fatalf("PlatformChange again: %v", err)
	}
	if got := []int{e.crm.callCount(provider.Salesforce), e.crm.callCount(provider.HubSpot)}; !cmp.Equal(got, []int{1, 1}) {
		t.Errorf("CRM calls (salesforce, hubspot) = %v, want one each", got)
	}
	if len(e.sink.assigns) != 0 {
		t.Errorf("echoes were assigned to the platform: %+v", e.sink.assigns)
	}
	want := []string{"hubspot applied", "hubspot duplicate", "hubspot echo", "salesforce applied", "salesforce duplicate", "salesforce echo"}
	if diff := cmp.Diff(want, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestPlatformChangesOutOfOrder(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	newer := platformChange("pu-ada", "p-2", t0.Add(time.Minute))
	older := platformChange("pu-nobody", "p-1", t0) // would take the fallback owner
	for _, ch := range []ownership.PlatformOwnerChange{newer, older, newer} {
		if err := e.engine.PlatformChange(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if e.crm.owner(provider.Salesforce, sfC1) != sfAda || e.crm.owner(provider.HubSpot, hsC1) != hsAda {
		t.Errorf("CRM owners %q, %q; want the newer change's", e.crm.owner(provider.Salesforce, sfC1), e.crm.owner(provider.HubSpot, hsC1))
	}
	want := []string{"hubspot applied", "hubspot duplicate", "hubspot stale", "salesforce applied", "salesforce duplicate", "salesforce stale"}
	if diff := cmp.Diff(want, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestFallbackAndNoValidOwner(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	if err := e.engine.PlatformChange(ctx, platformChange("pu-nobody", "p-1", t0)); err != nil {
		t.Fatal(err)
	}
	if e.crm.owner(provider.Salesforce, sfC1) != sfFallback || e.crm.owner(provider.HubSpot, hsC1) != hsFallback {
		t.Errorf("CRM owners %q, %q; want the fallback owners", e.crm.owner(provider.Salesforce, sfC1), e.crm.owner(provider.HubSpot, hsC1))
	}
	if diff := cmp.Diff([]string{"hubspot fallback", "salesforce fallback"}, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	// Without a fallback owner: an error the admin sees, and a dead letter.
	e2 := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	pol := e2.engine.d.Policies.(policies)["acme"]
	hs := pol.Providers[provider.HubSpot]
	hs.FallbackOwnerID = ""
	pol.Providers = map[provider.Provider]ownership.ProviderPolicy{provider.HubSpot: hs}
	e2.engine.d.Policies = policies{"acme": pol}
	err := e2.engine.PlatformChange(ctx, platformChange("pu-nobody", "p-1", t0))
	if !ownership.IsUnretryable(err) {
		t.Fatalf("PlatformChange without a valid owner = %v, want permanent", err)
	}
	if len(e2.sink.alerts) != 1 || e2.sink.alerts[0].Kind != AlertWritebackFailed {
		t.Errorf("alerts %+v, want one writeback_failed", e2.sink.alerts)
	}
	if diff := cmp.Diff([]string{"hubspot failed"}, e2.sink.outcomes()); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestPermanentCRMErrorReleasesTheClaim(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	e.crm.fail[sfC1] = &failure{times: 1, err: &crmwrite.Error{Provider: provider.Salesforce, Code: "INACTIVE_OWNER_OR_USER",
		Class: ownership.ClassifySalesforce(200, "INACTIVE_OWNER_OR_USER")}}
	err := e.engine.PlatformChange(ctx, platformChange("pu-ada", "p-1", t0))
	if !ownership.IsUnretryable(err) {
		t.Fatalf("PlatformChange = %v, want permanent", err)
	}
	if diff := cmp.Diff([]string{"acme/salesforce/" + sfAda}, e.sink.refresh); diff != "" {
		t.Errorf("refresh requests (-want +got):\n%s", diff)
	}
	if len(e.sink.alerts) != 1 || e.sink.alerts[0].Record != "salesforce/contact/"+sfC1 {
		t.Errorf("alerts %+v, want one for the contact", e.sink.alerts)
	}
	if diff := cmp.Diff([]string{"hubspot applied", "salesforce failed"}, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	// The failed entry keeps the CRM's error code for the console's Failed writes (issue 16).
	for _, h := range e.sink.history {
		if h.Outcome == Failed && h.ErrorCode != "INACTIVE_OWNER_OR_USER" {
			t.Errorf("failed entry's error code %q, want INACTIVE_OWNER_OR_USER", h.ErrorCode)
		}
	}
	// Replayed from the dead-letter queue once the user is fixed: Salesforce is written, HubSpot
	// sees a duplicate.
	e.sink.reset()
	if err := e.engine.PlatformChange(ctx, platformChange("pu-ada", "p-1", t0)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if e.crm.owner(provider.Salesforce, sfC1) != sfAda {
		t.Errorf("salesforce owner after replay %q, want %s", e.crm.owner(provider.Salesforce, sfC1), sfAda)
	}
	if diff := cmp.Diff([]string{"hubspot duplicate", "salesforce applied"}, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history after replay (-want +got):\n%s", diff)
	}
}

func TestTransientCRMErrorComesBackAndIsRedone(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	e.crm.fail[hsC1] = &failure{times: 1, err: &crmwrite.Error{Provider: provider.HubSpot,
		Class: ownership.Classification{Class: ownership.RateLimited}, RetryAfter: 7 * time.Second}}
	err := e.engine.PlatformChange(ctx, platformChange("pu-ada", "p-1", t0))
	if d, ok := ownership.RetryDelay(err); !ok || d != 7*time.Second || ownership.IsUnretryable(err) {
		t.Fatalf("PlatformChange = %v, want a retry in 7s", err)
	}
	if err := e.engine.PlatformChange(ctx, platformChange("pu-ada", "p-1", t0)); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if e.crm.owner(provider.HubSpot, hsC1) != hsAda {
		t.Errorf("hubspot owner %q, want %s", e.crm.owner(provider.HubSpot, hsC1), hsAda)
	}
	if got := e.crm.callCount(provider.Salesforce); got != 1 {
		t.Errorf("%d salesforce calls, want 1: the redelivery must not write Salesforce again", got)
	}
	if diff := cmp.Diff([]string{"hubspot redelivered", "salesforce applied", "salesforce duplicate"}, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestRecordFoundByLinkOrEmail(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ctx := context.Background()
	e.sink.byEmail["hubspot/c1@example.org"] = hsC1
	ch := platformChange("pu-ada", "p-1", t0)
	ch.CRMRecordIDs = nil
	if err := e.engine.PlatformChange(ctx, ch); err != nil {
		t.Fatal(err)
	}
	ch2 := platformChange("pu-nobody", "p-2", t0.Add(time.Minute))
	ch2.CRMRecordIDs, ch2.Email = nil, ""
	if err := e.engine.PlatformChange(ctx, ch2); err != nil {
		t.Fatal(err)
	}
	if e.sink.finds != 2 { // p-1: salesforce (none) and hubspot (found); p-2 uses the link
		t.Errorf("%d email searches, want 2", e.sink.finds)
	}
	if e.crm.owner(provider.HubSpot, hsC1) != hsFallback {
		t.Errorf("hubspot owner %q, want the second change's fallback %s", e.crm.owner(provider.HubSpot, hsC1), hsFallback)
	}
	want := []string{"hubspot applied", "hubspot fallback", "salesforce not_found", "salesforce not_found"}
	if diff := cmp.Diff(want, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestCoalescedChangeIsSuperseded(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 200*time.Millisecond)
	ctx := context.Background()
	first := platformChange("pu-nobody", "p-1", t0)
	second := platformChange("pu-ada", "p-2", t0.Add(time.Second))
	first.CRMRecordIDs = map[provider.Provider]string{provider.HubSpot: hsC1}
	second.CRMRecordIDs = first.CRMRecordIDs
	pol := e.engine.d.Policies.(policies)["acme"]
	pol.Providers = map[provider.Provider]ownership.ProviderPolicy{provider.HubSpot: pol.Providers[provider.HubSpot]}
	e.engine.d.Policies = policies{"acme": pol}
	errs := make(chan error, 2)
	go func() { errs <- e.engine.PlatformChange(ctx, first) }()
	// Wait until the first change is in the batcher before the second arrives.
	harness.Eventually(t, 5*time.Second, "the first change pending in the batcher", func() bool {
		st, _, _ := recordstate.NewStore(e.kv).Get(ctx, recordstate.Key("acme", provider.HubSpot, ownership.Contact, hsC1))
		return st.Pending
	})
	go func() { errs <- e.engine.PlatformChange(ctx, second) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := e.crm.callCount(provider.HubSpot); got != 1 {
		t.Errorf("%d hubspot calls, want 1", got)
	}
	if e.crm.owner(provider.HubSpot, hsC1) != hsAda {
		t.Errorf("hubspot owner %q, want the later change's %s", e.crm.owner(provider.HubSpot, hsC1), hsAda)
	}
	if diff := cmp.Diff([]string{"hubspot applied", "hubspot superseded"}, e.sink.outcomes(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestUnknownTenantIsPermanent(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	ch := crmChange(provider.HubSpot, hsC1, hsAda, "hs-1", t0)
	ch.Tenant = "nobody"
	if err := e.engine.CRMChange(context.Background(), ch, 1); !ownership.IsUnretryable(err) || !errors.Is(err, ErrUnknownTenant) {
		t.Errorf("CRMChange for an unknown tenant = %v, want permanent ErrUnknownTenant", err)
	}
	pc := platformChange("pu-ada", "p-1", t0)
	pc.Tenant = "nobody"
	if err := e.engine.PlatformChange(context.Background(), pc); !ownership.IsUnretryable(err) {
		t.Errorf("PlatformChange for an unknown tenant = %v, want permanent", err)
	}
}

func TestQuotaAlert(t *testing.T) {
	n := ratelimit.Notice{Kind: ratelimit.QuotaNearExhaustion, Key: ratelimit.Key{Tenant: "acme", Provider: "hubspot"},
		Used: 245000, Limit: 250000, Remaining: 5000, Until: t0}
	a, ok := QuotaAlert(n)
	if !ok || a.Kind != AlertQuotaExhausted || a.Tenant != "acme" || a.Provider != provider.HubSpot {
		t.Errorf("QuotaAlert = %+v, %v", a, ok)
	}
	if _, ok := QuotaAlert(ratelimit.Notice{Kind: ratelimit.QuotaResumed}); ok {
		t.Error("QuotaAlert of a resume notice is an alert")
	}
}

// A permanent failure of a platform change reads "permanent: …" once, in the dead letter and the
// log, however many CRMs failed (issue 14 item 10: it read "permanent: permanent: …"): the engine's
// error is unretryable once, and the events edge dead-letters it with natsbus.Permanent.
func TestPermanentErrorTextSaysSoOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		failed []string // records that fail permanently
	}{
		{name: "one CRM", failed: []string{sfC1}},
		{name: "both CRMs", failed: []string{sfC1, hsC1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
			for _, id := range tt.failed {
				e.crm.fail[id] = &failure{times: 1, err: &crmwrite.Error{Provider: provider.Salesforce, Code: "INVALID_CROSS_REFERENCE_KEY",
					Class: ownership.ClassifySalesforce(200, "INVALID_CROSS_REFERENCE_KEY")}}
			}
			err := e.engine.PlatformChange(context.Background(), platformChange("pu-ada", "p-1", t0))
			if !ownership.IsUnretryable(err) {
				t.Fatalf("PlatformChange = %v, want unretryable", err)
			}
			if n := strings.Count(natsbus.Permanent(err).Error(), "permanent: "); n != 1 {
				t.Errorf("error text says \"permanent: \" %d times, want once: %q", n, err)
			}
			for _, id := range tt.failed {
				if !strings.Contains(err.Error(), id) {
					t.Errorf("error text %q does not name record %s", err, id)
				}
			}
		})
	}
}

// gatedWrites holds the submission of one event's write until released, so a test can interleave
// another change's claim, flush and confirmation between a change's claim and its submission.
type gatedWrites struct {
	Writes
	event    string
	claimed  chan struct{} // closed when the gated event has claimed the record and wants to submit
	released chan struct{}
}

func (g *gatedWrites) Submit(ctx context.Context, key crmwrite.BatchKey, recordID string, w crmwrite.Write) *batcher.Future[crmwrite.Written] {
	if w.TraceID == g.event {
		close(g.claimed)
		<-g.released
	}
	return g.Writes.Submit(ctx, key, recordID, w)
}

// An older platform change that claimed a record before a newer one, but reached the batcher after
// the newer one's batch was flushed, is not written after it (issue 14 item 8): the HubSpot
// sandbox keeps the newer owner and saw one write, and the older change is recorded as superseded.
func TestOlderChangeNeverWrittenAfterNewerAcrossBatches(t *testing.T) {
	acct, hsw := hsSandbox(t, hssim.Seed{
		Owners: []hssim.Owner{
			{ID: hsAda, Email: "ada@example.com", Type: "PERSON", FirstName: "Ada", UserID: 1},
			{ID: hsFallback, Email: "team@example.com", Type: "PERSON", FirstName: "Team", UserID: 2},
		},
		Contacts: []hssim.SeedContact{{ID: hsC1, Email: "c1@example.org"}},
	})
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	e.batch = batcher.New(hsw.Flush, batcher.Options[crmwrite.BatchKey, crmwrite.Write]{Linger: 5 * time.Millisecond, Supersedes: crmwrite.Supersedes})
	t.Cleanup(func() { e.batch.Close(context.Background()) })
	gate := &gatedWrites{Writes: e.batch, event: "p-old", claimed: make(chan struct{}), released: make(chan struct{})}
	e.engine.d.Writes = gate
	pol := e.engine.d.Policies.(policies)["acme"]
	pol.Providers = map[provider.Provider]ownership.ProviderPolicy{provider.HubSpot: pol.Providers[provider.HubSpot]}
	e.engine.d.Policies = policies{"acme": pol}
	ctx := context.Background()

	// The older change (to the fallback owner) claims the record, then stalls before submitting.
	oldDone := make(chan error, 1)
	go func() { oldDone <- e.engine.PlatformChange(ctx, platformChange("pu-nobody", "p-old", t0)) }()
	<-gate.claimed
	// The newer change claims, is flushed to HubSpot and confirmed meanwhile.
	if err := e.engine.PlatformChange(ctx, platformChange("pu-ada", "p-new", t0.Add(time.Minute))); err != nil {
		t.Fatalf("newer change: %v", err)
	}
	close(gate.released)
	if err := <-oldDone; err != nil {
		t.Fatalf("older change: %v", err)
	}
	if got := contactOwner(t, acct, hsC1); got != hsAda {
		t.Errorf("hubspot owner of %s = %s, want the newer change's %s", hsC1, got, hsAda)
	}
	if n := len(acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/update")); n != 1 {
		t.Errorf("%d batch updates reached HubSpot, want the newer change's only", n)
	}
	want := []string{"hubspot applied", "hubspot superseded"}
	if diff := cmp.Diff(want, e.sink.outcomes()); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func contactOwner(t *testing.T, acct *hssim.Account, id string) string {
	t.Helper()
	c, ok := acct.Contact(id)
	if !ok {
		t.Fatalf("contact %s not in the sandbox", id)
	}
	return c.Properties[hssim.OwnerProperty]
}

// An OwnerAssign for a HubSpot change that carries only the contact id, for a record ownersync has
// no link for, names the contact's email, read from HubSpot before publishing — the reads of
// concurrent changes in one batch read — and stored, so the next change of the contact needs no
// read (issue 14 item 6: the platform got only the HubSpot id and could not apply it).
func TestHubSpotAssignmentNamesTheContactEmail(t *testing.T) {
	contacts := map[string]string{"51234": "c1@example.org", "51235": "c2@example.org", "51236": "c3@example.org"}
	seed := hssim.Seed{Owners: []hssim.Owner{{ID: hsAda, Email: "ada@example.com", Type: "PERSON", FirstName: "Ada", UserID: 1}}}
	for id, email := range contacts {
		seed.Contacts = append(seed.Contacts, hssim.SeedContact{ID: id, Email: email})
	}
	acct, hsw := hsSandbox(t, seed)
	finder := crmwrite.NewFinder(nil, hsw, crmwrite.FinderOptions{Idle: 500 * time.Millisecond})
	t.Cleanup(func() { finder.Close(context.Background()) })

	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	e.engine.d.Finder = finder
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, len(contacts))
	for id := range contacts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.engine.CRMChange(ctx, crmChange(provider.HubSpot, id, hsAda, "hs-"+id, t0), 1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("CRMChange: %v", err)
		}
	}
	if diff := cmp.Diff(contacts, e.sink.assignEmails); diff != "" {
		t.Errorf("record emails of the assignments (-want +got):\n%s", diff)
	}
	if n := len(acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/read")); n != 1 {
		t.Errorf("%d batch reads for three changes, want 1", n)
	}
	st, err := recordstate.NewStore(e.kv).Update(ctx, recordstate.Key("acme", provider.HubSpot, ownership.Contact, "51234"),
		func(cur ownership.RecordState, _ bool) (ownership.RecordState, bool, error) { return cur, false, nil })
	if err != nil || st.RecordEmail != "c1@example.org" {
		t.Errorf("stored state %+v, %v; want the email stored", st, err)
	}
	// The next change of the contact uses the stored email: no read.
	if err := e.engine.CRMChange(ctx, crmChange(provider.HubSpot, "51234", hsAda+"0", "hs-later", t0.Add(time.Minute)), 1); err != nil {
		t.Fatal(err)
	}
	if e.sink.assignEmails["51234"] != "c1@example.org" {
		t.Errorf("second assignment named %q, want c1@example.org", e.sink.assignEmails["51234"])
	}
	if n := len(acct.Log().Matching("POST", "/crm/v3/objects/contacts/batch/read")); n != 1 {
		t.Errorf("%d batch reads after a change of a known contact, want still 1", n)
	}
}

// hsSandbox starts a HubSpot sandbox with seed and returns it with the writer's HubSpot adapter on
// a real client (the account's zone configured as UTC, so no account info call is made).
func hsSandbox(t *testing.T, seed hssim.Seed) (*hssim.Account, *crmwrite.HubSpot) {
	t.Helper()
	acct, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Load(seed); err != nil {
		t.Fatal(err)
	}
	url, err := acct.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acct.Close() })
	client, err := hubspot.New(hubspot.Config{BaseURL: url, AccessToken: "pat-test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	limiter := ratelimit.New(ratelimit.Config{Limits: func(ratelimit.Key) ratelimit.Limits { return ratelimit.ForWindow(190, 10*time.Second, 5) }})
	hsw := crmwrite.NewHubSpot(crmwrite.Config{Limiter: limiter, HubSpotZone: func(context.Context, string) (*time.Location, bool) { return time.UTC, true }},
		func(context.Context, string) (crmwrite.HubSpotAPI, error) { return client, nil })
	return acct, hsw
}

// TestProvisioningWaitCountsDeliveries: an unmapped user-owner of a tenant with auto-provisioning
// comes back while the delivery count (an argument of CRMChange, given by the events edge) is
// under provisionWaitDeliveries, then is reported unassigned.
func TestProvisioningWaitCountsDeliveries(t *testing.T) {
	e := newEnv(t, ownership.Bidirectional, 5*time.Millisecond)
	pol := e.engine.d.Policies.(policies)["acme"]
	hs := pol.Providers[provider.HubSpot]
	hs.AutoProvisioning = true
	pol.Providers = map[provider.Provider]ownership.ProviderPolicy{provider.HubSpot: hs}
	e.engine.d.Policies = policies{"acme": pol}
	ctx := context.Background()
	ch := crmChange(provider.HubSpot, hsC1, "99999999", "hs-prov", t0)
	if err := e.engine.CRMChange(ctx, ch, provisionWaitDeliveries-1); !errors.As(err, new(*ownership.RetryError)) {
		t.Fatalf("delivery %d: %v, want a retry while provisioning", provisionWaitDeliveries-1, err)
	}
	if got := e.sink.outcomes(); len(got) != 0 {
		t.Errorf("history while waiting %v, want none", got)
	}
	if err := e.engine.CRMChange(ctx, ch, provisionWaitDeliveries); err != nil {
		t.Fatalf("delivery %d: %v, want the change reported unassigned", provisionWaitDeliveries, err)
	}
	if got := e.sink.outcomes(); len(got) != 1 {
		t.Errorf("history after the wait %v, want one entry", got)
	}
}
