package mapping

import "testing"

// TestProblemsNameTheUser: each problem names the user it is about — the platform user's name,
// else the CRM user's — so that the console, the API and the report can say who (issue 16).
func TestProblemsNameTheUser(t *testing.T) {
	in := sf(
		[]PlatformUser{pu("p1", "nobody@x.io"), {ID: "p2", Email: "", Status: PlatformActive, Kind: KindUser, FirstName: "Ada"}},
		[]CRMUser{cu("c1", "orphan@x.io")},
	)
	want := map[string]string{CodeCRMUserNotFound: "Fp1 Lp1", CodeMissingEmail: "Ada", CodePlatformUserNotFound: "Fc1 Lc1"}
	r := Reconcile(in)
	if len(r.Problems) != len(want) {
		t.Fatalf("problems = %+v, want one per code of %v", r.Problems, want)
	}
	for _, p := range r.Problems {
		if p.Name != want[p.Code] {
			t.Errorf("%s problem names %q, want %q", p.Code, p.Name, want[p.Code])
		}
	}
}

// TestCountProblems: the one definition of the counts — a conflict code counts as a conflict,
// every other problem as an error — and the run's counts follow it.
func TestCountProblems(t *testing.T) {
	ps := []Problem{{Code: CodeEmailConflict}, {Code: CodeCRMUserNotFound}, {Code: CodeAmbiguousEmail},
		{Code: CodeMappingConflict}, {Code: CodeMissingEmail}, {Code: "crm_api_error"}}
	got := CountProblems(ps)
	if want := (ProblemCounts{Errors: 3, Conflicts: 3}); got != want {
		t.Errorf("CountProblems = %+v, want %+v", got, want)
	}
	for _, p := range ps {
		if (p.Kind() == ProblemKindConflict) != p.Conflict() || (p.Kind() != ProblemKindConflict && p.Kind() != ProblemKindError) {
			t.Errorf("%s: Kind %q disagrees with Conflict %v", p.Code, p.Kind(), p.Conflict())
		}
	}
	r := Reconcile(sf([]PlatformUser{pu("p1", "a@x.io"), pu("p2", "a@x.io"), pu("p3", "none@x.io")}, []CRMUser{cu("c1", "b@x.io")}))
	c := CountProblems(r.Problems)
	if r.Counts.Errors != c.Errors || r.Counts.Conflicts != c.Conflicts || c.Conflicts == 0 || c.Errors == 0 {
		t.Errorf("run counts %d errors, %d conflicts; its problems %+v", r.Counts.Errors, r.Counts.Conflicts, c)
	}
}
