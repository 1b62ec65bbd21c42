package webhook

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

// occurred returns the OccurredAt of the one stored owner change.
func occurredOfOnly(t *testing.T, e *env) time.Time {
	t.Helper()
	got := e.pub.stored()
	if len(got) == 0 {
		t.Fatal("nothing published")
	}
	return got[0].Msg.(*ownersyncv1.CrmOwnerChanged).GetMeta().GetOccurredAt().AsTime()
}

// TestFutureSourceTimesAreClamped covers issue 13 item 4: a source time later than receipt plus
// the allowed skew would make every later real change look stale, so it is clamped to receipt +
// skew, counted and logged — for Salesforce and HubSpot alike; a time within the skew is kept.
func TestFutureSourceTimesAreClamped(t *testing.T) {
	sfBody := func(lastModified string) []byte {
		b := readFile(t, "salesforce/prefixes_15char_nil.xml")
		return bytes.Replace(b, []byte("2026-01-01T00:00:05.000Z"), []byte(lastModified), 1)
	}
	hsBody := func(occurred time.Time) []byte {
		b := readFile(t, "hubspot/owner_change_single.json")
		return bytes.Replace(b, []byte("1767225600123"), []byte(strings.TrimSpace(itoa(occurred.UnixMilli()))), 1)
	}
	tests := []struct {
		name     string
		provider string
		skew     time.Duration
		post     func(e *env) int
		want     time.Time
		clamped  float64
	}{
		{name: "salesforce LastModifiedDate in 2099", provider: "salesforce",
			post: func(e *env) int {
				s, _, _ := e.post(t, SalesforcePath, "text/xml", sfBody("2099-01-01T00:00:00.000Z"), nil)
				return s
			},
			want: testNow.Add(DefaultMaxSourceSkew), clamped: 1},
		{name: "salesforce within the skew is kept", provider: "salesforce",
			post: func(e *env) int {
				s, _, _ := e.post(t, SalesforcePath, "text/xml", sfBody(testNow.Add(4*time.Minute).Format(time.RFC3339Nano)), nil)
				return s
			},
			want: testNow.Add(4 * time.Minute)},
		{name: "salesforce with a configured skew of 1 minute", provider: "salesforce", skew: time.Minute,
			post: func(e *env) int {
				s, _, _ := e.post(t, SalesforcePath, "text/xml", sfBody(testNow.Add(4*time.Minute).Format(time.RFC3339Nano)), nil)
				return s
			},
			want: testNow.Add(time.Minute), clamped: 1},
		{name: "hubspot occurredAt in 2099", provider: "hubspot",
			post: func(e *env) int {
				b := hsBody(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
				s, _, _ := e.post(t, HubSpotPath, "application/json", b, signV3("", b, testNow))
				return s
			},
			want: testNow.Add(DefaultMaxSourceSkew), clamped: 1},
		{name: "hubspot in the past is kept", provider: "hubspot",
			post: func(e *env) int {
				b := hsBody(testNow.Add(-time.Hour))
				s, _, _ := e.post(t, HubSpotPath, "application/json", b, signV3("", b, testNow))
				return s
			},
			want: testNow.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newEnv(t, func(c *Config) {
				c.MaxSourceSkew = tt.skew
				c.Logger = newTextLogger(&logs)
			})
			if status := tt.post(e); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if got := occurredOfOnly(t, e); !got.Equal(tt.want) {
				t.Errorf("occurred_at = %s, want %s", got, tt.want)
			}
			key := "ownersync.ingress.source_time_clamped{provider=" + tt.provider + "}"
			if got := e.meter.get(key); got != tt.clamped {
				t.Errorf("%s = %v, want %v", key, got, tt.clamped)
			}
			if logged := strings.Contains(logs.String(), "source time in the future"); logged != (tt.clamped > 0) {
				t.Errorf("clamp logged = %v, want %v:\n%s", logged, tt.clamped > 0, logs.String())
			}
		})
	}
}

// TestJunkGrowsNoLabelsAndFewLogLines covers issue 13 item 12 in the handlers: metric label values
// come from a fixed set (an attacker's xsi:type or subscription type is "other"), and the log
// lines of junk requests are rate-limited per class.
func TestJunkGrowsNoLabelsAndFewLogLines(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(c *Config) { c.Logger = newTextLogger(&logs) })
	ref := readFile(t, "salesforce/account_ignored.xml")
	for i := range 50 {
		b := bytes.Replace(ref, []byte("sf:Account"), []byte("sf:Junk"+itoa(int64(i))), 1)
		if status, _, resp := e.post(t, SalesforcePath, "text/xml", b, nil); status != http.StatusOK {
			t.Fatalf("status %d: %s", status, resp)
		}
	}
	hs := readFile(t, "hubspot/owner_change_single.json")
	for i := range 50 {
		b := bytes.Replace(hs, []byte("contact.propertyChange"), []byte("junk.type"+itoa(int64(i))), 1)
		if status, _, resp := e.post(t, HubSpotPath, "application/json", b, signV3("", b, testNow)); status != http.StatusOK {
			t.Fatalf("status %d: %s", status, resp)
		}
	}
	if got := e.meter.get("ownersync.ingress.events.ignored{kind=object_other,provider=salesforce}"); got != 50 {
		t.Errorf("salesforce object_other = %v, want 50", got)
	}
	if got := e.meter.get("ownersync.ingress.events.ignored{kind=other,provider=hubspot}"); got != 50 {
		t.Errorf("hubspot other = %v, want 50", got)
	}
	e.meter.mu.Lock()
	for key := range e.meter.sums {
		if strings.Contains(strings.ToLower(key), "junk") {
			t.Errorf("attacker-chosen label value: %s", key)
		}
	}
	e.meter.mu.Unlock()

	// 300 junk requests of three classes: a few lines per class, not one per request.
	logs.Reset()
	for i := range 100 {
		e.post(t, SalesforcePath, "text/xml", nil, nil)
		e.post(t, HubSpotPath, "application/json", []byte("[{"+itoa(int64(i))), nil)
		e.post(t, HubSpotPath, "text/plain", []byte("x"), nil)
	}
	if n := strings.Count(logs.String(), "\n"); n > 3*LogBurst+3 {
		t.Errorf("300 junk requests logged %d lines, want at most %d:\n%s", n, 3*LogBurst+3, logs.String())
	}
	if !strings.Contains(logs.String(), "webhook rejected") {
		t.Errorf("no rejection logged at all:\n%s", logs.String())
	}
}

// TestDisabledProviderPublishesNothing covers issue 13 item 14 (ingress part): a webhook for a
// provider the tenant has turned off is verified, acknowledged (so the CRM stops retrying),
// counted, and publishes nothing.
func TestDisabledProviderPublishesNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.acme.Salesforce.Enabled = false
	e.acme.HubSpot.Enabled = false
	status, _, body := e.post(t, SalesforcePath, "text/xml", readFile(t, "salesforce/contact_and_queue_lead.xml"), nil)
	if status != http.StatusOK || !bytes.Contains(body, []byte("<Ack>true</Ack>")) {
		t.Errorf("salesforce: status %d: %s", status, body)
	}
	hs := readFile(t, "hubspot/owner_changes_reference.json")
	if status, _, body := e.post(t, HubSpotPath, "application/json", hs, signV3("", hs, testNow)); status != http.StatusOK {
		t.Errorf("hubspot: status %d: %s", status, body)
	}
	if n := len(e.pub.stored()); n != 0 {
		t.Errorf("%d events published for disabled providers", n)
	}
	for key, want := range map[string]float64{
		"ownersync.ingress.events.ignored{kind=provider_disabled,provider=salesforce}": 2,
		"ownersync.ingress.events.ignored{kind=provider_disabled,provider=hubspot}":    2,
	} {
		if got := e.meter.get(key); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	// Still verified: a bad signature is refused, not acknowledged.
	if status, _, _ := e.post(t, HubSpotPath, "application/json", hs, signV3("", []byte("other"), testNow)); status != http.StatusUnauthorized {
		t.Errorf("bad signature for a disabled provider: status %d, want 401", status)
	}
}

// TestSourceConflictPublishesNothing covers issue 13 item 2 in the handlers: a source that two
// tenants claim is answered 503 (the CRM retries for 24 hours, so nothing is lost once an operator
// resolves it) and nothing is published to either tenant.
func TestSourceConflictPublishesNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.ten.err = fmt.Errorf("salesforce org %s claimed by tenants acme, evil: %w", testOrg, tenant.ErrSourceConflict)
	status, _, body := e.post(t, SalesforcePath, "text/xml", readFile(t, "salesforce/contact_and_queue_lead.xml"), nil)
	if status != http.StatusServiceUnavailable {
		t.Errorf("salesforce: status %d: %s", status, body)
	}
	hs := readFile(t, "hubspot/owner_changes_reference.json")
	if status, _, body := e.post(t, HubSpotPath, "application/json", hs, signV3("", hs, testNow)); status != http.StatusServiceUnavailable {
		t.Errorf("hubspot: status %d: %s", status, body)
	}
	if n := len(e.pub.stored()); n != 0 {
		t.Errorf("%d events published for a conflicted source", n)
	}
	for _, key := range []string{
		"ownersync.ingress.failed{provider=salesforce,reason=source_conflict}",
		"ownersync.ingress.failed{provider=hubspot,reason=source_conflict}",
	} {
		if got := e.meter.get(key); got != 1 {
			t.Errorf("%s = %v, want 1", key, got)
		}
	}
}

// TestOutboundMessageSharedKey covers issue 13 item 3 (ingress part): with shared keys required,
// an Outbound Message gets 403 and publishes nothing unless its URL carries the tenant's key — the
// current one, or the previous one while the rotation overlap lasts; a connection without a key
// accepts nothing. One model: only digests are verified; a key still kept as a secret reference
// (stored:, env:) is refused with 503 (Salesforce retries) until mapper migrated it, even when the
// message carries the right key.
func TestOutboundMessageSharedKey(t *testing.T) {
	body := readFile(t, "salesforce/contact_and_queue_lead.xml")
	tests := []struct {
		name       string
		current    string
		previous   string
		until      time.Time
		query      string
		wantStatus int
	}{
		{name: "no key configured", query: "?key=anything", wantStatus: 403},
		{name: "legacy env reference, right key", current: "env:SF_KEY", query: "?key=s3cret-key", wantStatus: 503},
		{name: "legacy stored reference, right key", current: "stored:acme/salesforce.shared_key", query: "?key=s3cret-key", wantStatus: 503},
		{name: "legacy previous reference during the overlap", current: tenant.SharedKeyDigest("gen-key-2"), previous: "env:SF_KEY",
			until: testNow.Add(time.Hour), query: "?key=s3cret-key", wantStatus: 403},
		{name: "no key sent", current: tenant.SharedKeyDigest("gen-key-1"), wantStatus: 403},
		{name: "new key during the overlap", current: tenant.SharedKeyDigest("gen-key-2"), previous: tenant.SharedKeyDigest("gen-key-1"),
			until: testNow.Add(time.Hour), query: "?key=gen-key-2", wantStatus: 200},
		// Keys ownersync generated are kept as their digest (mapper shows the key once).
		{name: "generated key", current: tenant.SharedKeyDigest("gen-key-1"), query: "?key=gen-key-1", wantStatus: 200},
		{name: "generated key, wrong", current: tenant.SharedKeyDigest("gen-key-1"), query: "?key=gen-key-2", wantStatus: 403},
		{name: "the digest itself sent as the key", current: tenant.SharedKeyDigest("gen-key-1"), query: "?key=" + tenant.SharedKeyDigest("gen-key-1"), wantStatus: 403},
		{name: "generated previous key during the overlap", current: tenant.SharedKeyDigest("gen-key-2"), previous: tenant.SharedKeyDigest("gen-key-1"),
			until: testNow.Add(time.Hour), query: "?key=gen-key-1", wantStatus: 200},
		{name: "generated previous key after the overlap", current: tenant.SharedKeyDigest("gen-key-2"), previous: tenant.SharedKeyDigest("gen-key-1"),
			until: testNow.Add(-time.Second), query: "?key=gen-key-1", wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RequireSharedKey = true })
			e.acme.Salesforce.SharedKeyRef = tt.current
			e.acme.Salesforce.PreviousSharedKeyRef = tt.previous
			e.acme.Salesforce.PreviousSharedKeyUntil = tt.until
			status, _, resp := e.post(t, SalesforcePath+tt.query, "text/xml", body, nil)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, resp)
			}
			want := 0
			if tt.wantStatus == 200 {
				want = 2
			}
			if n := len(e.pub.stored()); n != want {
				t.Errorf("%d events published, want %d", n, want)
			}
		})
	}
}
