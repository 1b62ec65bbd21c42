package mapping

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRule1MatchByEmail(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want outcome
	}{
		{
			name: "different-case and padded emails match",
			in:   sf([]PlatformUser{pu("p1", "  Ada@Example.COM ")}, []CRMUser{cu("005A", "ada@example.com\t")}),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p1", C: "005A", Reason: reasonEmailMatch}},
			},
		},
		{
			name: "suspended, deleted, extension and call destination platform users are not matched",
			in: sf([]PlatformUser{
				withStatus(pu("p1", "a@x.io"), PlatformSuspended),
				withStatus(pu("p2", "b@x.io"), PlatformDeleted),
				withKind(pu("p3", "c@x.io"), KindExtension),
				withKind(pu("p4", "d@x.io"), KindCallDestination),
			}, []CRMUser{cu("005A", "a@x.io"), cu("005B", "b@x.io"), cu("005C", "c@x.io"), cu("005D", "d@x.io")}),
			want: outcome{Problems: []pr{
				{Code: CodePlatformUserInactive, C: "005A"},
				{Code: CodePlatformUserInactive, C: "005B"},
				{Code: CodePlatformUserNotFound, C: "005C"},
				{Code: CodePlatformUserNotFound, C: "005D"},
			}},
		},
		{
			name: "inactive CRM users and queues are not matched",
			in: sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "q@x.io")},
				[]CRMUser{inactive(cu("005A", "a@x.io")), queue(cu("00GQ", "q@x.io"))}),
			want: outcome{Problems: []pr{
				{Code: CodeCRMUserInactive, P: "p1", C: "005A"},
				{Code: CodeCRMUserNotFound, P: "p2"},
			}},
		},
		{
			name: "the active one of an inactive and an active CRM user with one email is matched",
			in: sf([]PlatformUser{pu("p1", "a@x.io")},
				[]CRMUser{inactive(cu("005A", "a@x.io")), cu("005B", "A@x.io")}),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p1", C: "005B", Reason: reasonEmailMatch}},
			},
		},
		{
			name: "users without email are listed, never matched on the empty email",
			in:   sf([]PlatformUser{pu("p1", " ")}, []CRMUser{cu("005A", "")}),
			want: outcome{Problems: []pr{{Code: CodeMissingEmail, P: "p1"}, {Code: CodeMissingEmail, C: "005A"}}},
		},
		{
			name: "an existing email mapping is kept without a change",
			in:   sf([]PlatformUser{pu("p1", "a@x.io")}, []CRMUser{cu("005A", "a@x.io")}, mapped("p1", "005A", "a@x.io", MadeByEmail)),
			want: outcome{Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, reconcileOutcome(tt.in)); diff != "" {
				t.Errorf("Reconcile (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRule1NeverCreatesPlatformUsers checks that CRM users without a platform user stay unmapped:
// Sync Users never invents platform users, it lists the CRM users.
func TestRule1NeverCreatesPlatformUsers(t *testing.T) {
	in := sf(nil, []CRMUser{cu("005A", "a@x.io"), cu("005B", "b@x.io"), queue(cu("00GQ", "q@x.io"))})
	r := Reconcile(in)
	want := outcome{Problems: []pr{{Code: CodePlatformUserNotFound, C: "005A"}, {Code: CodePlatformUserNotFound, C: "005B"}}}
	if diff := cmp.Diff(want, outcome{Mappings: mps(r.Mappings), Changes: chs(r.Changes), Problems: prs(r.Problems)}); diff != "" {
		t.Errorf("Reconcile (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counts{Errors: 2, UnmappedCRM: 2}, r.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestRule2CRMSideOfPlatformConflict: the CRM user whose email two platform users share is listed
// as a conflict with the reason naming them, and counted as a conflict (issue 14 item 7).
func TestRule2CRMSideOfPlatformConflict(t *testing.T) {
	r := Reconcile(sf([]PlatformUser{pu("p2", "a@x.io"), pu("p1", "a@X.io")}, []CRMUser{cu("005A", "a@x.io")}))
	var crmSide *Problem
	for i, p := range r.Problems {
		if p.CRMUserID == "005A" {
			crmSide = &r.Problems[i]
		}
	}
	if crmSide == nil || crmSide.Code != CodeEmailConflict || !crmSide.Conflict() ||
		!strings.Contains(crmSide.Message, "p1") || !strings.Contains(crmSide.Message, "p2") {
		t.Fatalf("CRM-side problem = %+v, want email_conflict naming p1 and p2", crmSide)
	}
	if r.Counts.Conflicts != 3 || r.Counts.UnmappedCRM != 1 {
		t.Errorf("counts = %+v, want 3 conflicts (both platform users and the CRM user), 1 unmapped CRM user", r.Counts)
	}
}

func TestRule2OneToOne(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want outcome
	}{
		{
			name: "two active CRM users with one email: conflict, no mapping",
			in:   sf([]PlatformUser{pu("p1", "a@x.io")}, []CRMUser{cu("005B", "a@x.io"), cu("005A", "A@X.io")}),
			want: outcome{Problems: []pr{
				{Code: CodeAmbiguousEmail, P: "p1"},
				{Code: CodeAmbiguousEmail, C: "005A"},
				{Code: CodeAmbiguousEmail, C: "005B"},
			}},
		},
		{
			name: "two platform users with one email: both in conflict, no mapping",
			in:   sf([]PlatformUser{pu("p2", "a@x.io"), pu("p1", "a@X.io")}, []CRMUser{cu("005A", "a@x.io")}),
			// Issue 14 item 7: the CRM side is listed too, with the reason, and counts as a conflict.
			want: outcome{Problems: []pr{{Code: CodeEmailConflict, P: "p1"}, {Code: CodeEmailConflict, P: "p2"}, {Code: CodeEmailConflict, C: "005A"}}},
		},
		{
			name: "an existing mapping stays when a second active CRM user takes its email; the newcomer is listed",
			in: sf([]PlatformUser{pu("p1", "a@x.io")}, []CRMUser{cu("005A", "a@x.io"), cu("005B", "a@x.io")},
				mapped("p1", "005A", "a@x.io", MadeByEmail)),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Problems: []pr{{Code: CodeAmbiguousEmail, C: "005B"}},
			},
		},
		{
			name: "a suspended platform user does not make an email ambiguous",
			in:   sf([]PlatformUser{pu("p1", "a@x.io"), withStatus(pu("p2", "a@x.io"), PlatformSuspended)}, []CRMUser{cu("005A", "a@x.io")}),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p1", C: "005A", Reason: reasonEmailMatch}},
			},
		},
		{
			name: "a CRM user pinned to someone else is not matched by email",
			in: sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "other@x.io")}, []CRMUser{cu("005A", "a@x.io")},
				mapped("p2", "005A", "other@x.io", MadeByManual)),
			want: outcome{
				Mappings: []mp{{P: "p2", C: "005A", Status: StatusSynced, MadeBy: MadeByManual}},
				Problems: []pr{{Code: CodeCRMUserMappedElsewhere, P: "p1", C: "005A"}},
			},
		},
		{
			name: "stored duplicates are cut back to one mapping per user",
			in: sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "b@x.io")}, []CRMUser{cu("005A", "a@x.io"), cu("005B", "b@x.io")},
				mapped("p1", "005B", "a@x.io", MadeByEmail),
				mapped("p1", "005A", "a@x.io", MadeByEmail),
				mapped("p2", "005A", "b@x.io", MadeByEmail)),
			want: outcome{
				Mappings: []mp{
					{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail},
					{P: "p2", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail},
				},
				Changes: []ch{
					{Kind: ChangeRemoved, P: "p1", C: "005B", Reason: reasonDuplicatePlatform},
					{Kind: ChangeRemoved, P: "p2", C: "005A", Reason: reasonDuplicateCRM},
					{Kind: ChangeCreated, P: "p2", C: "005B", Reason: reasonEmailMatch},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, reconcileOutcome(tt.in)); diff != "" {
				t.Errorf("Reconcile (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRule3ManualMapping(t *testing.T) {
	manual := mapped("p1", "005A", "ada@x.io", MadeByManual)
	platform := []PlatformUser{pu("p1", "ada@x.io")}
	tests := []struct {
		name  string
		in    Input
		event *Event
		want  outcome
	}{
		{
			name: "a manual mapping with different emails survives Sync Users",
			in:   sf(platform, []CRMUser{cu("005A", "ada.lovelace@corp.io")}, manual),
			want: outcome{Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByManual}}},
		},
		{
			name: "Sync Users turns it to error when its CRM user is deactivated, even with a remap candidate",
			in:   sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io")}, manual),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusError, MadeBy: MadeByManual}},
				Changes:  []ch{{Kind: ChangeError, P: "p1", C: "005A", Reason: reasonSalesforceInactive}},
				Problems: []pr{
					{Code: CodeCRMUserInactive, P: "p1", C: "005A"},
					{Code: CodePlatformUserMappedElsewhere, C: "005B"},
				},
			},
		},
		{
			name:  "the deactivation event turns it to error at once",
			in:    sf(platform, []CRMUser{inactive(cu("005A", "other@corp.io"))}, manual),
			event: &Event{CRMUserID: "005A"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusError, MadeBy: MadeByManual}},
				Changes:  []ch{{Kind: ChangeError, P: "p1", C: "005A", Reason: reasonSalesforceInactive}},
				Problems: []pr{{Code: CodeCRMUserInactive, P: "p1", C: "005A"}},
			},
		},
		{
			name: "a manual mapping is not removed when its platform user is suspended",
			in:   sf([]PlatformUser{withStatus(pu("p1", "ada@x.io"), PlatformSuspended)}, []CRMUser{cu("005A", "z@corp.io")}, manual),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusError, MadeBy: MadeByManual}},
				Changes:  []ch{{Kind: ChangeError, P: "p1", C: "005A", Reason: reasonPlatformSuspended}},
				Problems: []pr{{Code: CodePlatformUserInactive, P: "p1", C: "005A"}},
			},
		},
		{
			name: "it is resolved when its CRM user is active again",
			in: sf(platform, []CRMUser{cu("005A", "z@corp.io")},
				withMappingStatus(manual, StatusError, reasonSalesforceInactive)),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByManual}},
				Changes:  []ch{{Kind: ChangeResolved, P: "p1", C: "005A", Reason: reasonResolved}},
			},
		},
		{
			name: "a manual mapping wins over the email mapping of its CRM user",
			in: sf([]PlatformUser{pu("p1", "ada@x.io"), pu("p2", "bob@x.io")}, []CRMUser{cu("005B", "bob@x.io")},
				mapped("p2", "005B", "bob@x.io", MadeByEmail),
				mapped("p1", "005B", "ada@x.io", MadeByManual)),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Status: StatusSynced, MadeBy: MadeByManual}},
				Changes:  []ch{{Kind: ChangeRemoved, P: "p2", C: "005B", Reason: reasonDuplicateCRM}},
				Problems: []pr{{Code: CodeCRMUserMappedElsewhere, P: "p2", C: "005B"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got outcome
			if tt.event != nil {
				got = applyOutcome(tt.in, *tt.event)
			} else {
				got = reconcileOutcome(tt.in)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRule3Pin(t *testing.T) {
	platform := []PlatformUser{pu("p1", "ada@x.io"), pu("p2", "bob@x.io"), withStatus(pu("p3", "c@x.io"), PlatformSuspended)}
	crm := []CRMUser{cu("005A", "ada@corp.io"), cu("005B", "bob@x.io"), inactive(cu("005I", "i@x.io")), cu("005M", "m@x.io")}
	stored := []Mapping{mapped("p2", "005B", "bob@x.io", MadeByEmail), mapped("p9", "005M", "m@x.io", MadeByManual)}
	tests := []struct {
		name     string
		platform string
		crm      string
		want     outcome
		wantErr  error
	}{
		{
			name: "pins a platform user to a CRM user with another email", platform: "p1", crm: "005A",
			want: outcome{
				Mappings: []mp{
					{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByManual},
					{P: "p2", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail},
					{P: "p9", C: "005M", Status: StatusSynced, MadeBy: MadeByManual},
				},
				Changes: []ch{{Kind: ChangeCreated, P: "p1", C: "005A", Reason: "mapped manually by the admin"}},
			},
		},
		{
			name: "takes the CRM user from an email mapping", platform: "p1", crm: "005B",
			want: outcome{
				Mappings: []mp{
					{P: "p1", C: "005B", Status: StatusSynced, MadeBy: MadeByManual},
					{P: "p9", C: "005M", Status: StatusSynced, MadeBy: MadeByManual},
				},
				Changes: []ch{
					{Kind: ChangeCreated, P: "p1", C: "005B", Reason: "mapped manually by the admin"},
					{Kind: ChangeRemoved, P: "p2", C: "005B", Reason: "CRM user 005B was mapped manually to platform user p1"},
				},
				Problems: []pr{{Code: CodeCRMUserMappedElsewhere, P: "p2", C: "005B"}},
			},
		},
		{
			name: "moves a mapped platform user", platform: "p2", crm: "005A",
			want: outcome{
				Mappings: []mp{
					{P: "p2", C: "005A", Prev: "005B", Status: StatusSynced, MadeBy: MadeByManual},
					{P: "p9", C: "005M", Status: StatusSynced, MadeBy: MadeByManual},
				},
				Changes:  []ch{{Kind: ChangeRemapped, P: "p2", C: "005A", Prev: "005B", Reason: "mapped manually by the admin"}},
				Problems: []pr{{Code: CodePlatformUserMappedElsewhere, C: "005B"}},
			},
		},
		{name: "unknown platform user", platform: "p0", crm: "005A", wantErr: ErrPlatformUserNotFound},
		{name: "suspended platform user", platform: "p3", crm: "005A", wantErr: ErrPlatformUserInvalid},
		{name: "unknown CRM user", platform: "p1", crm: "005Z", wantErr: ErrCRMUserNotFound},
		{name: "inactive CRM user", platform: "p1", crm: "005I", wantErr: ErrCRMUserInvalid},
		{name: "CRM user pinned to someone else", platform: "p1", crm: "005M", wantErr: ErrCRMUserPinned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Pin(sf(platform, crm, stored...), tt.platform, tt.crm)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pin error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got := outcome{Mappings: mps(writeDelta(stored, d)), Changes: chs(d.Changes), Problems: prs(d.Problems)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Pin (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRule3Unpin(t *testing.T) {
	stored := []Mapping{mapped("p1", "005A", "a@x.io", MadeByManual), mapped("p2", "005B", "b@x.io", MadeByEmail)}
	d := Unpin(sf([]PlatformUser{pu("p1", "a@x.io")}, []CRMUser{cu("005A", "z@x.io")}, stored...), "p1")
	want := []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: "unmapped by the admin"}}
	if diff := cmp.Diff(want, chs(d.Changes)); diff != "" {
		t.Errorf("Unpin changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]mp{{P: "p2", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail}}, mps(writeDelta(stored, d))); diff != "" {
		t.Errorf("Unpin mappings (-want +got):\n%s", diff)
	}
}

func TestRule4RemapOnDeactivation(t *testing.T) {
	platform := []PlatformUser{pu("p1", "ada@x.io")}
	stored := mapped("p1", "005A", "ada@x.io", MadeByEmail)
	remapOff := sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io")}, stored)
	remapOff.Settings.RemapOnDeactivation = false
	tests := []struct {
		name  string
		in    Input
		event *Event
		want  outcome
	}{
		{
			name: "Sync Users remaps to the one other active CRM user with the same email, keeping the previous id",
			in:   sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ADA@x.io")}, stored),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Prev: "005A", Status: StatusSynced, MadeBy: MadeByRemapInactive}},
				Changes:  []ch{{Kind: ChangeRemapped, P: "p1", C: "005B", Prev: "005A", Reason: remapReason("005A", "005B")}},
			},
		},
		{
			name:  "the deactivation event remaps at once",
			in:    sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io")}, stored),
			event: &Event{CRMUserID: "005A"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Prev: "005A", Status: StatusSynced, MadeBy: MadeByRemapInactive}},
				Changes:  []ch{{Kind: ChangeRemapped, P: "p1", C: "005B", Prev: "005A", Reason: remapReason("005A", "005B")}},
			},
		},
		{
			name: "two active candidates: no remap, the mapping is removed and the email is in conflict",
			in:   sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), cu("005C", "ada@x.io")}, stored),
			want: outcome{
				Changes: []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: reasonSalesforceInactive}},
				Problems: []pr{
					{Code: CodeAmbiguousEmail, P: "p1"},
					{Code: CodeAmbiguousEmail, C: "005B"},
					{Code: CodeAmbiguousEmail, C: "005C"},
				},
			},
		},
		{
			name:  "two active candidates between runs: no remap, conflict at once",
			in:    sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), cu("005C", "ada@x.io")}, stored),
			event: &Event{CRMUserID: "005A"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusConflict, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeConflict, P: "p1", C: "005A", Reason: ambiguousRemapReason(2)}},
				Problems: []pr{{Code: CodeMappingConflict, P: "p1", C: "005A"}},
			},
		},
		{
			name:  "remapping off: the deactivation event marks the mapping error, no remap",
			in:    remapOff,
			event: &Event{CRMUserID: "005A"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusError, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeError, P: "p1", C: "005A", Reason: reasonSalesforceInactive}},
				Problems: []pr{{Code: CodeCRMUserInactive, P: "p1", C: "005A"}},
			},
		},
		{
			name: "remapping off: Sync Users removes the mapping and matches by email afresh, no remap",
			in:   remapOff,
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes: []ch{
					{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: reasonSalesforceInactive},
					{Kind: ChangeCreated, P: "p1", C: "005B", Reason: reasonEmailMatch},
				},
			},
		},
		{
			name: "the candidate is held by another mapping: removed, not remapped",
			in: sf([]PlatformUser{pu("p1", "ada@x.io"), pu("p2", "ada2@x.io")},
				[]CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io")},
				stored, mapped("p2", "005B", "ada2@x.io", MadeByManual)),
			want: outcome{
				Mappings: []mp{{P: "p2", C: "005B", Status: StatusSynced, MadeBy: MadeByManual}},
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: remapTakenReason("005B")}},
				Problems: []pr{{Code: CodeCRMUserMappedElsewhere, P: "p1", C: "005B"}},
			},
		},
		{
			// Issue 14 item 4: a remap made while only one candidate was known (events out of
			// order) is not kept once a second active user with the email exists.
			name: "remap_inactive mapping with a second active user of the email: Sync Users makes it a conflict",
			in: sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), cu("005C", "ada@x.io")},
				withPrev(mapped("p1", "005B", "ada@x.io", MadeByRemapInactive), "005A")),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Prev: "005A", Status: StatusConflict, MadeBy: MadeByRemapInactive}},
				Changes:  []ch{{Kind: ChangeConflict, P: "p1", C: "005B", Prev: "005A", Reason: remapNowAmbiguousReason(2)}},
				Problems: []pr{{Code: CodeMappingConflict, P: "p1", C: "005B"}, {Code: CodeAmbiguousEmail, C: "005C"}},
			},
		},
		{
			name: "remap_inactive mapping with a second active user of the email: the new user's event makes it a conflict",
			in: sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), cu("005C", "ada@x.io")},
				withPrev(mapped("p1", "005B", "ada@x.io", MadeByRemapInactive), "005A")),
			event: &Event{CRMUserID: "005C"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Prev: "005A", Status: StatusConflict, MadeBy: MadeByRemapInactive}},
				Changes:  []ch{{Kind: ChangeConflict, P: "p1", C: "005B", Prev: "005A", Reason: remapNowAmbiguousReason(2)}},
				Problems: []pr{{Code: CodeMappingConflict, P: "p1", C: "005B"}, {Code: CodeAmbiguousEmail, C: "005C"}},
			},
		},
		{
			name: "a remap held for two candidates goes ahead when one of them is deactivated",
			in: sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), inactive(cu("005C", "ada@x.io"))},
				withMappingStatus(stored, StatusConflict, ambiguousRemapReason(2))),
			event: &Event{CRMUserID: "005C"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Prev: "005A", Status: StatusSynced, MadeBy: MadeByRemapInactive}},
				Changes:  []ch{{Kind: ChangeRemapped, P: "p1", C: "005B", Prev: "005A", Reason: remapReason("005A", "005B")}},
			},
		},
		{
			name: "a remap_inactive conflict resolves when the other user is deactivated",
			in: sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), inactive(cu("005C", "ada@x.io"))},
				withPrev(withMappingStatus(mapped("p1", "005B", "ada@x.io", MadeByRemapInactive), StatusConflict, remapNowAmbiguousReason(2)), "005A")),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Prev: "005A", Status: StatusSynced, MadeBy: MadeByRemapInactive}},
				Changes:  []ch{{Kind: ChangeResolved, P: "p1", C: "005B", Prev: "005A", Reason: reasonResolved}},
			},
		},
		{
			name: "no candidate: removed",
			in:   sf(platform, []CRMUser{inactive(cu("005A", "ada@x.io"))}, stored),
			want: outcome{
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: reasonSalesforceInactive}},
				Problems: []pr{{Code: CodeCRMUserInactive, P: "p1", C: "005A"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got outcome
			if tt.event != nil {
				got = applyOutcome(tt.in, *tt.event)
			} else {
				got = reconcileOutcome(tt.in)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRule5CleanUp(t *testing.T) {
	stored := mapped("p1", "005A", "ada@x.io", MadeByEmail)
	crm := []CRMUser{cu("005A", "ada@x.io")}
	removed := func(reason string, problems ...pr) outcome {
		return outcome{Changes: []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: reason}}, Problems: problems}
	}
	hubspot := Input{
		Provider:      HubSpot,
		PlatformUsers: []PlatformUser{pu("p1", "ada@x.io")},
		CRMUsers:      []CRMUser{inactive(cu("123", "ada@x.io"))},
		Mappings:      []Mapping{mapped("p1", "123", "ada@x.io", MadeByEmail)},
		Settings:      DefaultSettings(),
		Now:           now,
	}
	tests := []struct {
		name string
		in   Input
		want outcome
	}{
		{
			name: "platform user suspended",
			in:   sf([]PlatformUser{withStatus(pu("p1", "ada@x.io"), PlatformSuspended)}, crm, stored),
			want: removed(reasonPlatformSuspended, pr{Code: CodePlatformUserInactive, C: "005A"}),
		},
		{
			name: "platform user deleted",
			in:   sf([]PlatformUser{withStatus(pu("p1", "ada@x.io"), PlatformDeleted)}, crm, stored),
			want: removed(reasonPlatformDeleted, pr{Code: CodePlatformUserInactive, C: "005A"}),
		},
		{
			name: "platform user is an extension",
			in:   sf([]PlatformUser{withKind(pu("p1", "ada@x.io"), KindExtension)}, crm, stored),
			want: removed(reasonExtension, pr{Code: CodePlatformUserNotFound, C: "005A"}),
		},
		{
			name: "platform user is a call destination",
			in:   sf([]PlatformUser{withKind(pu("p1", "ada@x.io"), KindCallDestination)}, crm, stored),
			want: removed(reasonCallDestination, pr{Code: CodePlatformUserNotFound, C: "005A"}),
		},
		{
			name: "platform user no longer exists",
			in:   sf(nil, crm, stored),
			want: removed(reasonPlatformNotFound, pr{Code: CodePlatformUserNotFound, C: "005A"}),
		},
		{
			name: "Salesforce user no longer exists",
			in:   sf([]PlatformUser{pu("p1", "ada@x.io")}, nil, stored),
			want: removed(reasonSalesforceNotFound, pr{Code: CodeCRMUserNotFound, P: "p1"}),
		},
		{
			name: "Salesforce user turned into a queue",
			in:   sf([]PlatformUser{pu("p1", "ada@x.io")}, []CRMUser{queue(cu("005A", "ada@x.io"))}, stored),
			want: removed(reasonQueue, pr{Code: CodeCRMUserNotFound, P: "p1"}),
		},
		{
			name: "HubSpot owner archived",
			in:   hubspot,
			want: outcome{
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "123", Reason: reasonHubSpotArchived}},
				Problems: []pr{{Code: CodeCRMUserInactive, P: "p1", C: "123"}},
			},
		},
		{
			name: "CRM email changed",
			in:   sf([]PlatformUser{pu("p1", "ada@x.io")}, []CRMUser{cu("005A", "ada@new.io")}, stored),
			want: removed(emailChangedReason("ada@new.io", "ada@x.io"),
				pr{Code: CodeCRMUserNotFound, P: "p1"}, pr{Code: CodePlatformUserNotFound, C: "005A"}),
		},
		{
			name: "CRM email changed and another CRM user has the old email: mapped to that one",
			in:   sf([]PlatformUser{pu("p1", "ada@x.io")}, []CRMUser{cu("005A", "ada@new.io"), cu("005B", "ada@x.io")}, stored),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes: []ch{
					{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: emailChangedReason("ada@new.io", "ada@x.io")},
					{Kind: ChangeCreated, P: "p1", C: "005B", Reason: reasonEmailMatch},
				},
				Problems: []pr{{Code: CodePlatformUserNotFound, C: "005A"}},
			},
		},
		{
			name: "a mapping flagged between runs and valid again is resolved",
			in: sf([]PlatformUser{pu("p1", "ada@x.io")}, crm,
				withMappingStatus(stored, StatusConflict, emailChangedReason("x@y.io", "ada@x.io"))),
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeResolved, P: "p1", C: "005A", Reason: reasonResolved}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, reconcileOutcome(tt.in)); diff != "" {
				t.Errorf("Reconcile (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRule5BetweenRuns checks that an event which breaks a mapping marks it at once and that the next
// Sync Users resolves it.
func TestRule5BetweenRuns(t *testing.T) {
	stored := mapped("p1", "005A", "ada@x.io", MadeByEmail)
	tests := []struct {
		name      string
		platform  []PlatformUser
		crm       []CRMUser
		event     Event
		wantEvent outcome
		wantSync  outcome
	}{
		{
			name:     "CRM email changed: conflict at once, removed by the next Sync Users",
			platform: []PlatformUser{pu("p1", "ada@x.io")},
			crm:      []CRMUser{cu("005A", "ada@new.io")},
			event:    Event{CRMUserID: "005A", PreviousEmail: "ada@x.io"},
			wantEvent: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusConflict, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeConflict, P: "p1", C: "005A", Reason: emailChangedReason("ada@new.io", "ada@x.io")}},
				Problems: []pr{{Code: CodeMappingConflict, P: "p1", C: "005A"}},
			},
			wantSync: outcome{
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: emailChangedReason("ada@new.io", "ada@x.io")}},
				Problems: []pr{{Code: CodeCRMUserNotFound, P: "p1"}, {Code: CodePlatformUserNotFound, C: "005A"}},
			},
		},
		{
			name:     "platform email changed: conflict at once, removed by the next Sync Users",
			platform: []PlatformUser{pu("p1", "ada@new.io")},
			crm:      []CRMUser{cu("005A", "ada@x.io")},
			event:    Event{PlatformUserID: "p1", PreviousEmail: "ada@x.io"},
			wantEvent: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusConflict, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeConflict, P: "p1", C: "005A", Reason: emailChangedReason("ada@x.io", "ada@new.io")}},
				Problems: []pr{{Code: CodeMappingConflict, P: "p1", C: "005A"}},
			},
			wantSync: outcome{
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: emailChangedReason("ada@x.io", "ada@new.io")}},
				Problems: []pr{{Code: CodeCRMUserNotFound, P: "p1"}, {Code: CodePlatformUserNotFound, C: "005A"}},
			},
		},
		{
			name:     "platform user suspended: error at once, removed by the next Sync Users",
			platform: []PlatformUser{withStatus(pu("p1", "ada@x.io"), PlatformSuspended)},
			crm:      []CRMUser{cu("005A", "ada@x.io")},
			event:    Event{PlatformUserID: "p1"},
			wantEvent: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusError, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeError, P: "p1", C: "005A", Reason: reasonPlatformSuspended}},
				Problems: []pr{{Code: CodePlatformUserInactive, P: "p1", C: "005A"}},
			},
			wantSync: outcome{
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: reasonPlatformSuspended}},
				Problems: []pr{{Code: CodePlatformUserInactive, C: "005A"}},
			},
		},
		{
			name:     "platform user becomes a call destination: error at once, removed by the next Sync Users",
			platform: []PlatformUser{withKind(pu("p1", "ada@x.io"), KindCallDestination)},
			crm:      []CRMUser{cu("005A", "ada@x.io")},
			event:    Event{PlatformUserID: "p1"},
			wantEvent: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusError, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeError, P: "p1", C: "005A", Reason: reasonCallDestination}},
				Problems: []pr{{Code: CodePlatformUserNotPerson, P: "p1", C: "005A"}},
			},
			wantSync: outcome{
				Changes:  []ch{{Kind: ChangeRemoved, P: "p1", C: "005A", Reason: reasonCallDestination}},
				Problems: []pr{{Code: CodePlatformUserNotFound, C: "005A"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sf(tt.platform, tt.crm, stored)
			d := Apply(in, tt.event)
			after := writeDelta(in.Mappings, d)
			if diff := cmp.Diff(tt.wantEvent, outcome{Mappings: mps(after), Changes: chs(d.Changes), Problems: prs(d.Problems)}); diff != "" {
				t.Errorf("Apply (-want +got):\n%s", diff)
			}
			in.Mappings = after
			if diff := cmp.Diff(tt.wantSync, reconcileOutcome(in)); diff != "" {
				t.Errorf("next Sync Users (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyNewUsers checks the email match between runs for new users, and that it stays unambiguous.
func TestApplyNewUsers(t *testing.T) {
	tests := []struct {
		name  string
		in    Input
		event Event
		want  outcome
	}{
		{
			name:  "new CRM user matches an unmapped platform user",
			in:    sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "b@x.io")}, []CRMUser{cu("005A", "A@x.io"), cu("005B", "b@x.io")}),
			event: Event{CRMUserID: "005A"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p1", C: "005A", Reason: reasonEmailMatch}},
			},
		},
		{
			name:  "new platform user matches an unmapped CRM user",
			in:    sf([]PlatformUser{pu("p1", "a@x.io")}, []CRMUser{cu("005A", "a@x.io")}),
			event: Event{PlatformUserID: "p1"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p1", C: "005A", Reason: reasonEmailMatch}},
			},
		},
		{
			name:  "a second active CRM user with the email: conflict, no mapping",
			in:    sf([]PlatformUser{pu("p1", "a@x.io")}, []CRMUser{cu("005A", "a@x.io"), cu("005B", "a@x.io")}),
			event: Event{CRMUserID: "005B"},
			want:  outcome{Problems: []pr{{Code: CodeAmbiguousEmail, P: "p1"}, {Code: CodeAmbiguousEmail, C: "005B"}}},
		},
		{
			name: "a CRM user leaving an ambiguous email makes the other one match",
			in: sf([]PlatformUser{pu("p1", "a@x.io")},
				[]CRMUser{cu("005A", "a@x.io"), cu("005B", "new@x.io")}),
			event: Event{CRMUserID: "005B", PreviousEmail: "A@x.io"},
			want: outcome{
				Mappings: []mp{{P: "p1", C: "005A", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p1", C: "005A", Reason: reasonEmailMatch}},
				Problems: []pr{{Code: CodePlatformUserNotFound, C: "005B"}},
			},
		},
		{
			name:  "users outside the event are left alone",
			in:    sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "b@x.io")}, []CRMUser{cu("005A", "a@x.io"), cu("005B", "b@x.io")}),
			event: Event{PlatformUserID: "p2"},
			want: outcome{
				Mappings: []mp{{P: "p2", C: "005B", Status: StatusSynced, MadeBy: MadeByEmail}},
				Changes:  []ch{{Kind: ChangeCreated, P: "p2", C: "005B", Reason: reasonEmailMatch}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, applyOutcome(tt.in, tt.event)); diff != "" {
				t.Errorf("Apply (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyChecked checks which users an event re-evaluates, so a store can replace their problems.
func TestApplyChecked(t *testing.T) {
	in := sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "b@x.io"), pu("p3", "a@x.io")},
		[]CRMUser{cu("005A", "new@x.io"), cu("005B", "b@x.io")},
		mapped("p1", "005A", "a@x.io", MadeByEmail), mapped("p2", "005B", "b@x.io", MadeByEmail))
	d := Apply(in, Event{CRMUserID: "005A", PreviousEmail: "a@x.io"})
	got := [][]string{d.CheckedPlatformUsers, d.CheckedCRMUsers}
	want := [][]string{{"p1", "p3"}, {"005A"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checked users (-want +got):\n%s", diff)
	}
	wantProblems := []pr{
		{Code: CodeMappingConflict, P: "p1", C: "005A"},
		{Code: CodeEmailConflict, P: "p3"},
	}
	if diff := cmp.Diff(wantProblems, prs(d.Problems)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
