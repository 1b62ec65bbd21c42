package notifier_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// TestReportEmailInTheTenantsTimeZone: the running notifier renders a report in the time zone of
// the tenant's settings, with the UTC time on hover, and links Salesforce users to their page in
// the tenant's org (issue 16).
func TestReportEmailInTheTenantsTimeZone(t *testing.T) {
	h := startReportsFor(t, smtpsink.Config{}, &tenant.Tenant{ID: "acme", Name: "Acme", ReportsEnabled: true,
		ReportRecipients: []string{"admin@acme.example"}, TimeZone: "Asia/Tokyo",
		Salesforce: &tenant.SFConfig{OrgID: "00D5g000004XyZaEAK", InstanceURL: "https://acme.my.salesforce.com",
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "acme"}}}, nil)
	h.publish("run-tz", "report:run-tz", false, nil)
	harness.Eventually(t, 30*time.Second, "the report was sent", func() bool { return len(h.sink.Messages()) == 1 })
	parts := mimeParts(t, h.sink.Messages()[0].Data)
	html, text := parts["text/html"], parts["text/plain"]
	if !strings.Contains(html, " JST</time>") || !strings.Contains(html, ` UTC">`) {
		t.Errorf("HTML part has no time in JST with UTC in its title:\n%s", html)
	}
	if want := `<a href="https://acme.my.salesforce.com/lightning/r/User/005000000000001AAA/view"`; !strings.Contains(html, want) {
		t.Errorf("HTML part lacks %s", want)
	}
	if !strings.Contains(text, " JST (") || !strings.Contains(text, " UTC)") {
		t.Errorf("text part has no time in JST with UTC beside it:\n%s", text)
	}
}

// mimeParts returns the decoded text parts of an email by content type.
func mimeParts(t *testing.T, data []byte) map[string]string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(ct string, header func(string) string, body io.Reader)
	walk = func(ct string, header func(string) string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get, p)
			}
		}
		if strings.EqualFold(header("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		out[mt] = string(b)
	}
	walk(msg.Header.Get("Content-Type"), msg.Header.Get, msg.Body)
	return out
}
