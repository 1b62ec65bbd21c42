package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
)

const webhookURL = "https://hooks.example.test/webhooks/salesforce"

type keyAnswer struct {
	Key                string     `json:"key"`
	WebhookURL         string     `json:"webhook_url"`
	PreviousValidUntil *time.Time `json:"previous_key_valid_until"`
}

// TestSharedKeyGeneratedAndRotated is issue 13 item 3 (mapper side): an enabled Salesforce
// connection gets an Outbound Message key that ownersync generates (256 random bits), shows once
// with the full webhook URL and stores only as a digest; rotation answers a new key and keeps the
// old one valid for the overlap, in the fields ingress already checks.
func TestSharedKeyGeneratedAndRotated(t *testing.T) {
	e := newEnv(t)
	stored := func(id string) *tenant.SFConfig {
		t.Helper()
		s, err := e.tenants.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return s.Salesforce
	}
	checkKey := func(t *testing.T, r response, k keyAnswer) {
		t.Helper()
		raw, err := base64.RawURLEncoding.DecodeString(k.Key)
		if err != nil || len(raw) < 16 {
			t.Fatalf("key %q: %d bytes (%v), want at least 128 bits", k.Key, len(raw), err)
		}
		if k.WebhookURL != webhookURL+"?key="+k.Key {
			t.Errorf("webhook_url = %q", k.WebhookURL)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
		}
	}
	// A new connection gets a key, shown in the answer.
	r := e.do("PUT", "/v1/tenants/initech", operatorToken, `{"salesforce":{"enabled":true,"org_id":"00D5g000004InItEAK","instance_url":"https://initech.my.salesforce.com",
		"auth":{"flow":"client_credentials","client_id":"i","client_secret_ref":"env:OWNERSYNC_SECRET_INITECH"}}}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	var created struct {
		ID        string     `json:"id"`
		SharedKey *keyAnswer `json:"salesforce_shared_key"`
	}
	if err := json.Unmarshal(r.Body, &created); err != nil || created.SharedKey == nil || created.ID != "initech" {
		t.Fatalf("create answer without a key: %s", r.Body)
	}
	checkKey(t, r, *created.SharedKey)
	key1 := created.SharedKey.Key
	if got := stored("initech").SharedKeyRef; got != tenant.SharedKeyDigest(key1) {
		t.Errorf("stored shared_key_ref = %q, want the key's digest", got)
	}
	// Shown once: GET, and a save of the unchanged configuration, never show it again.
	g := e.do("GET", "/v1/tenants/initech", operatorToken, "")
	if strings.Contains(string(g.Body), key1) {
		t.Errorf("GET shows the key: %s", g.Body)
	}
	r = e.do("PUT", "/v1/tenants/initech", operatorToken, string(g.Body))
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), "salesforce_shared_key") {
		t.Errorf("a second save = %d %s, want 200 without a key", r.Status, r.Body)
	}
	// A PUT that leaves the key out keeps it: a key changes only by rotation.
	r = e.do("PATCH", "/v1/tenants/initech", operatorToken, `{"salesforce":{"shared_key_ref":null}}`)
	if r.Status != http.StatusOK || stored("initech").SharedKeyRef != tenant.SharedKeyDigest(key1) {
		t.Errorf("a save without the key = %d %s; stored %q", r.Status, r.Body, stored("initech").SharedKeyRef)
	}
	if e.logs.String() != "" && strings.Contains(e.logs.String(), key1) {
		t.Error("the logs contain the key")
	}

	// Rotation (a tenant token may rotate its own key): a new key, the old one valid for the overlap.
	before := time.Now()
	r = e.do("POST", "/v1/tenants/acme/salesforce/shared-key?overlap=1h", acmeToken, "")
	var first keyAnswer
	if r.Status != http.StatusCreated || json.Unmarshal(r.Body, &first) != nil {
		t.Fatalf("rotate = %d %s", r.Status, r.Body)
	}
	checkKey(t, r, first)
	if first.PreviousValidUntil != nil || stored("acme").PreviousSharedKeyRef != "" {
		t.Errorf("the first key of a connection without one has a previous key: %s", r.Body)
	}
	r = e.do("POST", "/v1/tenants/acme/salesforce/shared-key?overlap=1h", acmeToken, "")
	var second keyAnswer
	if r.Status != http.StatusCreated || json.Unmarshal(r.Body, &second) != nil || second.Key == first.Key {
		t.Fatalf("second rotation = %d %s", r.Status, r.Body)
	}
	sf := stored("acme")
	if sf.SharedKeyRef != tenant.SharedKeyDigest(second.Key) || sf.PreviousSharedKeyRef != tenant.SharedKeyDigest(first.Key) {
		t.Errorf("after rotation: current %q previous %q", sf.SharedKeyRef, sf.PreviousSharedKeyRef)
	}
	if until := sf.PreviousSharedKeyUntil; second.PreviousValidUntil == nil || !until.Equal(*second.PreviousValidUntil) ||
		until.Before(before.Add(time.Hour-time.Second)) || until.After(time.Now().Add(time.Hour)) {
		t.Errorf("previous key valid until %v (answer %v), want an hour from now", until, second.PreviousValidUntil)
	}
	for _, tc := range []struct {
		name, path, token string
		status            int
	}{
		{"another tenant's key", "/v1/tenants/globex/salesforce/shared-key", acmeToken, 403},
		{"no Salesforce connection", "/v1/tenants/globex/salesforce/shared-key", operatorToken, 409},
		{"an overlap too long", "/v1/tenants/acme/salesforce/shared-key?overlap=2000h", acmeToken, 400},
		{"a negative overlap", "/v1/tenants/acme/salesforce/shared-key?overlap=-1h", acmeToken, 400},
		{"no token", "/v1/tenants/acme/salesforce/shared-key", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.do("POST", tc.path, tc.token, ""); r.Status != tc.status {
				t.Errorf("= %d %s, want %d", r.Status, r.Body, tc.status)
			}
		})
	}
	if got := stored("acme").SharedKeyRef; got != tenant.SharedKeyDigest(second.Key) {
		t.Error("a refused rotation changed the key")
	}
	// A tenant that enables its connection again gets a key when it has none.
	e.do("PATCH", "/v1/tenants/initech", operatorToken, `{"salesforce":{"enabled":false,"shared_key_ref":null}}`)
	r = e.do("PATCH", "/v1/tenants/initech", operatorToken, `{"salesforce":{"enabled":true}}`)
	var re struct {
		SharedKey *keyAnswer `json:"salesforce_shared_key"`
	}
	if json.Unmarshal(r.Body, &re); r.Status != http.StatusOK || re.SharedKey == nil || stored("initech").SharedKeyRef != tenant.SharedKeyDigest(re.SharedKey.Key) {
		t.Errorf("enabling a connection without a key = %d %s", r.Status, r.Body)
	}
}

// TestKeylessConnectionFlaggedAndOneKeyModel is issue 13 item 3 (one model, API): an enabled
// Salesforce connection without a key is flagged in GET answers (salesforce.shared_key_missing),
// the flag is output only (a GET body saved back is accepted, nothing stored), rotation clears it
// and stores the key's creation time; a secret reference as a shared key is refused, also from
// the operator — keys are generated, never configured.
func TestKeylessConnectionFlaggedAndOneKeyModel(t *testing.T) {
	e := newEnv(t)
	type sfAnswer struct {
		Salesforce struct {
			SharedKeyMissing bool      `json:"shared_key_missing"`
			SharedKeyCreated time.Time `json:"shared_key_created_at"`
		} `json:"salesforce"`
	}
	var got sfAnswer
	g := e.do("GET", "/v1/tenants/acme", acmeToken, "")
	if err := json.Unmarshal(g.Body, &got); err != nil || g.Status != http.StatusOK || !got.Salesforce.SharedKeyMissing {
		t.Fatalf("GET of a keyless enabled connection = %d %s, want shared_key_missing", g.Status, g.Body)
	}
	var list struct {
		Items []sfAnswer `json:"items"`
	}
	if r := e.do("GET", "/v1/tenants", operatorToken, ""); json.Unmarshal(r.Body, &list) != nil || len(list.Items) == 0 || !list.Items[0].Salesforce.SharedKeyMissing {
		t.Errorf("GET /v1/tenants does not flag acme: %s", r.Body)
	}
	if r := e.do("PUT", "/v1/tenants/acme", acmeToken, string(g.Body)); r.Status != http.StatusOK {
		t.Fatalf("saving the GET answer back = %d %s", r.Status, r.Body)
	}
	before := time.Now().Add(-time.Second)
	if r := e.do("POST", "/v1/tenants/acme/salesforce/shared-key", acmeToken, ""); r.Status != http.StatusCreated {
		t.Fatalf("rotate = %d %s", r.Status, r.Body)
	}
	got = sfAnswer{}
	g = e.do("GET", "/v1/tenants/acme", acmeToken, "")
	if json.Unmarshal(g.Body, &got); got.Salesforce.SharedKeyMissing || got.Salesforce.SharedKeyCreated.Before(before) {
		t.Errorf("after rotation: %s", g.Body)
	}
	for _, ref := range []string{"env:OWNERSYNC_SECRET_ACME_KEY", "stored:acme/salesforce.shared_key"} {
		r := e.do("PATCH", "/v1/tenants/acme", operatorToken, `{"salesforce":{"shared_key_ref":"`+ref+`"}}`)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "shared_key_ref must be the digest") {
			t.Errorf("operator sets shared_key_ref %s = %d %s, want 400", ref, r.Status, r.Body)
		}
	}
}
