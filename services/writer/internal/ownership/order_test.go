package ownership

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/provider"
)

func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	window := 2 * time.Minute
	// wrote: the writer put sfGrace on the record at t0 for a platform change from t0-1s.
	wrote := RecordState{AppliedOwner: sfGrace, AppliedAt: t0.Add(-time.Second), AppliedEventID: "p-1",
		WrittenOwner: sfGrace, WrittenAt: t0}
	// moved: after our write a real CRM change to sfAda was applied.
	moved := wrote.Apply(Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-2", Owner: sfAda, At: t0.Add(10 * time.Second)})
	// claimed: a platform change to sfAda claimed its write, not yet confirmed.
	claimed := wrote.Claim(Observation{Origin: FromPlatform, Provider: provider.Salesforce, EventID: "p-7", Owner: sfAda, At: t0.Add(time.Minute)}, t0.Add(time.Minute))
	tests := []struct {
		name  string
		state RecordState
		obs   Observation
		want  Verdict
	}{
		{"first change for a record applies", RecordState{},
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-1", Owner: sfAda, At: t0}, Apply},
		{"our write coming back is an echo", wrote,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-9", Owner: sfGrace, At: t0.Add(3 * time.Second)}, Echo},
		{"echo matches the 15-character form of the id", wrote,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-9", Owner: sfGrace[:15], At: t0.Add(time.Second)}, Echo},
		{"echo stamped slightly before our clock", wrote,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-9", Owner: sfGrace, At: t0.Add(-500 * time.Millisecond)}, Echo},
		{"same owner after the echo window is only unchanged", wrote,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-9", Owner: sfGrace, At: t0.Add(window + time.Second)}, Unchanged},
		{"platform change is never an echo", wrote,
			Observation{Origin: FromPlatform, Provider: provider.Salesforce, EventID: "p-2", Owner: sfGrace, At: t0.Add(time.Second)}, Unchanged},
		{"another owner within the window applies", wrote,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-3", Owner: sfAda, At: t0.Add(time.Second)}, Apply},
		{"our owner again after a real change is not an echo", moved,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-4", Owner: sfGrace, At: t0.Add(20 * time.Second)}, Apply},
		{"older than the last applied is stale", moved,
			Observation{Origin: FromPlatform, Provider: provider.Salesforce, EventID: "p-0", Owner: sfFallback, At: t0.Add(5 * time.Second)}, Stale},
		{"older crm change is stale", moved,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-1", Owner: sfFallback, At: t0}, Stale},
		{"redelivered crm event is redone (its OwnerAssign is republished)", moved,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-2", Owner: sfAda, At: t0.Add(10 * time.Second)}, Redo},
		{"redelivered platform event after its write is a duplicate", wrote,
			Observation{Origin: FromPlatform, Provider: provider.Salesforce, EventID: "p-1", Owner: sfGrace, At: t0.Add(-time.Second)}, Duplicate},
		{"redelivered platform event with its write pending is redone", claimed,
			Observation{Origin: FromPlatform, Provider: provider.Salesforce, EventID: "p-7", Owner: sfAda, At: t0.Add(time.Minute)}, Redo},
		{"same owner while a write is pending is written again", claimed,
			Observation{Origin: FromPlatform, Provider: provider.Salesforce, EventID: "p-8", Owner: sfAda, At: t0.Add(2 * time.Minute)}, Apply},
		{"echo of a pending write", claimed,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-8", Owner: sfAda, At: t0.Add(time.Minute + time.Second)}, Echo},
		{"same instant and owner under another id is a duplicate", moved,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-2b", Owner: sfAda, At: t0.Add(10 * time.Second)}, Duplicate},
		{"same instant, greater owner id wins", moved,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-5", Owner: sfGrace, At: t0.Add(10 * time.Second)}, Apply},
		{"same instant, smaller owner id loses", moved,
			Observation{Origin: FromCRM, Provider: provider.Salesforce, EventID: "c-6", Owner: "0055g00000AaAaAAAV", At: t0.Add(10 * time.Second)}, Stale},
		{"hubspot ids compare exactly", RecordState{AppliedOwner: "100000000000000001", AppliedAt: t0},
			Observation{Origin: FromCRM, Provider: provider.HubSpot, EventID: "h-1", Owner: "100000000000000002", At: t0.Add(time.Second)}, Apply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Judge(tt.state, tt.obs, window); got != tt.want {
				t.Errorf("Judge = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestJudgeConverges delivers the same changes in every order, with duplicates, and checks that the
// record always ends with the newest owner.
func TestJudgeConverges(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	changes := []Observation{
		{Origin: FromCRM, Provider: provider.HubSpot, EventID: "a", Owner: "1", At: t0},
		{Origin: FromPlatform, Provider: provider.HubSpot, EventID: "b", Owner: "2", At: t0.Add(time.Second)},
		{Origin: FromCRM, Provider: provider.HubSpot, EventID: "c", Owner: "3", At: t0.Add(2 * time.Second)},
		{Origin: FromPlatform, Provider: provider.HubSpot, EventID: "d", Owner: "1", At: t0.Add(3 * time.Second)},
	}
	var permute func([]Observation, int, func([]Observation))
	permute = func(a []Observation, k int, f func([]Observation)) {
		if k == len(a) {
			f(a)
			return
		}
		for i := k; i < len(a); i++ {
			a[k], a[i] = a[i], a[k]
			permute(a, k+1, f)
			a[k], a[i] = a[i], a[k]
		}
	}
	n := 0
	permute(append([]Observation(nil), changes...), 0, func(order []Observation) {
		n++
		var st RecordState
		// Deliver each change twice: once in this order, then all again.
		for _, o := range append(append([]Observation(nil), order...), order...) {
			switch Judge(st, o, time.Minute) {
			case Apply, Unchanged:
				st = st.Apply(o)
			}
		}
		want := RecordState{AppliedOwner: "1", AppliedAt: t0.Add(3 * time.Second), AppliedEventID: "d"}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("order %v (-want +got):\n%s", order, diff)
		}
	})
	if n != 24 {
		t.Fatalf("tried %d orders, want 24", n)
	}
}

func TestClaimConfirm(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	o := Observation{Origin: FromPlatform, Provider: provider.HubSpot, EventID: "p1", Owner: "7", At: at}
	claimed := RecordState{AppliedOwner: "1", AppliedAt: at.Add(-time.Hour)}.Claim(o, at.Add(time.Second))
	want := RecordState{AppliedOwner: "7", AppliedAt: at, AppliedEventID: "p1", WrittenOwner: "7", WrittenAt: at.Add(time.Second), Pending: true}
	if diff := cmp.Diff(want, claimed); diff != "" {
		t.Errorf("Claim (-want +got):\n%s", diff)
	}
	got, ok := claimed.Confirm("p1", at.Add(2*time.Second))
	want.WrittenAt, want.Pending = at.Add(2*time.Second), false
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("Confirm = %v (-want +got):\n%s", ok, diff)
	}
	if _, ok := claimed.Confirm("p0", at); ok {
		t.Error("Confirm of another event succeeded")
	}
	if _, ok := got.Confirm("p1", at); ok {
		t.Error("second Confirm succeeded")
	}
	// A CRM change applied while the write is in flight takes the record over.
	moved := claimed.Apply(Observation{Origin: FromCRM, Provider: provider.HubSpot, EventID: "c1", Owner: "9", At: at.Add(time.Second)})
	if moved.Pending {
		t.Error("a newer applied change left the earlier write pending")
	}
	if _, ok := moved.Confirm("p1", at.Add(2*time.Second)); ok {
		t.Error("the earlier write confirmed over a newer change")
	}
}

func TestWrote(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	got := RecordState{AppliedOwner: "1"}.Wrote("2", at)
	want := RecordState{AppliedOwner: "1", WrittenOwner: "2", WrittenAt: at}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Wrote (-want +got):\n%s", diff)
	}
}
