package devstack_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/devstack/devstack"
)

// problemCounts are one provider's errors and conflicts as one place shows them.
type problemCounts struct{ Errors, Conflicts int }

// TestCountsAgreeEverywhere is issue 16's count-consistency test: after one Sync Users run of the
// demo tenant (sandboxes, FerretDB, NATS, mapper, writer, notifier, SMTP sink), the run's counts,
// the overview (API and console), the Errors list (API and console page) and the report email
// (subject, per-provider counts and the heading of its error list) say the same number of errors
// and of conflicts for each provider — one definition (mapping.CountProblems) used everywhere.
func TestCountsAgreeEverywhere(t *testing.T) {
	s := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msgs, err := s.SMTP.Wait(ctx, 1) // the demo's first run
	if err != nil {
		t.Fatalf("no report email: %v", err)
	}
	subject, text := textPart(t, msgs[0])

	var runs struct {
		Items []struct {
			ID        string `json:"id"`
			Providers []struct {
				Provider  string `json:"provider"`
				Errors    int    `json:"errors"`
				Conflicts int    `json:"conflicts"`
			} `json:"providers"`
		} `json:"items"`
	}
	getJSON(t, s, "/v1/tenants/acme/sync-runs", &runs)
	if len(runs.Items) != 1 || len(runs.Items[0].Providers) != 2 {
		t.Fatalf("want one run of two providers, got %+v", runs)
	}
	run := map[string]problemCounts{}
	var total problemCounts
	for _, p := range runs.Items[0].Providers {
		run[p.Provider] = problemCounts{p.Errors, p.Conflicts}
		total.Errors += p.Errors
		total.Conflicts += p.Conflicts
	}
	if total.Errors == 0 || total.Conflicts == 0 {
		t.Fatalf("the demo run should have errors and conflicts to compare: %+v", run)
	}

	var ov struct {
		Providers []struct {
			Provider  string `json:"provider"`
			Errors    int    `json:"errors"`
			Conflicts int    `json:"conflicts"`
		} `json:"providers"`
	}
	getJSON(t, s, "/v1/tenants/acme/users/overview", &ov)
	for _, p := range ov.Providers {
		compare(t, "API overview", p.Provider, run[p.Provider], problemCounts{p.Errors, p.Conflicts})
	}

	for provider := range run {
		var list struct {
			Items []struct {
				Kind           string `json:"kind"`
				Code           string `json:"code"`
				Name           string `json:"name"`
				PlatformUserID string `json:"platform_user_id"`
				CRMUserID      string `json:"crm_user_id"`
			} `json:"items"`
		}
		getJSON(t, s, "/v1/tenants/acme/errors?provider="+provider, &list)
		var got problemCounts
		for _, p := range list.Items {
			// Stored with the rules' name of the user (mongostore), every user problem names its user.
			if (p.PlatformUserID != "" || p.CRMUserID != "") && p.Name == "" {
				t.Errorf("API /errors: %s problem of %s%s has no name", p.Code, p.PlatformUserID, p.CRMUserID)
			}
			switch p.Kind {
			case "error":
				got.Errors++
			case "conflict":
				got.Conflicts++
			default:
				t.Errorf("API /errors: problem of kind %q", p.Kind)
			}
		}
		compare(t, "API errors list", provider, run[provider], got)
	}

	con := consoleSession(t, s)
	overview := con.get("/admin/t/acme/")
	for provider := range run {
		compare(t, "console overview", provider, run[provider], problemCounts{
			Errors:    intOf(t, overview, `id="count-errors-`+provider+`"[^>]*>(\d+)<`),
			Conflicts: intOf(t, overview, `id="count-conflicts-`+provider+`"[^>]*>(\d+)<`),
		})
		page := con.get("/admin/t/acme/p/" + provider + "/errors")
		compare(t, "console Errors page", provider, run[provider], pageCounts(t, page))
	}

	// The email: the subject's totals, then each provider's counts and its error list's heading.
	wantSubject := "completed with " + plural(total.Errors, "error") + " and " + plural(total.Conflicts, "conflict")
	if !strings.Contains(subject, wantSubject) {
		t.Errorf("email subject %q lacks %q", subject, wantSubject)
	}
	for provider, want := range run {
		name := map[string]string{"salesforce": "Salesforce", "hubspot": "HubSpot"}[provider]
		sec := emailSection(t, text, name)
		compare(t, "email counts", provider, want, problemCounts{
			Errors:    intOf(t, sec, `(?m)^Errors\s+(\d+)`),
			Conflicts: intOf(t, sec, `(?m)^Conflicts\s+(\d+)`),
		})
		compare(t, "email error list heading", provider, want, problemCounts{
			Errors:    intOf(t, sec, `(?m)^Errors \((\d+)\) and conflicts \(\d+\):`),
			Conflicts: intOf(t, sec, `(?m)^Errors \(\d+\) and conflicts \((\d+)\):`),
		})
		// The email's link to every error opens the console's Errors page with the same counts.
		m := regexp.MustCompile(`(?m)^Every ` + name + ` error: (\S+)`).FindStringSubmatch(sec)
		if m == nil {
			t.Errorf("email: no link to every %s error", name)
			continue
		}
		u, err := url.Parse(m[1])
		if err != nil {
			t.Fatal(err)
		}
		compare(t, "console page of the email's link", provider, want, pageCounts(t, con.get(u.RequestURI())))
	}

	// Every link of the email to the admin site opens a console page for a signed-in admin (not
	// the JSON API, which a browser cannot call without a token).
	links := regexp.MustCompile(regexp.QuoteMeta(s.URLs["mapper"])+`(/[^\s"<>]*)`).FindAllStringSubmatch(text, -1)
	if len(links) == 0 {
		t.Errorf("the email has no link to the admin site %s", s.URLs["mapper"])
	}
	for _, l := range links {
		if !strings.HasPrefix(l[1], "/admin/") {
			t.Errorf("email links to %s, not a console page", l[1])
			continue
		}
		if page := con.get(l[1]); !strings.Contains(page, `<main id="main"`) {
			t.Errorf("email link %s does not open a console page", l[1])
		}
	}
}

func compare(t *testing.T, where, provider string, want, got problemCounts) {
	t.Helper()
	if got != want {
		t.Errorf("%s, %s: %d errors and %d conflicts; the run has %d and %d", where, provider, got.Errors, got.Conflicts, want.Errors, want.Conflicts)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func intOf(t *testing.T, s, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		t.Errorf("no match for %s", pattern)
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pageCounts reads the counts in the heading of a console Errors page.
func pageCounts(t *testing.T, page string) problemCounts {
	t.Helper()
	return problemCounts{
		Errors:    intOf(t, page, `id="problem-counts"[^>]*data-errors="(\d+)"`),
		Conflicts: intOf(t, page, `id="problem-counts"[^>]*data-conflicts="(\d+)"`),
	}
}

// emailSection returns the text part's section of one provider.
func emailSection(t *testing.T, text, name string) string {
	t.Helper()
	i := strings.Index(text, "== "+name+" ==")
	if i < 0 {
		t.Fatalf("email has no %s section:\n%s", name, text)
	}
	sec := text[i+len(name)+6:]
	if j := strings.Index(sec, "\n== "); j >= 0 {
		sec = sec[:j]
	}
	return sec
}

type console struct {
	t  *testing.T
	s  *devstack.Stack
	hc *http.Client
}

// consoleSession signs in to the demo's console with the operator token.
func consoleSession(t *testing.T, s *devstack.Stack) *console {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &console{t: t, s: s, hc: &http.Client{Jar: jar}}
	m := csrfInput.FindStringSubmatch(c.get("/admin/signin"))
	if m == nil {
		t.Fatal("no csrf field on the sign-in form")
	}
	resp, err := c.hc.PostForm(s.URLs["mapper"]+"/admin/signin", url.Values{"csrf": {m[1]}, "token": {devstack.DevOperatorToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

func (c *console) get(path string) string {
	c.t.Helper()
	resp, err := c.hc.Get(c.s.URLs["mapper"] + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return string(b)
}
