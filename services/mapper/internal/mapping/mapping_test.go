package mapping

import (
	"testing"
)

func TestNormalizeAllAgreesWithNormalizeEmail(t *testing.T) {
	emails := []string{"a@x.io", " Ada@Example.COM\t", "", "  ", "ÉLODIE@x.fr", "K\u212aelvin@x.io", "mixed@X.io", "bob@x.io "}
	got := normalizeAll(len(emails), func(i int) string { return emails[i] })
	for i, e := range emails {
		if want := NormalizeEmail(e); got[i] != want {
			t.Errorf("normalizeAll(%q) = %q, want %q", e, got[i], want)
		}
	}
}

func FuzzNormalizeAll(f *testing.F) {
	f.Add("Ada@Example.COM", " b@x.io ")
	f.Add("ÉLODIE@x.fr", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		got := normalizeAll(2, func(i int) string { return []string{a, b}[i] })
		if got[0] != NormalizeEmail(a) || got[1] != NormalizeEmail(b) {
			t.Errorf("normalizeAll(%q, %q) = %q, want %q, %q", a, b, got, NormalizeEmail(a), NormalizeEmail(b))
		}
	})
}
