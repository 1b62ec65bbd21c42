package console_test

import (
	"archive/zip"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/consoletest"
	"github.com/ownersync/ownersync/services/mapper/internal/connect"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
)

var newKeyRE = regexp.MustCompile(`id="om-url" readonly value="https://hooks\.example\.com/webhooks/salesforce\?key=([A-Za-z0-9_-]+)"`)

// TestRotateSharedKeyInTheConsole is issue 13 item 3 in the console: an enabled Salesforce
// connection without a shared key is flagged on the Overview and Connections pages ("generate a
// key"); Generate/Rotate key (a POST with the CSRF token from the form body; tenant admin and
// operator, each for the tenants they reach) shows the endpoint URL with the new key once, not
// cached, and until when the previous key is accepted; later views show only that a key is set,
// its creation time and the overlap's end — never a key.
func TestRotateSharedKeyInTheConsole(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	clock := now
	env := consoletest.StartWith(t, mongoURI, nil, console.Config{Now: func() time.Time { return clock }},
		func(c *console.Console, ts *tenantstore.Store, db *mongo.Database, adminURL string) {
			svc := connect.New(connect.Config{AdminURL: adminURL, IngressURL: "https://hooks.example.com", Flows: connect.NewFlows(db)}, ts, nil, nil)
			c.WithConnections(console.Connections{Service: svc, KeyOverlap: 48 * time.Hour})
		})
	stored := func(id string) *tenant.SFConfig {
		t.Helper()
		tn, err := env.Tenants.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return tn.Salesforce
	}
	// The package's Outbound Messages are sent as the integration user.
	acme, err := env.Tenants.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	acme.Salesforce.Auth.Username = "integration@acme.example"
	if err := env.Tenants.Put(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	b := signedIn(t, env, consoletest.AcmeToken)

	// Keyless: flagged.
	r := b.get("/admin/t/acme/")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r.body, `id="sf-key-missing"`, "Generate a key")
	r = b.get("/admin/t/acme/connections")
	wantContains(t, r.body, `id="sf-key-missing"`, ">Generate key</button>", `id="sf-key-state">none`)

	// The CSRF token only from the form body; another tenant not at all.
	wantStatus(t, b.postRaw("/admin/t/acme/connections/salesforce/rotate-key?csrf="+url.QueryEscape(b.csrf), nil), http.StatusForbidden)
	wantStatus(t, b.post("/admin/t/globex/connections/salesforce/rotate-key", nil), http.StatusForbidden)
	if stored("acme").SharedKeyRef != "" || stored("globex").SharedKeyRef != "" {
		t.Fatal("a refused request generated a key")
	}

	// Generate: shown once, no previous key.
	r = b.post("/admin/t/acme/connections/salesforce/rotate-key", nil)
	wantStatus(t, r, http.StatusOK)
	m := newKeyRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no endpoint URL with the key:\n%s", r.body)
	}
	key1 := m[1]
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q on the answer that shows the key", r.header.Get("Cache-Control"))
	}
	wantContains(t, r.body, `id="om-copy"`, "shown this once", "No previous key is accepted.")
	if sf := stored("acme"); sf.SharedKeyRef != tenant.SharedKeyDigest(key1) || !sf.SharedKeyCreatedAt.Equal(now) {
		t.Fatalf("stored after generation: %+v", sf)
	}

	// Later views: set, created when; no key, no warning.
	clock = now.Add(time.Hour)
	r = b.get("/admin/t/acme/connections")
	wantContains(t, r.body, `id="sf-key-state">set, created`, `datetime="2026-12-03T10:00:00Z"`, ">Rotate key</button>")
	if strings.Contains(r.body, key1) || strings.Contains(r.body, `id="sf-key-missing"`) || strings.Contains(r.body, `id="om-url"`) {
		t.Fatalf("a later view shows the key or the warning:\n%s", r.body)
	}
	if r = b.get("/admin/t/acme/"); strings.Contains(r.body, `id="sf-key-missing"`) {
		t.Error("the overview still warns after a key was generated")
	}

	// The package carries the key: downloaded with the key pasted (checked against the digest).
	r = b.post("/admin/t/acme/connections/salesforce/package.zip", url.Values{"key": {"not-the-key"}})
	wantStatus(t, r, http.StatusBadRequest)
	wantContains(t, r.body, "The package needs the current shared key")
	r = b.post("/admin/t/acme/connections/salesforce/package.zip", url.Values{"key": {key1}})
	wantStatus(t, r, http.StatusOK)
	zr, err := zip.NewReader(strings.NewReader(r.body), int64(len(r.body)))
	if err != nil {
		t.Fatalf("package: %v", err)
	}
	found := false
	for _, f := range zr.File {
		if f.Name == "ownersync-salesforce/workflows/Contact.workflow" {
			rc, _ := f.Open()
			wf, _ := io.ReadAll(rc)
			rc.Close()
			found = strings.Contains(string(wf), "<endpointUrl>https://hooks.example.com/webhooks/salesforce?key="+key1+"</endpointUrl>")
		}
	}
	if !found {
		t.Error("the package's Contact workflow does not carry the endpoint URL with the key")
	}

	// Rotate: the new key once, the previous accepted for the overlap.
	r = b.post("/admin/t/acme/connections/salesforce/rotate-key", nil)
	wantStatus(t, r, http.StatusOK)
	m = newKeyRE.FindStringSubmatch(r.body)
	if m == nil || m[1] == key1 {
		t.Fatalf("rotation showed no new key:\n%s", r.body)
	}
	key2 := m[1]
	until := clock.Add(48 * time.Hour)
	wantContains(t, r.body, "The previous key is accepted until", `datetime="2026-12-05T11:00:00Z"`)
	if sf := stored("acme"); sf.SharedKeyRef != tenant.SharedKeyDigest(key2) || sf.PreviousSharedKeyRef != tenant.SharedKeyDigest(key1) ||
		!sf.PreviousSharedKeyUntil.Equal(until) {
		t.Fatalf("stored after rotation: %+v", sf)
	}
	r = b.get("/admin/t/acme/connections")
	wantContains(t, r.body, `id="sf-key-previous">accepted until`, `datetime="2026-12-05T11:00:00Z"`)
	if strings.Contains(r.body, key1) || strings.Contains(r.body, key2) {
		t.Fatal("a later view shows a key")
	}
	// The rotated-out key no longer builds a package.
	wantStatus(t, b.post("/admin/t/acme/connections/salesforce/package.zip", url.Values{"key": {key1}}), http.StatusBadRequest)
	// After the overlap the previous key is no longer shown as accepted.
	clock = until
	if r = b.get("/admin/t/acme/connections"); strings.Contains(r.body, `id="sf-key-previous"`) {
		t.Error("the previous key is shown as accepted after the overlap")
	}

	// The operator rotates any tenant's key.
	op := signedIn(t, env, consoletest.OperatorToken)
	wantStatus(t, op.post("/admin/t/globex/connections/salesforce/rotate-key", nil), http.StatusOK)
	if !tenant.IsSharedKeyDigest(stored("globex").SharedKeyRef) {
		t.Error("the operator's rotation stored no digest")
	}
}
