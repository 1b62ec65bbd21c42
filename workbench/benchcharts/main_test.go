package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChartsFromBenchOutput draws every chart from sample outputs of the three tools and prints
// Markdown that links each SVG; each SVG names its subject, the machine and the load average.
func TestChartsFromBenchOutput(t *testing.T) {
	out := t.TempDir()
	var md strings.Builder
	if err := run([]string{"-in", "testdata", "-out", out, "-md", "benchmarks"}, &md); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ingress-rps.svg", "ingress-p99.svg", "syncusers-time.svg", "syncusers-commands.svg", "writer-bound.svg"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		svg := string(b)
		if !strings.Contains(svg, "<svg") || !strings.Contains(svg, "load") || !strings.Contains(svg, "cores") {
			t.Errorf("%s: not an SVG naming the machine and load", f)
		}
		if !strings.Contains(md.String(), "(benchmarks/"+f+")") {
			t.Errorf("the Markdown does not show %s:\n%s", f, md.String())
		}
	}
	for _, want := range []string{"bare-hubspot", "goal (0.9)", "salesforce-one429"} {
		found := false
		for _, f := range []string{"ingress-rps.svg", "writer-bound.svg"} {
			b, _ := os.ReadFile(filepath.Join(out, f))
			found = found || strings.Contains(string(b), want)
		}
		if !found {
			t.Errorf("no chart shows %q", want)
		}
	}
}
