package soap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// differentialSeeds are the test payloads plus inputs that exercise the scanner's rules one at a
// time: prefixes and default namespaces, entities and character references, CDATA, comments,
// processing instructions, carriage returns, and the refusals.
func differentialSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, dir := range []string{testdata, filepath.Join(testdata, "bad")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, b)
		}
	}
	base := read(t, "contact_and_queue_lead.xml")
	edits := [][2]string{
		{"ada@example.com", "ada&amp;&lt;&gt;&apos;&quot;&#65;&#x42;&#xD800;@example.com"},
		{"ada@example.com", "<![CDATA[ada<&>]]>@example.com"},
		{"ada@example.com", "ada<!-- c -->@example.com<?pi data?>"},
		{"ada@example.com", "ada\r\n@\rexample.com"},
		{"ada@example.com", "ada&#0;"},
		{"ada@example.com", "ada&bogus;"},
		{"ada@example.com", "ada]]>"},
		{"ada@example.com", "ada\x01"},
		{"ada@example.com", "adä\uFFFE"},
		{"<sf:Email>", "<sf:Email xsi:nil='true' x = \"a]]>\">"},
		{"<sf:Email>", "<sf:Email xsi:nil=\"1\"/><sf:X>"},
		{"soapenv:", "s:"},
		{"xmlns:sf=", "xmlns:sf = "},
		{"xsi:type=\"sf:Contact\"", "xsi:type=\" sf:Contact \""},
		{"xsi:type=\"sf:Contact\"", "xsi:type=\"xml:Contact\" xmlns:xml=\"urn:sobject.enterprise.soap.sforce.com\""},
		{"</soapenv:Envelope>", "</soapenv:Envelope >"},
		{"</soapenv:Envelope>", "</soapenv:Body>"},
		{"<soapenv:Body>", "<soapenv:Body><!DOCTYPE x>"},
		{"<soapenv:Body>", "<soapenv:Body><é/>"},
		{"<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<?xml version=\"1.1\"?>"},
		{"<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<?xml encoding='utf-8'?><!---->"},
	}
	for _, e := range edits {
		seeds = append(seeds, bytes.Replace(base, []byte(e[0]), []byte(e[1]), 1))
	}
	return seeds
}

// checkDifferential asserts that the fast scanner and the encoding/xml reference agree on body:
// whatever the fast path accepts the reference accepts with the same message, whatever the
// reference accepts the fast path accepts too unless the body is outside its subset, and Parse
// returns exactly what the reference returns.
func checkDifferential(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := parseReference(body)
	fast, fastErr := parseFast(body)
	switch {
	case fastErr == nil && wantErr != nil:
		t.Fatalf("fast parser accepted what the reference refuses (%v): %q", wantErr, body)
	case fastErr == nil:
		if diff := cmp.Diff(want, fast); diff != "" {
			t.Fatalf("fast parser disagrees with the reference (-reference +fast):\n%s\nbody: %q", diff, body)
		}
	case wantErr == nil && !errors.Is(fastErr, errUnsupported):
		t.Fatalf("fast parser refused (%v) what the reference accepts: %q", fastErr, body)
	}
	got, err := Parse(body)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Parse disagrees with the reference (-reference +Parse):\n%s", diff)
	}
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("Parse error %v, reference error %v", err, wantErr)
	}
}

func TestParseDifferentialSeeds(t *testing.T) {
	accepted := 0
	for _, b := range differentialSeeds(t) {
		checkDifferential(t, b)
		if _, err := parseFast(b); err == nil {
			accepted++
		}
	}
	// The fast path must actually carry real messages, not hand everything to the reference.
	if accepted < 8 {
		t.Fatalf("fast parser accepted only %d seeds", accepted)
	}
}

// FuzzParseDifferential checks the fast scanner against the encoding/xml reference parser.
func FuzzParseDifferential(f *testing.F) {
	for _, b := range differentialSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkDifferential)
}

func BenchmarkParseReference(b *testing.B) {
	for _, name := range []string{"contact_and_queue_lead.xml", "contacts_100.xml"} {
		body := read(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := parseReference(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
