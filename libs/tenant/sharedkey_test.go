package tenant

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestOneSharedKeyModel is issue 13 item 3 (one model): a shared key is only ever the digest of a
// key ownersync generated — Validate refuses a secret reference (env:, file:, stored:) as a shared
// key, whoever saves it — and RotateSharedKey is the one way to get a key: at least 128 bits,
// digest and creation time stored, the replaced key kept as the previous one until the overlap
// ends, and a legacy reference never carried over as a previous key.
func TestOneSharedKeyModel(t *testing.T) {
	base := func() Tenant {
		return Tenant{ID: "acme", Salesforce: &SFConfig{Settings: Settings{Enabled: true}, OrgID: "00D5g000004XyZaEAK",
			Auth: SFAuth{Flow: "client_credentials", ClientID: "ck", ClientSecretRef: "env:OWNERSYNC_SECRET_SF"}}}
	}
	for _, ref := range []string{"env:OWNERSYNC_SECRET_SF_KEY", "file:/run/secrets/ownersync/key", "stored:acme/salesforce.shared_key", "sha256:abc"} {
		for _, previous := range []bool{false, true} {
			x := base()
			if previous {
				x.Salesforce.SharedKeyRef = SharedKeyDigest("k")
				x.Salesforce.PreviousSharedKeyRef, x.Salesforce.PreviousSharedKeyUntil = ref, time.Now().Add(time.Hour)
			} else {
				x.Salesforce.SharedKeyRef = ref
			}
			x.Normalize()
			if err := x.Validate(); err == nil || !strings.Contains(err.Error(), "shared_key_ref must be the digest") {
				t.Errorf("shared key %q (previous %t) accepted: %v", ref, previous, err)
			}
		}
	}

	now := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	sf := base().Salesforce
	if !sf.KeyMissing() {
		t.Error("an enabled connection without a key is not flagged")
	}
	key1, until, err := RotateSharedKey(sf, now, 72*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(key1)
	if err != nil || len(raw)*8 < 128 {
		t.Fatalf("key %q: %d bits (%v)", key1, len(raw)*8, err)
	}
	if sf.SharedKeyRef != SharedKeyDigest(key1) || !sf.SharedKeyCreatedAt.Equal(now.Truncate(time.Millisecond)) ||
		!until.IsZero() || sf.PreviousSharedKeyRef != "" || sf.KeyMissing() {
		t.Fatalf("first key: %+v until %v", sf, until)
	}
	x := base()
	x.Salesforce = sf
	x.Normalize()
	if err := x.Validate(); err != nil {
		t.Fatalf("a generated key: %v", err)
	}
	key2, until, err := RotateSharedKey(sf, now.Add(time.Minute), 72*time.Hour)
	if err != nil || key2 == key1 {
		t.Fatal(err)
	}
	if want := now.Add(time.Minute).Add(72 * time.Hour).Truncate(time.Millisecond); !until.Equal(want) || !sf.PreviousSharedKeyUntil.Equal(want) ||
		sf.PreviousSharedKeyRef != SharedKeyDigest(key1) || sf.SharedKeyRef != SharedKeyDigest(key2) {
		t.Fatalf("rotation: %+v until %v", sf, until)
	}
	if !sf.PreviousKeyValid(until.Add(-time.Second)) || sf.PreviousKeyValid(until) {
		t.Error("PreviousKeyValid around the overlap's end")
	}
	// No overlap: the old key ends at once.
	if _, until, _ = RotateSharedKey(sf, now, 0); !until.IsZero() || sf.PreviousSharedKeyRef != "" {
		t.Errorf("rotation without overlap kept %q until %v", sf.PreviousSharedKeyRef, until)
	}
	// A legacy reference is replaced, never kept as the previous key.
	sf.SharedKeyRef = "stored:acme/salesforce.shared_key"
	if _, until, _ = RotateSharedKey(sf, now, time.Hour); !until.IsZero() || sf.PreviousSharedKeyRef != "" || !IsSharedKeyDigest(sf.SharedKeyRef) {
		t.Errorf("rotation of a legacy key: %+v", sf)
	}
	if !IsLegacySharedKeyRef("env:X") || IsLegacySharedKeyRef("") || IsLegacySharedKeyRef(SharedKeyDigest("k")) {
		t.Error("IsLegacySharedKeyRef")
	}
}
