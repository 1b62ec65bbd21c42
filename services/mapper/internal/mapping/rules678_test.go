package mapping

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRule6Problems checks the problems the admin sees, in full: code, users, email, message and fix,
// and how they are counted.
func TestRule6Problems(t *testing.T) {
	in := Input{
		Provider: HubSpot,
		PlatformUsers: []PlatformUser{
			pu("p1", "dup@x.io"), pu("p2", "DUP@x.io"), // email conflict
			pu("p3", "amb@x.io"), // two owners
			pu("p4", "gone@x.io"),
			pu("p5", "arch@x.io"),
			withStatus(pu("p6", "susp@x.io"), PlatformSuspended),
		},
		CRMUsers: []CRMUser{
			cu("11", "dup@x.io"),
			cu("21", "amb@x.io"), cu("22", "amb@x.io"),
			inactive(cu("51", "arch@x.io")),
			cu("61", "susp@x.io"),
			cu("71", "new@x.io"),
		},
		Settings: DefaultSettings(),
		Now:      now,
	}
	want := []Problem{
		{Code: CodeEmailConflict, Provider: HubSpot, PlatformUserID: "p1", Name: "Fp1 Lp1", Email: "dup@x.io",
			Message: "2 platform users share this email (p1, p2)",
			Fix:     "give each platform user a distinct email, or map them manually"},
		{Code: CodeEmailConflict, Provider: HubSpot, PlatformUserID: "p2", Name: "Fp2 Lp2", Email: "dup@x.io",
			Message: "2 platform users share this email (p1, p2)",
			Fix:     "give each platform user a distinct email, or map them manually"},
		{Code: CodeAmbiguousEmail, Provider: HubSpot, PlatformUserID: "p3", Name: "Fp3 Lp3", Email: "amb@x.io",
			Message: "2 active HubSpot owners share this email (21, 22)",
			Fix:     "deactivate or change the email of all but one of them, or map the platform user manually"},
		{Code: CodeCRMUserNotFound, Provider: HubSpot, PlatformUserID: "p4", Name: "Fp4 Lp4", Email: "gone@x.io",
			Message: "no active HubSpot owner has this email",
			Fix:     "create the HubSpot owner with this email, or map the platform user manually"},
		{Code: CodeCRMUserInactive, Provider: HubSpot, PlatformUserID: "p5", CRMUserID: "51", Name: "Fp5 Lp5", Email: "arch@x.io",
			Message: "the HubSpot owner with this email is archived",
			Fix:     "reactivate the HubSpot owner, or map the platform user manually to an active one"},
		{Code: CodeEmailConflict, Provider: HubSpot, CRMUserID: "11", Name: "F11 L11", Email: "dup@x.io",
			Message: "2 platform users share this email (p1, p2), so this HubSpot owner is matched to none of them",
			Fix:     "give each platform user a distinct email, or map one of them manually to this HubSpot owner"},
		{Code: CodeAmbiguousEmail, Provider: HubSpot, CRMUserID: "21", Name: "F21 L21", Email: "amb@x.io",
			Message: "2 active HubSpot owners share this email (21, 22); platform user p3 has it too",
			Fix:     "deactivate or change the email of all but one of them, or map the platform user manually"},
		{Code: CodeAmbiguousEmail, Provider: HubSpot, CRMUserID: "22", Name: "F22 L22", Email: "amb@x.io",
			Message: "2 active HubSpot owners share this email (21, 22); platform user p3 has it too",
			Fix:     "deactivate or change the email of all but one of them, or map the platform user manually"},
		{Code: CodePlatformUserInactive, Provider: HubSpot, CRMUserID: "61", Name: "F61 L61", Email: "susp@x.io",
			Message: "the platform user with this email (p6) is suspended",
			Fix:     "reactivate the platform user, or deactivate the HubSpot owner"},
		{Code: CodePlatformUserNotFound, Provider: HubSpot, CRMUserID: "71", Name: "F71 L71", Email: "new@x.io",
			Message: "no platform user has this email",
			Fix:     "invite the user to the platform (or turn on auto-provisioning), or map a platform user manually"},
	}
	r := Reconcile(in)
	if diff := cmp.Diff(want, r.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	wantCounts := Counts{Conflicts: 6, Errors: 4, UnmappedPlatform: 5, UnmappedCRM: 5}
	if diff := cmp.Diff(wantCounts, r.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestRule7AutoProvisioning(t *testing.T) {
	owner := cu("005N", " New@x.io ")
	on := Settings{RemapOnDeactivation: true, AutoProvisioning: true}
	tests := []struct {
		name string
		q    ProvisionQuery
		want ProvisionDecision
	}{
		{
			name: "enabled and nobody matches: request and list as pending_team",
			q:    ProvisionQuery{Settings: on, Provider: Salesforce, Owner: owner, Now: now},
			want: ProvisionDecision{Request: true, Provision: Provision{
				Provider: Salesforce, CRMUserID: "005N", Email: "new@x.io", FirstName: "F005N", LastName: "L005N", RequestedAt: now,
			}},
		},
		{
			name: "off by default",
			q:    ProvisionQuery{Settings: DefaultSettings(), Provider: Salesforce, Owner: owner, Now: now},
			want: ProvisionDecision{Reason: "auto-provisioning is off for this tenant"},
		},
		{
			name: "a queue is never provisioned",
			q:    ProvisionQuery{Settings: on, Owner: queue(owner), Now: now},
			want: ProvisionDecision{Reason: "the owner is a queue"},
		},
		{
			name: "an inactive owner is never provisioned",
			q:    ProvisionQuery{Settings: on, Owner: inactive(owner), Now: now},
			want: ProvisionDecision{Reason: "the owner is not active"},
		},
		{
			name: "an owner without email is never provisioned",
			q:    ProvisionQuery{Settings: on, Owner: cu("005N", ""), Now: now},
			want: ProvisionDecision{Reason: "the owner has no email"},
		},
		{
			name: "a mapped owner is not provisioned",
			q:    ProvisionQuery{Settings: on, Owner: owner, OwnerMapped: true, Now: now},
			want: ProvisionDecision{Reason: "the owner is already mapped"},
		},
		{
			name: "a platform user with the email exists, even suspended",
			q: ProvisionQuery{Settings: on, Owner: owner, Now: now,
				SameEmail: []PlatformUser{withStatus(pu("p1", "NEW@x.io"), PlatformSuspended)}},
			want: ProvisionDecision{Reason: "platform user p1 already has the owner's email"},
		},
		{
			name: "a request is already outstanding",
			q:    ProvisionQuery{Settings: on, Owner: owner, Pending: true, Now: now},
			want: ProvisionDecision{Reason: "a provisioning request for the owner is outstanding"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DecideProvision(tt.q)); diff != "" {
				t.Errorf("DecideProvision (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRule7ProvisionedUserLifecycle follows a provisioned user: pending_team while requested, mapped
// as auto_provisioned without a team (assignments held), then synced when the team arrives.
func TestRule7ProvisionedUserLifecycle(t *testing.T) {
	req := Provision{Provider: Salesforce, CRMUserID: "005N", Email: "new@x.io", RequestedAt: t0}
	crm := []CRMUser{cu("005N", "new@x.io")}

	// Requested, no platform user yet: still pending, listed as such rather than as a problem.
	in := sf(nil, crm)
	in.Pending = []Provision{req}
	r := Reconcile(in)
	if diff := cmp.Diff([]Provision{req}, r.Pending); diff != "" {
		t.Errorf("pending (-want +got):\n%s", diff)
	}
	if len(r.Problems) != 0 {
		t.Errorf("problems = %+v, want none for a pending user", r.Problems)
	}

	// The platform created the user without a team: mapped, pending_team, assignments held.
	in = sf([]PlatformUser{withTeam(pu("p9", "new@x.io"), "")}, crm)
	in.Pending = []Provision{req}
	d := Apply(in, Event{PlatformUserID: "p9"})
	want := outcome{
		Mappings: []mp{{P: "p9", C: "005N", Status: StatusPendingTeam, MadeBy: MadeByAutoProvisioned}},
		Changes:  []ch{{Kind: ChangeCreated, P: "p9", C: "005N", Reason: reasonProvisioned}},
	}
	stored := writeDelta(nil, d)
	if diff := cmp.Diff(want, outcome{Mappings: mps(stored), Changes: chs(d.Changes), Problems: prs(d.Problems)}); diff != "" {
		t.Errorf("provisioned user arrives (-want +got):\n%s", diff)
	}
	if !HoldsAssignments(stored[0]) {
		t.Errorf("HoldsAssignments(%+v) = false, want true", stored[0])
	}

	// The platform reports the team: synced, assignments released.
	in = sf([]PlatformUser{pu("p9", "new@x.io")}, crm, stored...)
	d = Apply(in, Event{PlatformUserID: "p9"})
	want = outcome{
		Mappings: []mp{{P: "p9", C: "005N", Status: StatusSynced, MadeBy: MadeByAutoProvisioned}},
		Changes:  []ch{{Kind: ChangeResolved, P: "p9", C: "005N", Reason: reasonResolved}},
	}
	stored = writeDelta(stored, d)
	if diff := cmp.Diff(want, outcome{Mappings: mps(stored), Changes: chs(d.Changes), Problems: prs(d.Problems)}); diff != "" {
		t.Errorf("team arrives (-want +got):\n%s", diff)
	}
	if HoldsAssignments(stored[0]) {
		t.Errorf("HoldsAssignments(%+v) = true, want false", stored[0])
	}
	in.Mappings, in.Pending = stored, []Provision{req}
	if r := Reconcile(in); len(r.Pending) != 0 {
		t.Errorf("pending after mapping = %+v, want none", r.Pending)
	}
}

func TestRule8FallbackOwner(t *testing.T) {
	users := map[string]CRMUser{
		"005A": cu("005A", "team@x.io"),
		"005I": inactive(cu("005I", "old@x.io")),
		"00GQ": queue(cu("00GQ", "q@x.io")),
	}
	lookup := func(id string) (CRMUser, bool) { u, ok := users[id]; return u, ok }
	tests := []struct {
		id      string
		wantErr error
	}{
		{id: "005A"},
		{id: "", wantErr: ErrNoFallbackOwner},
		{id: "005Z", wantErr: ErrFallbackOwnerNotFound},
		{id: "005I", wantErr: ErrFallbackOwnerInactive},
		{id: "00GQ", wantErr: ErrFallbackOwnerQueue},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			u, err := ValidateFallbackOwner(tt.id, lookup)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValidateFallbackOwner(%q) error = %v, want %v", tt.id, err, tt.wantErr)
			}
			if err == nil && u.ID != tt.id {
				t.Errorf("ValidateFallbackOwner(%q) = %+v", tt.id, u)
			}
		})
	}

	t.Run("Sync Users reports an inactive fallback owner", func(t *testing.T) {
		in := sf(nil, []CRMUser{users["005I"]})
		in.Settings.FallbackOwnerID = "005I"
		want := []Problem{{
			Code: CodeFallbackOwnerInvalid, Provider: Salesforce, CRMUserID: "005I", Name: "F005I L005I",
			Message: "fallback owner 005I: fallback owner is inactive",
			Fix:     "choose an active Salesforce user (not a queue) as the fallback owner in the tenant configuration",
		}}
		if diff := cmp.Diff(want, Reconcile(in).Problems); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
}
