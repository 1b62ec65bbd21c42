package sandbox

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMERoutesAnswer hits every route workbench/crmsim/README.md names under "Endpoints" on the
// running sandboxes: none may answer 404 (issue 16: the README named routes that did not exist).
func TestREADMERoutesAnswer(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "## Endpoints")
	end := strings.Index(text, "## Running alone")
	if start < 0 || end < start {
		t.Fatal("README has no Endpoints section")
	}
	section := text[start:end]
	sb, err := Start(Demo(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	sfUser := sb.Salesforce.Users()[0].ID
	contact := sb.HubSpot.Contacts()[0].ID
	owner := sb.HubSpot.Owners()[0].ID
	fill := strings.NewReplacer("vXX.X", "v62.0", "{id}", sfUser, "{orgId}", sb.Salesforce.OrgID(), "{userId}", sfUser,
		"{appId}", "3100456", "{token}", "unknown-token", "{contactId}", contact, "{ownerId}", owner, "…", "/services/data/v62.0")
	routeRE := regexp.MustCompile("`(GET|POST|PATCH|PUT|DELETE) ([^` ]+)")
	paras := strings.Split(section, "\n\n")
	checked := 0
	for _, p := range paras {
		base := ""
		switch {
		case strings.HasPrefix(p, "Salesforce (`sfsim`)"):
			base = sb.SalesforceURL
		case strings.HasPrefix(p, "HubSpot (`hssim`)"):
			base = sb.HubSpotURL
		case strings.HasPrefix(p, "Admin API"):
			both, rest, _ := strings.Cut(p, "sfsim adds")
			sfOnly, hsOnly, _ := strings.Cut(rest, "hssim adds")
			for _, part := range []struct {
				text  string
				bases []string
			}{{both, []string{sb.SalesforceURL, sb.HubSpotURL}}, {sfOnly, []string{sb.SalesforceURL}}, {hsOnly, []string{sb.HubSpotURL}}} {
				for _, m := range routeRE.FindAllStringSubmatch(part.text, -1) {
					for _, b := range part.bases {
						if st := status(t, m[1], b+fill.Replace(m[2])); st == routeMissing || st == http.StatusMethodNotAllowed {
							t.Errorf("admin route %s %s on %s has no handler (%d)", m[1], m[2], b, st)
						}
						checked++
					}
				}
			}
			continue
		default:
			continue
		}
		for _, m := range routeRE.FindAllStringSubmatch(p, -1) {
			if strings.HasPrefix(m[2], "?") {
				continue // a variant of the route before it (e.g. POST ?_HttpMethod=PATCH)
			}
			path := fill.Replace(strings.TrimRight(m[2], ",;"))
			for _, alt := range expand(path) {
				if st := status(t, m[1], base+alt); st == routeMissing || st == http.StatusMethodNotAllowed {
					t.Errorf("README route %s %s answers 404", m[1], alt)
				}
				checked++
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d routes checked: the README parser lost the Endpoints section", checked)
	}
}

// expand turns {A|B} alternatives into every path.
func expand(p string) []string {
	i := strings.Index(p, "{")
	j := strings.Index(p, "}")
	if i < 0 || j < i || !strings.Contains(p[i:j], "|") {
		return []string{p}
	}
	var out []string
	for _, alt := range strings.Split(p[i+1:j], "|") {
		out = append(out, expand(p[:i]+alt+p[j+1:])...)
	}
	return out
}

// routeMissing is what status returns for a 404 of the router (not of a missing record or token).
const routeMissing = -404

// status is the status of the request, or routeMissing when no route matched: Go's mux answer,
// sfsim's NOT_FOUND "requested resource does not exist" and hssim's catch-all "Resource not found".
func status(t *testing.T, method, u string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && (strings.Contains(string(body), "404 page not found") ||
		strings.Contains(string(body), "The requested resource does not exist") || strings.Contains(string(body), `"Resource not found"`)) {
		return routeMissing
	}
	return resp.StatusCode
}
