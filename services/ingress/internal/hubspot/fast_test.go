package hubspot

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func differentialSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	entries, err := os.ReadDir(testdata)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), "signature") {
			seeds = append(seeds, read(t, e.Name()))
		}
	}
	one := read(t, "owner_change_single.json")
	for _, e := range [][2]string{
		{`"propertyValue":"`, `"propertyValue":null,"x":"`},
		{`"propertyValue":"`, `"PropertyValue":"`},
		{`"propertyValue":"`, `"propertyValue": "a\u00e9\"`},
		{`"portalId":`, `"portalId":"12",`},
		{`"portalId":`, `"portalId":-0,"eventId":`},
		{`"portalId":`, `"portalId":01,"x":`},
		{`"portalId":`, `"portalId":1e3,"x":`},
		{`"portalId":`, `"attemptNumber":1.0,"portalId":`},
		{`"portalId":`, `"attemptNumber":null,"isSensitive":true,"mergedObjectIds":[1,2],"portalId":`},
		{`"portalId":`, `"isSensitive":nul,"portalId":`},
		{`[`, `[ `},
		{`}]`, `} , {"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation"}]`},
		{`}]`, `},]`},
		{`}]`, `}]x`},
	} {
		seeds = append(seeds, bytes.Replace(one, []byte(e[0]), []byte(e[1]), 1))
	}
	return append(seeds, []byte(`[]`), []byte(`[{}]`), []byte(`{}`))
}

// checkDifferential asserts that what the fast decoder accepts encoding/json accepts with the same
// events, and that Decode returns exactly what the reference returns.
func checkDifferential(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := decodeReference(body)
	if fast, ok := decodeFast(body); ok {
		if wantErr != nil {
			t.Fatalf("fast decoder accepted what the reference refuses (%v): %q", wantErr, body)
		}
		if diff := cmp.Diff(want, fast); diff != "" {
			t.Fatalf("fast decoder disagrees (-reference +fast):\n%s\nbody: %q", diff, body)
		}
	}
	got, err := Decode(body)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Decode disagrees with the reference (-reference +Decode):\n%s", diff)
	}
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("Decode error %v, reference error %v", err, wantErr)
	}
}

func TestDecodeDifferentialSeeds(t *testing.T) {
	accepted := 0
	for _, b := range differentialSeeds(t) {
		checkDifferential(t, b)
		if _, ok := decodeFast(b); ok {
			accepted++
		}
	}
	// The fast path must carry HubSpot's real batches, not hand everything to the reference.
	for _, name := range []string{"owner_change_single.json", "owner_changes_100.json", "owner_changes_reference.json"} {
		if _, ok := decodeFast(read(t, name)); !ok {
			t.Errorf("fast decoder refused %s", name)
		}
	}
	if accepted < 6 {
		t.Errorf("fast decoder accepted only %d seeds", accepted)
	}
}

// FuzzDecodeDifferential checks the fast decoder against encoding/json.
func FuzzDecodeDifferential(f *testing.F) {
	for _, b := range differentialSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkDifferential)
}

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"owner_change_single.json", "owner_changes_100.json"} {
		body := read(b, name)
		for _, impl := range []struct {
			name string
			fn   func([]byte) ([]Event, error)
		}{{"Decode", Decode}, {"reference", decodeReference}} {
			b.Run(name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := impl.fn(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
