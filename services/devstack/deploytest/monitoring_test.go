package deploytest

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var (
	metricRE  = regexp.MustCompile(`\b(ownersync_[a-z0-9_]+|http_server_request_duration_seconds[a-z_]*)`)
	literalRE = regexp.MustCompile(`"(ownersync_[a-z0-9_]+)"`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// externalMetrics are registered by a library the code wires in, not by a name of ours: the name,
// and the Go source that must show the wiring.
var externalMetrics = map[string][2]string{
	// otelhttp's server middleware records http.server.request.duration.
	"http_server_request_duration_seconds": {"libs/echoserver/echoserver.go", "otelhttp.NewMiddleware"},
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestRulesAndDashboards: every metric the alerting rules and the Grafana dashboards query is one
// the code registers, every rule has a runbook_url whose anchor is a heading of
// docs/operations.md, and the dashboards are valid JSON with a uid and a title. (promtool checks
// the rules' syntax: scripts/check-monitoring.sh.)
func TestRulesAndDashboards(t *testing.T) {
	registered := registeredMetrics(t)
	sections := runbookSections(t)

	rules, err := filepath.Glob(filepath.Join(root, "deployments/prometheus/rules/*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	alerts := 0
	for _, f := range rules {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				alerts++
				checkMetrics(t, r.Alert, r.Expr, registered)
				u := r.Annotations["runbook_url"]
				_, anchor, ok := strings.Cut(u, "docs/operations.md#")
				section, found := sections[anchor]
				if !ok || !found {
					t.Errorf("alert %s: runbook_url %q is not a heading of docs/operations.md", r.Alert, u)
					continue
				}
				// The section is the alert's: it names it and the metrics its expression reads.
				if !strings.Contains(section, r.Alert) {
					t.Errorf("alert %s: its runbook section #%s does not name it", r.Alert, anchor)
				}
				for _, m := range metricRE.FindAllString(r.Expr, -1) {
					if !strings.Contains(section, m) {
						t.Errorf("alert %s: its runbook section #%s does not mention %s", r.Alert, anchor, m)
					}
				}
			}
		}
	}
	if alerts < 7 {
		t.Errorf("%d alerting rules, want at least the 7 of the runbook", alerts)
	}

	boards, err := filepath.Glob(filepath.Join(root, "deployments/grafana/dashboards/*.json"))
	if err != nil || len(boards) < 5 {
		t.Fatalf("want the overview and one dashboard per service, found %v", boards)
	}
	for _, f := range boards {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Errorf("%s: uid %q, title %q, %d panels", f, d.UID, d.Title, len(d.Panels))
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				checkMetrics(t, filepath.Base(f)+": "+p.Title, tg.Expr, registered)
			}
		}
	}
}

func checkMetrics(t *testing.T, where, expr string, registered map[string]bool) {
	t.Helper()
	names := metricRE.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: no ownersync metric in %q", where, expr)
	}
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suf)
		}
		if !registered[base] && !registered[n] {
			t.Errorf("%s: metric %s is not registered by the code", where, n)
		}
	}
}

// registeredMetrics are the metric names in the non-test Go sources of libs and services, plus the
// external ones whose wiring is present.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, dir := range []string{"libs", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range literalRE.FindAllSubmatch(b, -1) {
				out[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, w := range externalMetrics {
		b, err := os.ReadFile(filepath.Join(root, w[0]))
		if err == nil && strings.Contains(string(b), w[1]) {
			out[name] = true
		}
	}
	return out
}

// runbookSections are docs/operations.md's sections by the GitHub anchor of their heading: the
// text from the heading to the next one.
func runbookSections(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	out := map[string]string{}
	idx := headingRE.FindAllStringSubmatchIndex(doc, -1)
	for i, m := range idx {
		end := len(doc)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out[anchor(doc[m[2]:m[3]])] = doc[m[1]:end]
	}
	return out
}

// anchor is GitHub's heading slug: lower case, spaces to dashes, punctuation dropped.
func anchor(h string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			sb.WriteByte('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			sb.WriteRune(r)
		}
	}
	return sb.String()
}
