package ownership

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/provider"
)

// Test ids: Salesforce users (005), a queue (00G), HubSpot owner ids.
const (
	sfAda      = "0055g00000AsDfGAAV"
	sfGrace    = "0055g00000HjKlMAAV"
	sfInactive = "0055g00000ZzZzZAAV"
	sfFallback = "0055g00000FbFbFAAV"
	sfQueue    = "00G5g000003LkJhEAK"
	hsAda      = "71234567"
	hsArchived = "71234599"
	hsFallback = "71239999"
)

// fakeView is a mappings view over two maps; err, when set, fails every lookup.
type fakeView struct {
	byCRM      map[provider.Provider]map[string]Mapping
	byPlatform map[provider.Provider]map[string]Mapping
	err        error
}

func (v *fakeView) ByCRMUser(_ context.Context, _ string, p provider.Provider, id string) (Mapping, bool, error) {
	if v.err != nil {
		return Mapping{}, false, v.err
	}
	m, ok := v.byCRM[p][id]
	return m, ok, nil
}

func (v *fakeView) ByPlatformUser(_ context.Context, _ string, p provider.Provider, id string) (Mapping, bool, error) {
	if v.err != nil {
		return Mapping{}, false, v.err
	}
	m, ok := v.byPlatform[p][id]
	return m, ok, nil
}

func testView() *fakeView {
	maps := []struct {
		p provider.Provider
		m Mapping
	}{
		{provider.Salesforce, Mapping{PlatformUserID: "pu-ada", CRMUserID: sfAda, CRMUserActive: true}},
		{provider.Salesforce, Mapping{PlatformUserID: "pu-old", CRMUserID: sfInactive, CRMUserActive: false}},
		{provider.Salesforce, Mapping{PlatformUserID: "pu-queue", CRMUserID: sfQueue, CRMUserActive: true, CRMUserKind: KindQueue}},
		{provider.HubSpot, Mapping{PlatformUserID: "pu-ada", CRMUserID: hsAda, CRMUserActive: true}},
		{provider.HubSpot, Mapping{PlatformUserID: "pu-old", CRMUserID: hsArchived, CRMUserActive: false}},
	}
	v := &fakeView{byCRM: map[provider.Provider]map[string]Mapping{}, byPlatform: map[provider.Provider]map[string]Mapping{}}
	for _, x := range maps {
		if v.byCRM[x.p] == nil {
			v.byCRM[x.p] = map[string]Mapping{}
			v.byPlatform[x.p] = map[string]Mapping{}
		}
		v.byCRM[x.p][x.m.CRMUserID] = x.m
		v.byPlatform[x.p][x.m.PlatformUserID] = x.m
	}
	// Known CRM users mapped to nobody: an active one and an inactive fallback.
	v.byCRM[provider.Salesforce][sfGrace] = Mapping{CRMUserID: sfGrace, CRMUserActive: true}
	v.byCRM[provider.Salesforce]["0055g00000InAcTAAV"] = Mapping{CRMUserID: "0055g00000InAcTAAV", CRMUserActive: false}
	v.byCRM[provider.HubSpot][hsFallback] = Mapping{CRMUserID: hsFallback, CRMUserActive: true}
	return v
}

func bothProviders(dir Direction) Policy {
	return Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
		provider.Salesforce: {Enabled: true, Direction: dir, RecordTypes: []RecordType{Contact, Lead}, FallbackOwnerID: sfFallback},
		provider.HubSpot:    {Enabled: true, Direction: dir, RecordTypes: []RecordType{Contact}, FallbackOwnerID: hsFallback},
	}}
}

func TestToPlatform(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	change := func(p provider.Provider, rt RecordType, owner string, kind OwnerKind) CRMOwnerChange {
		return CRMOwnerChange{Tenant: "acme", Provider: p, RecordType: rt, RecordID: "0035g00000QwErTAAV",
			OwnerID: owner, OwnerKind: kind, OccurredAt: at}
	}
	tests := []struct {
		name   string
		policy Policy
		change CRMOwnerChange
		want   Assignment
	}{
		{
			name:   "mapped active salesforce user is assigned",
			policy: bothProviders(Bidirectional),
			change: change(provider.Salesforce, Contact, sfAda, KindUser),
			want: Assignment{Outcome: Assigned, OwnerUserID: "pu-ada", CRMOwnerID: sfAda,
				Reason: "salesforce user " + sfAda + " maps to platform user pu-ada"},
		},
		{
			name:   "crm_to_platform lets a hubspot change through",
			policy: bothProviders(CRMToPlatform),
			change: change(provider.HubSpot, Contact, hsAda, KindUser),
			want: Assignment{Outcome: Assigned, OwnerUserID: "pu-ada", CRMOwnerID: hsAda,
				Reason: "hubspot user " + hsAda + " maps to platform user pu-ada"},
		},
		{
			name:   "unmapped user",
			policy: bothProviders(Bidirectional),
			change: change(provider.Salesforce, Lead, sfGrace, KindUser),
			want: Assignment{Outcome: UnassignedNoMapping, CRMOwnerID: sfGrace,
				Reason: "salesforce user " + sfGrace + " is not mapped to a platform user"},
		},
		{
			name:   "user unknown to the view",
			policy: bothProviders(Bidirectional),
			change: change(provider.HubSpot, Contact, "555", KindUser),
			want: Assignment{Outcome: UnassignedNoMapping, CRMOwnerID: "555",
				Reason: "hubspot user 555 is not mapped to a platform user"},
		},
		{
			name:   "mapped but inactive",
			policy: bothProviders(Bidirectional),
			change: change(provider.HubSpot, Contact, hsArchived, KindUser),
			want: Assignment{Outcome: UnassignedInactive, CRMOwnerID: hsArchived,
				Reason: "hubspot user " + hsArchived + " is inactive"},
		},
		{
			name:   "inactive and unmapped",
			policy: bothProviders(Bidirectional),
			change: change(provider.Salesforce, Contact, "0055g00000InAcTAAV", KindUser),
			want: Assignment{Outcome: UnassignedInactive, CRMOwnerID: "0055g00000InAcTAAV",
				Reason: "salesforce user 0055g00000InAcTAAV is inactive and not mapped to a platform user"},
		},
		{
			name:   "salesforce queue by prefix even when the event says user",
			policy: bothProviders(Bidirectional),
			change: change(provider.Salesforce, Lead, sfQueue, KindUser),
			want: Assignment{Outcome: UnassignedQueue, CRMOwnerID: sfQueue,
				Reason: "salesforce owner " + sfQueue + " is a queue, not a user"},
		},
		{
			name:   "hubspot queue by kind",
			policy: bothProviders(Bidirectional),
			change: change(provider.HubSpot, Contact, "8000", KindQueue),
			want: Assignment{Outcome: UnassignedQueue, CRMOwnerID: "8000",
				Reason: "hubspot owner 8000 is a queue, not a user"},
		},
		{
			name:   "cleared owner",
			policy: bothProviders(Bidirectional),
			change: change(provider.HubSpot, Contact, "", KindUser),
			want:   Assignment{Outcome: UnassignedNoMapping, Reason: "the hubspot owner of the contact was cleared"},
		},
		{
			name:   "direction platform_to_crm skips",
			policy: bothProviders(PlatformToCRM),
			change: change(provider.Salesforce, Contact, sfAda, KindUser),
			want: Assignment{Skipped: true, CRMOwnerID: sfAda,
				Reason: "direction for salesforce is platform_to_crm: CRM owner changes do not reach the platform"},
		},
		{
			name: "record type outside the object modules skips",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.Salesforce: {Enabled: true, Direction: Bidirectional, RecordTypes: []RecordType{Contact}}}},
			change: change(provider.Salesforce, Lead, sfAda, KindUser),
			want:   Assignment{Skipped: true, CRMOwnerID: sfAda, Reason: "salesforce object modules do not include lead"},
		},
		{
			name: "disabled provider skips",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.HubSpot: {Enabled: false, Direction: Bidirectional}}},
			change: change(provider.HubSpot, Contact, hsAda, KindUser),
			want:   Assignment{Skipped: true, CRMOwnerID: hsAda, Reason: "hubspot is not connected for tenant acme"},
		},
	}
	tr := NewTranslator(testView())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.ToPlatform(context.Background(), tt.policy, tt.change)
			if err != nil {
				t.Fatalf("ToPlatform: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ToPlatform (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToPlatformLookupError(t *testing.T) {
	boom := errors.New("kv unavailable")
	tr := NewTranslator(&fakeView{err: boom})
	_, err := tr.ToPlatform(context.Background(), bothProviders(Bidirectional),
		CRMOwnerChange{Tenant: "acme", Provider: provider.HubSpot, RecordType: Contact, OwnerID: hsAda})
	if !errors.Is(err, boom) {
		t.Fatalf("ToPlatform error = %v, want %v", err, boom)
	}
}

func TestToCRM(t *testing.T) {
	change := func(rt RecordType, owner string, ids map[provider.Provider]string) PlatformOwnerChange {
		return PlatformOwnerChange{Tenant: "acme", RecordType: rt, PlatformRecordID: "pr-1", OwnerUserID: owner, CRMRecordIDs: ids}
	}
	ids := map[provider.Provider]string{provider.Salesforce: "0035g00000QwErTAAV", provider.HubSpot: "51234"}
	tests := []struct {
		name   string
		policy Policy
		change PlatformOwnerChange
		want   []Target
	}{
		{
			name:   "mapped active users on both CRMs",
			policy: bothProviders(Bidirectional),
			change: change(Contact, "pu-ada", ids),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Write, CRMRecordID: ids[provider.Salesforce], OwnerID: sfAda,
					Reason: "platform user pu-ada maps to salesforce user " + sfAda},
				{Provider: provider.HubSpot, Outcome: Write, CRMRecordID: ids[provider.HubSpot], OwnerID: hsAda,
					Reason: "platform user pu-ada maps to hubspot user " + hsAda},
			},
		},
		{
			name:   "no mapping uses each fallback owner, record ids resolved later",
			policy: bothProviders(PlatformToCRM),
			change: change(Contact, "pu-nobody", nil),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Fallback, OwnerID: sfFallback,
					Reason: "platform user pu-nobody has no salesforce mapping; fallback owner " + sfFallback + " used"},
				{Provider: provider.HubSpot, Outcome: Fallback, OwnerID: hsFallback,
					Reason: "platform user pu-nobody has no hubspot mapping; fallback owner " + hsFallback + " used"},
			},
		},
		{
			name:   "inactive mapped user falls back",
			policy: bothProviders(Bidirectional),
			change: change(Contact, "pu-old", ids),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Fallback, CRMRecordID: ids[provider.Salesforce], OwnerID: sfFallback,
					Reason: "platform user pu-old maps to salesforce user " + sfInactive + ", who is inactive or archived; fallback owner " + sfFallback + " used"},
				{Provider: provider.HubSpot, Outcome: Fallback, CRMRecordID: ids[provider.HubSpot], OwnerID: hsFallback,
					Reason: "platform user pu-old maps to hubspot user " + hsArchived + ", who is inactive or archived; fallback owner " + hsFallback + " used"},
			},
		},
		{
			name: "no mapping and no fallback is an error",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.HubSpot: {Enabled: true, Direction: Bidirectional}}},
			change: change(Contact, "pu-nobody", ids),
			want: []Target{{Provider: provider.HubSpot, Outcome: Failed, CRMRecordID: ids[provider.HubSpot],
				Reason: "platform user pu-nobody has no hubspot mapping and no fallback owner is configured for hubspot"}},
		},
		{
			name: "inactive fallback owner is never written",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.Salesforce: {Enabled: true, RecordTypes: []RecordType{Contact}, FallbackOwnerID: "0055g00000InAcTAAV"}}},
			change: change(Contact, "pu-nobody", ids),
			want: []Target{{Provider: provider.Salesforce, Outcome: Failed, CRMRecordID: ids[provider.Salesforce], FallbackInactive: true,
				Reason: "fallback owner inactive: salesforce 0055g00000InAcTAAV is inactive or archived; platform user pu-nobody has no salesforce mapping"}},
		},
		{
			name:   "queue mapping never owns a salesforce contact",
			policy: bothProviders(Bidirectional),
			change: change(Contact, "pu-queue", map[provider.Provider]string{provider.Salesforce: "0035g00000QwErTAAV"}),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Fallback, CRMRecordID: "0035g00000QwErTAAV", OwnerID: sfFallback,
					Reason: "platform user pu-queue maps to salesforce user " + sfQueue + ", who is a queue, and a salesforce contact must be owned by a user; fallback owner " + sfFallback + " used"},
				{Provider: provider.HubSpot, Outcome: Fallback, OwnerID: hsFallback,
					Reason: "platform user pu-queue has no hubspot mapping; fallback owner " + hsFallback + " used"},
			},
		},
		{
			name: "queue may own a salesforce lead",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.Salesforce: {Enabled: true, RecordTypes: []RecordType{Lead}}}},
			change: change(Lead, "pu-queue", nil),
			want: []Target{{Provider: provider.Salesforce, Outcome: Write, OwnerID: sfQueue,
				Reason: "platform user pu-queue maps to salesforce user " + sfQueue}},
		},
		{
			name:   "lead is skipped where the modules do not sync it",
			policy: bothProviders(Bidirectional),
			change: change(Lead, "pu-ada", nil),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Write, OwnerID: sfAda, Reason: "platform user pu-ada maps to salesforce user " + sfAda},
				{Provider: provider.HubSpot, Outcome: Skipped, Reason: "hubspot object modules do not include lead"},
			},
		},
		{
			name:   "direction crm_to_platform skips every CRM",
			policy: bothProviders(CRMToPlatform),
			change: change(Contact, "pu-ada", ids),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Skipped, CRMRecordID: ids[provider.Salesforce],
					Reason: "direction for salesforce is crm_to_platform: platform owner changes do not reach it"},
				{Provider: provider.HubSpot, Outcome: Skipped, CRMRecordID: ids[provider.HubSpot],
					Reason: "direction for hubspot is crm_to_platform: platform owner changes do not reach it"},
			},
		},
		{
			name:   "cleared owner: hubspot clears, salesforce takes the fallback",
			policy: bothProviders(Bidirectional),
			change: change(Contact, "", ids),
			want: []Target{
				{Provider: provider.Salesforce, Outcome: Fallback, CRMRecordID: ids[provider.Salesforce], OwnerID: sfFallback,
					Reason: "the owner was cleared on the platform; fallback owner " + sfFallback + " used"},
				{Provider: provider.HubSpot, Outcome: Write, CRMRecordID: ids[provider.HubSpot], Reason: "the owner was cleared on the platform"},
			},
		},
		{
			name: "cleared owner without salesforce fallback keeps the owner",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.Salesforce: {Enabled: true}}},
			change: change(Contact, "", ids),
			want: []Target{{Provider: provider.Salesforce, Outcome: Skipped, CRMRecordID: ids[provider.Salesforce],
				Reason: "the owner was cleared on the platform and a Salesforce record cannot be without an owner; no fallback owner is configured, so the record keeps its owner"}},
		},
		{
			name: "disabled provider gets no target",
			policy: Policy{Tenant: "acme", Providers: map[provider.Provider]ProviderPolicy{
				provider.Salesforce: {Enabled: false}, provider.HubSpot: {Enabled: true}}},
			change: change(Contact, "pu-ada", nil),
			want: []Target{{Provider: provider.HubSpot, Outcome: Write, OwnerID: hsAda,
				Reason: "platform user pu-ada maps to hubspot user " + hsAda}},
		},
	}
	tr := NewTranslator(testView())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.ToCRM(context.Background(), tt.policy, tt.change)
			if err != nil {
				t.Fatalf("ToCRM: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ToCRM (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToCRMLookupError(t *testing.T) {
	boom := errors.New("kv unavailable")
	tr := NewTranslator(&fakeView{err: boom})
	_, err := tr.ToCRM(context.Background(), bothProviders(Bidirectional),
		PlatformOwnerChange{Tenant: "acme", RecordType: Contact, OwnerUserID: "pu-ada"})
	if !errors.Is(err, boom) {
		t.Fatalf("ToCRM error = %v, want %v", err, boom)
	}
}

func TestTargetWrites(t *testing.T) {
	for o, want := range map[WriteOutcome]bool{Write: true, Fallback: true, Skipped: false, Failed: false} {
		if got := (Target{Outcome: o}).Writes(); got != want {
			t.Errorf("Target{%s}.Writes() = %v, want %v", o, got, want)
		}
	}
}
