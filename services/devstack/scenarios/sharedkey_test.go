package scenarios

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
)

var (
	formCSRF   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	shownKeyRE = regexp.MustCompile(`id="om-url" readonly value="[^"]*\?key=([A-Za-z0-9_-]+)"`)
)

// consoleClient is the admin console over plain HTTP with a cookie jar (the browser tests in
// services/mapper/consoletest drive the same pages in Chromium).
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
	// client, when set, is sent as X-Forwarded-For (the address behind a trusted proxy);
	// header is the last answer's header.
	client string
	header http.Header
}

func (c *consoleClient) do(method, path string, form url.Values) (int, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.client != "" {
		req.Header.Set("X-Forwarded-For", c.client)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	c.header = res.Header
	b, _ := io.ReadAll(res.Body)
	if m := formCSRF.FindStringSubmatch(string(b)); m != nil {
		c.csrf = m[1]
	}
	return res.StatusCode, string(b)
}

func signInConsole(t *testing.T, base, token string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &consoleClient{t: t, base: base, hc: &http.Client{Jar: jar}}
	c.do("GET", "/admin/signin", nil)
	if st, body := c.do("POST", "/admin/signin", url.Values{"csrf": {c.csrf}, "token": {token}}); st != http.StatusOK {
		t.Fatalf("console sign-in: %d %s", st, body)
	}
	return c
}

// TestOutboundMessageKeyRotation is issue 13 item 3 end to end on the running dev stack: the
// console's Rotate key (mapper) shows a key once; after a second rotation the real ingress accepts
// the sandbox org's Outbound Messages with the previous key during the overlap and with the new
// key, and refuses a wrong key with 403 (the org retries it, as Salesforce does).
func TestOutboundMessageKeyRotation(t *testing.T) {
	e := start(t)
	c := signInConsole(t, e.mapperURL, e.token)
	page := "/admin/t/" + tenantID + "/connections"
	if _, body := c.do("GET", page, nil); !strings.Contains(body, `id="sf-key-missing"`) {
		t.Fatalf("the demo's keyless Salesforce connection is not flagged:\n%s", body)
	}
	rotate := func() (string, string) {
		t.Helper()
		c.do("GET", page, nil)
		st, body := c.do("POST", page+"/salesforce/rotate-key", url.Values{"csrf": {c.csrf}})
		m := shownKeyRE.FindStringSubmatch(body)
		if st != http.StatusOK || m == nil {
			t.Fatalf("rotate key: %d\n%s", st, body)
		}
		return m[1], body
	}
	oldKey, _ := rotate()
	newKey, body := rotate()
	if newKey == oldKey || !strings.Contains(body, "The previous key is accepted until") {
		t.Fatalf("second rotation: %q after %q\n%s", newKey, oldKey, body)
	}
	if _, body := c.do("GET", page, nil); strings.Contains(body, oldKey) || strings.Contains(body, newKey) {
		t.Fatal("a later view of the Connections page shows a key")
	}

	m, ok := e.mapping("salesforce", "pu-grace-hopper")
	if !ok {
		t.Fatal("grace hopper is not mapped")
	}
	endpoint := e.s.URLs["ingress"] + "/webhooks/salesforce"
	send := func(key, name string, wantStatus int) {
		t.Helper()
		e.sf.SetOutboundURL(endpoint, key)
		if _, err := e.sf.UpdateUser(m.CRMUserID, func(u *sfsim.User) { u.FirstName = name }); err != nil {
			t.Fatal(err)
		}
		e.sf.FlushOutbound()
		harness.EventuallyState(t, 20*time.Second, fmt.Sprintf("a delivery with key %q answered %d", key[:4], wantStatus), func() (bool, string) {
			var seen []string
			for _, d := range e.sf.Deliveries() {
				if strings.HasSuffix(d.URL, "?key="+url.QueryEscape(key)) {
					if d.Status == wantStatus && d.Acked == (wantStatus == http.StatusOK) {
						return true, ""
					}
					seen = append(seen, fmt.Sprint(d.Status))
				}
			}
			return false, fmt.Sprintf("answers %v", seen)
		})
	}
	send(oldKey, "Grace-old-key", http.StatusOK)                   // the previous key, during the overlap
	send("wrong-"+newKey, "Grace-wrong-key", http.StatusForbidden) // a wrong key
	send(newKey, "Grace-new-key", http.StatusOK)                   // the current key; the refused message is redelivered with it
}
