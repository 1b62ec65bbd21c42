package webhook

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
)

type fakeReceipts struct {
	mu  sync.Mutex
	got []string
}

func (f *fakeReceipts) Accepted(t, p string) { f.add(t + " " + p + " accepted") }
func (f *fakeReceipts) Rejected(t, p, reason string) {
	f.add(t + " " + p + " rejected " + reason)
}
func (f *fakeReceipts) add(s string) { f.mu.Lock(); f.got = append(f.got, s); f.mu.Unlock() }
func (f *fakeReceipts) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

// TestReceiptsNameTheTenant: accepted and rejected requests of a known tenant are reported with the
// reason (the console's "last webhook received"); a request of an unknown source names no tenant.
func TestReceiptsNameTheTenant(t *testing.T) {
	rec := &fakeReceipts{}
	e := newEnv(t, func(c *Config) { c.RequireSharedKey = true; c.Receipts = rec })
	e.acme.Salesforce.SharedKeyRef = tenant.SharedKeyDigest("s3cret-key")
	om := readFile(t, "salesforce/contact_and_queue_lead.xml")
	check := func(what string, want ...string) {
		t.Helper()
		got := rec.take()
		if len(got) != len(want) {
			t.Fatalf("%s: receipts %q, want %q", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: receipts %q, want %q", what, got, want)
			}
		}
	}
	if st, _, _ := e.post(t, SalesforcePath+"?key=s3cret-key", "text/xml", om, nil); st != 200 {
		t.Fatalf("keyed OM: %d", st)
	}
	check("accepted OM", "acme salesforce accepted")
	if st, _, _ := e.post(t, SalesforcePath+"?key=wrong", "text/xml", om, nil); st != 403 {
		t.Fatalf("wrong key: %d", st)
	}
	check("wrong key", "acme salesforce rejected bad_shared_key")
	unknown := []byte(`[{"eventId":1,"subscriptionId":1,"portalId":999,"appId":` + strconv.FormatInt(testApp, 10) + `,"occurredAt":1,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":1,"propertyName":"hubspot_owner_id","propertyValue":"1","changeSource":"CRM_UI"}]`)
	if st, _, _ := e.post(t, HubSpotPath, "application/json", unknown, signV3("", unknown, testNow)); st != http.StatusNotFound {
		t.Fatalf("unknown portal: %d", st)
	}
	check("unknown portal")
	hs := []byte(`[{"eventId":2,"subscriptionId":1,"portalId":` + strconv.FormatInt(testPortal, 10) + `,"appId":` + strconv.FormatInt(testApp, 10) + `,"occurredAt":` + strconv.FormatInt(testNow.Add(-time.Minute).UnixMilli(), 10) + `,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":1,"propertyName":"hubspot_owner_id","propertyValue":"1","changeSource":"CRM_UI"}]`)
	if st, _, b := e.post(t, HubSpotPath, "application/json", hs, signV3("", hs, testNow)); st != 200 {
		t.Fatalf("signed webhook: %d %s", st, b)
	}
	check("signed webhook", "acme hubspot accepted")
	if st, _, _ := e.post(t, HubSpotPath, "application/json", hs, signV3("", []byte("other"), testNow)); st != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", st)
	}
	check("bad signature", "acme hubspot rejected bad_signature")
}
