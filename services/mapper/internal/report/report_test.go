package report

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

func TestFromResult(t *testing.T) {
	created := func(i int) mapping.Change {
		return mapping.Change{Kind: mapping.ChangeCreated, PlatformUserID: fmt.Sprintf("p%d", i), CRMUserID: fmt.Sprintf("c%d", i)}
	}
	removed := mapping.Change{Kind: mapping.ChangeRemoved, PlatformUserID: "p9", CRMUserID: "c9", Reason: "gone"}
	remapped := mapping.Change{Kind: mapping.ChangeRemapped, PlatformUserID: "p8", CRMUserID: "c8", PreviousCRMUserID: "c7"}
	notFound := func(i int) mapping.Problem {
		return mapping.Problem{Code: mapping.CodeCRMUserNotFound, PlatformUserID: fmt.Sprintf("p%d", i)}
	}
	fallback := mapping.Problem{Code: mapping.CodeFallbackOwnerInvalid, CRMUserID: "005F"}
	conflict := mapping.Problem{Code: mapping.CodeEmailConflict, PlatformUserID: "p5"}
	integration := func(i int) mapping.NotMappable {
		return mapping.NotMappable{CRMUserID: fmt.Sprintf("005I%d", i), UserType: "Standard", License: "Salesforce Integration", Reason: "an integration user"}
	}
	result := mapping.Result{
		Changes:     []mapping.Change{created(1), created(2), remapped, removed},
		Problems:    []mapping.Problem{notFound(1), conflict, notFound(3), fallback},
		NotMappable: []mapping.NotMappable{integration(1), integration(2), integration(3), integration(4)},
		Counts:      mapping.Counts{Mapped: 10, Created: 2, Remapped: 1, Removed: 1, Conflicts: 1, Errors: 3, NotMappable: 4},
	}

	tests := []struct {
		name   string
		limits Limits
		want   Provider
	}{
		{
			name:   "capped lists keep the rules' order of changes, errors before conflicts, and the totals",
			limits: Limits{Changes: 3, Errors: 3},
			want: Provider{
				Provider:         mapping.HubSpot,
				Counts:           Counts{Counts: result.Counts, Pulled: 42},
				Changes:          []mapping.Change{created(1), created(2), remapped},
				ChangesTotal:     4,
				Errors:           []mapping.Problem{notFound(1), notFound(3), fallback},
				ErrorsTotal:      4,
				NotMappable:      []mapping.NotMappable{integration(1), integration(2), integration(3)},
				NotMappableTotal: 4,
			},
		},
		{
			name:   "zero limits keep only counts and totals",
			limits: Limits{},
			want: Provider{
				Provider:         mapping.HubSpot,
				Counts:           Counts{Counts: result.Counts, Pulled: 42},
				ChangesTotal:     4,
				ErrorsTotal:      4,
				NotMappableTotal: 4,
			},
		},
		{
			name:   "negative limits keep everything, ordered",
			limits: Limits{Changes: -1, Errors: -1},
			want: Provider{
				Provider:         mapping.HubSpot,
				Counts:           Counts{Counts: result.Counts, Pulled: 42},
				Changes:          []mapping.Change{created(1), created(2), remapped, removed},
				ChangesTotal:     4,
				Errors:           []mapping.Problem{notFound(1), notFound(3), fallback, conflict},
				ErrorsTotal:      4,
				NotMappable:      result.NotMappable,
				NotMappableTotal: 4,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(result)
			got := FromResult(mapping.HubSpot, result, 42, tt.limits)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromResult (-want +got):\n%s", diff)
			}
			if after := fmt.Sprint(result); after != before {
				t.Errorf("FromResult modified its input")
			}
		})
	}
}

// TestFromReconcile builds a report from a real Sync Users result at a size where capping matters.
func TestFromReconcile(t *testing.T) {
	in := mapping.Input{Provider: mapping.Salesforce, Settings: mapping.DefaultSettings(), Now: time.Unix(0, 0)}
	for i := range 500 {
		in.PlatformUsers = append(in.PlatformUsers, mapping.PlatformUser{
			ID: fmt.Sprintf("p%03d", i), Email: fmt.Sprintf("u%d@x.io", i), Status: mapping.PlatformActive, Kind: mapping.KindUser,
		})
		if i%2 == 0 {
			in.CRMUsers = append(in.CRMUsers, mapping.CRMUser{ID: fmt.Sprintf("005%03d", i), Email: fmt.Sprintf("U%d@x.io", i), Active: true, Kind: mapping.CRMKindUser})
		}
	}
	r := mapping.Reconcile(in)
	limits := Limits{Changes: 100, Errors: 100}
	p := FromResult(mapping.Salesforce, r, len(in.CRMUsers), limits)
	want := Counts{Counts: mapping.Counts{Mapped: 250, Created: 250, Errors: 250, UnmappedPlatform: 250}, Pulled: 250}
	if diff := cmp.Diff(want, p.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if len(p.Changes) != limits.Changes || p.ChangesTotal != 250 {
		t.Errorf("changes: %d listed of %d, want %d of 250", len(p.Changes), p.ChangesTotal, limits.Changes)
	}
	if len(p.Errors) != limits.Errors || p.ErrorsTotal != 250 {
		t.Errorf("errors: %d listed of %d, want %d of 250", len(p.Errors), p.ErrorsTotal, limits.Errors)
	}
}

func TestFailed(t *testing.T) {
	want := Provider{Provider: mapping.Salesforce, Failure: "pull users: 401 INVALID_SESSION_ID"}
	if diff := cmp.Diff(want, Failed(mapping.Salesforce, "pull users: 401 INVALID_SESSION_ID")); diff != "" {
		t.Errorf("Failed (-want +got):\n%s", diff)
	}
}
