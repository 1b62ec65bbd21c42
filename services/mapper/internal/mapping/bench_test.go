package mapping

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// benchInput builds a tenant of nPlatform platform users and nCRM CRM users that went through one
// Sync Users before, then drifted: about 1% of the mapped CRM users were deactivated with a
// replacement (remapped), 1% deactivated without one (removed), 1% changed their email (removed),
// 0.5% got a second active user with the same email (ambiguous), 1% of platform users were suspended
// and 0.5% are extensions; 10% of emails are spelled in upper case on one side; a tenth of the
// platform users are new (no mapping yet).
func benchInput(nPlatform, nCRM int) Input {
	in := Input{Provider: Salesforce, Now: now, Settings: DefaultSettings()}
	email := func(i int) string { return fmt.Sprintf("user%07d@example.com", i) }
	crmID := func(prefix string, i int) string { return fmt.Sprintf("%s%015d", prefix, i) }

	var extra []CRMUser
	base := make([]CRMUser, 0, nCRM)
	for i := 0; len(base)+len(extra) < nCRM; i++ {
		u := cu(crmID("005", i), email(i))
		if i%10 == 3 {
			u.Email = strings.ToUpper(u.Email)
		}
		if i < nPlatform {
			switch i % 200 {
			case 7, 8: // deactivated, one replacement: remapped
				u.Active = false
				extra = append(extra, cu(crmID("005R", i), email(i)))
			case 9, 10: // deactivated, nobody else: removed
				u.Active = false
			case 11, 12: // email changed in the CRM: removed
				u.Email = fmt.Sprintf("changed%07d@example.com", i)
			case 13: // a second active user with the same email: ambiguous
				extra = append(extra, cu(crmID("005D", i), email(i)))
			}
		}
		base = append(base, u)
	}
	in.CRMUsers = append(base, extra...)

	in.PlatformUsers = make([]PlatformUser, nPlatform)
	in.Mappings = make([]Mapping, 0, nPlatform)
	for i := range nPlatform {
		u := pu(fmt.Sprintf("pu-%07d", i), email(i))
		if i%10 == 5 {
			u.Email = " " + strings.ToUpper(u.Email)
		}
		switch i % 200 {
		case 20, 21:
			u.Status = PlatformSuspended
		case 22:
			u.Kind = KindExtension
		}
		in.PlatformUsers[i] = u
		if i%10 != 9 && i%200 != 13 {
			in.Mappings = append(in.Mappings, mapped(u.ID, crmID("005", i), NormalizeEmail(u.Email), MadeByEmail))
		}
	}
	return in
}

func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{10_000, 50_000, 100_000} {
		b.Run(fmt.Sprintf("platform=%d/crm=100000", n), func(b *testing.B) {
			in := benchInput(n, 100_000)
			b.ReportAllocs()
			var r Result
			cpu := processCPU()
			for b.Loop() {
				r = Reconcile(in)
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(r.Counts.Created), "created")
			b.ReportMetric(float64(r.Counts.Remapped), "remapped")
			b.ReportMetric(float64(r.Counts.Removed), "removed")
		})
	}
}

// BenchmarkReconcileScaling grows both sides together, to show that the rules scale linearly.
func BenchmarkReconcileScaling(b *testing.B) {
	for _, n := range []int{10_000, 50_000, 100_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			in := benchInput(n, n)
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				Reconcile(in)
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestBenchInputExercisesEveryRule keeps the benchmark honest: its tenant must create, remap, remove
// and report conflicts, so the figures measure the rules at work.
func TestBenchInputExercisesEveryRule(t *testing.T) {
	r := Reconcile(benchInput(2000, 3000))
	c := r.Counts
	if c.Created == 0 || c.Remapped == 0 || c.Removed == 0 || c.Conflicts == 0 || c.Errors == 0 || c.Mapped == 0 {
		t.Errorf("benchmark tenant does not exercise every rule: %+v", c)
	}
	checkOneToOne(t, "bench", r.Mappings)
}

// TestReconcileOrderIndependentAtScale shuffles a realistic tenant (no repeated ids, no orphans, so
// the in-place reordering path runs) and expects the very same result as the sorted input gives.
func TestReconcileOrderIndependentAtScale(t *testing.T) {
	in := benchInput(3000, 4000)
	want := Reconcile(in)
	r := rand.New(rand.NewPCG(1, 2))
	shuffled := in
	shuffled.PlatformUsers = shuffle(r, in.PlatformUsers)
	shuffled.CRMUsers = shuffle(r, in.CRMUsers)
	shuffled.Mappings = shuffle(r, in.Mappings)
	if diff := cmp.Diff(want, Reconcile(shuffled)); diff != "" {
		t.Errorf("shuffled input (-sorted +shuffled):\n%s", diff)
	}
	if !slices.IsSortedFunc(want.Mappings, byPlatformUser) {
		t.Errorf("mappings are not sorted by platform user")
	}
}

func TestPermute(t *testing.T) {
	ms := []Mapping{{PlatformUserID: "a"}, {PlatformUserID: "b"}, {PlatformUserID: "c"}, {PlatformUserID: "d"}, {PlatformUserID: "e"}}
	permute(ms, []int32{3, 0, 4, 1, 2})
	var got []string
	for _, m := range ms {
		got = append(got, m.PlatformUserID)
	}
	if diff := cmp.Diff([]string{"d", "a", "e", "b", "c"}, got); diff != "" {
		t.Errorf("permute (-want +got):\n%s", diff)
	}
}

// BenchmarkApply measures one event on the neighbourhood a store hands Apply: a CRM user
// deactivated, remapped to the other active user with the same email.
func BenchmarkApply(b *testing.B) {
	in := sf([]PlatformUser{pu("p1", "ada@x.io"), pu("p2", "Ada@X.io ")},
		[]CRMUser{inactive(cu("005A", "ada@x.io")), cu("005B", "ada@x.io"), cu("005C", "bob@x.io")},
		mapped("p1", "005A", "ada@x.io", MadeByEmail))
	b.ReportAllocs()
	for b.Loop() {
		Apply(in, Event{CRMUserID: "005A"})
	}
}
