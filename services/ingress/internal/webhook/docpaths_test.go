package webhook

import (
	"os"
	"regexp"
	"testing"
)

// TestDocumentedIngressPaths: the ingress URLs the sandbox README and the crmsim command show
// (where Outbound Messages and webhooks go) are this handler's routes. They named
// /v1/salesforce/outbound and /v1/hubspot/webhooks, which answer 404 (issue 16).
func TestDocumentedIngressPaths(t *testing.T) {
	re := regexp.MustCompile(`(?:ingressURL \+ "|127\.0\.0\.1:8080)(/[a-z0-9/_-]+)`)
	routes := map[string]bool{SalesforcePath: true, HubSpotPath: true}
	n := 0
	for _, f := range []string{"../../../../workbench/crmsim/README.md", "../../../../workbench/crmsim/cmd/crmsim/main.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if !routes[m[1]] {
				t.Errorf("%s names ingress path %s, which ingress does not serve (%s, %s)", f, m[1], SalesforcePath, HubSpotPath)
			}
		}
	}
	if n < 4 {
		t.Fatalf("found only %d ingress URLs in the docs; the pattern lost them", n)
	}
}
