package secretbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/workbench/harness"
)

const token = "hs-refresh-9f8e7d6c5b4a"

func ring(t *testing.T, spec string) *secretbox.Keyring {
	t.Helper()
	kr, err := secretbox.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestSealOpenAndTamper(t *testing.T) {
	k1 := secretbox.NewKey("k1")
	kr := ring(t, k1)
	s, err := kr.Seal(token, "acme/hubspot.refresh_token")
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID != "k1" || bytes.Contains(s.Ciphertext, []byte(token)) || bytes.Contains(s.WrappedKey, []byte(token)) {
		t.Fatalf("sealed value: key %q, plaintext visible", s.KeyID)
	}
	got, err := kr.Open(s, "acme/hubspot.refresh_token")
	if err != nil || got.Reveal() != token {
		t.Fatalf("Open = %v, %v", got.Reveal() == token, err)
	}
	// Another tenant's slot does not open it.
	if _, err := kr.Open(s, "globex/hubspot.refresh_token"); !errors.Is(err, secretbox.ErrOpen) {
		t.Fatalf("moved value opened: %v", err)
	}
	// A flipped bit does not open.
	bad := s
	bad.Ciphertext = append([]byte(nil), s.Ciphertext...)
	bad.Ciphertext[len(bad.Ciphertext)-1] ^= 1
	if _, err := kr.Open(bad, "acme/hubspot.refresh_token"); !errors.Is(err, secretbox.ErrOpen) {
		t.Fatalf("tampered value opened: %v", err)
	}
	// A key id relabelled to another key of the ring does not open.
	kr2 := ring(t, secretbox.NewKey("k2")+","+k1)
	re := s
	re.KeyID = "k2"
	if _, err := kr2.Open(re, "acme/hubspot.refresh_token"); !errors.Is(err, secretbox.ErrOpen) {
		t.Fatalf("relabelled key id opened: %v", err)
	}
	// A ring without the key says which key is missing.
	if _, err := ring(t, secretbox.NewKey("k3")).Open(s, "acme/hubspot.refresh_token"); !errors.Is(err, secretbox.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestParseKeyringRefusesBadKeysWithoutEchoingThem(t *testing.T) {
	for _, spec := range []string{"", "k1", "k1:c2hvcnQ=", "k1:!!notbase64!!", "bad id:" + strings.Repeat("A", 44), secretbox.NewKey("k1") + "," + secretbox.NewKey("k1")} {
		_, err := secretbox.ParseKeyring(spec)
		if err == nil {
			t.Fatalf("secretbox.ParseKeyring(%q) accepted", spec)
		}
		if strings.Contains(err.Error(), "c2hvcnQ") || strings.Contains(err.Error(), "notbase64") {
			t.Fatalf("error echoes the key: %v", err)
		}
	}
	kr := ring(t, secretbox.NewKey("new")+", "+secretbox.NewKey("old"))
	if kr.Primary() != "new" || !kr.Has("old") {
		t.Fatalf("primary %q", kr.Primary())
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := secretbox.NewSecret(token)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("connected", "token", s, "struct", struct{ T secretbox.Secret }{s})
	j, _ := json.Marshal(map[string]any{"token": s})
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%+v": fmt.Sprintf("%+v", struct{ T secretbox.Secret }{s}),
		"%#v": fmt.Sprintf("%#v", s), "%q": fmt.Sprintf("%q", s), "%x": fmt.Sprintf("%x", s), "json": string(j), "slog": logs.String(),
	} {
		if strings.Contains(out, token) || strings.Contains(out, fmt.Sprintf("%x", token)) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
	}
	if s.Reveal() != token {
		t.Fatal("Reveal lost the value")
	}
}

func TestStoreRotatesWithoutReconnecting(t *testing.T) {
	conn := harness.MongoDB(t, "secretbox")
	ctx := context.Background()
	if err := mongodb.EnsureIndexes(ctx, conn.DB, secretbox.Indexes); err != nil {
		t.Fatal(err)
	}
	k1 := secretbox.NewKey("k1")
	st := secretbox.NewStore(conn.DB, ring(t, k1))
	if err := st.Put(ctx, "acme", "hubspot.refresh_token", secretbox.NewSecret(token)); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "globex", "salesforce.refresh_token", secretbox.NewSecret("sf-refresh-1")); err != nil {
		t.Fatal(err)
	}
	// What MongoDB holds has no plaintext.
	raw, err := conn.DB.Collection(secretbox.Collection).FindOne(ctx, bson.D{{Key: "_id", Value: "acme/hubspot.refresh_token"}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(token)) {
		t.Fatal("MongoDB document holds the token in clear")
	}
	if kid, _ := raw.Lookup("key_id").StringValueOK(); kid != "k1" {
		t.Fatalf("key_id = %q", kid)
	}

	// The operator adds k2 as primary, keeping k1: values still open, new ones use k2.
	k2 := secretbox.NewKey("k2")
	st2 := secretbox.NewStore(conn.DB, ring(t, k2+","+k1))
	if v, err := st2.Get(ctx, "acme", "hubspot.refresh_token"); err != nil || v.Reveal() != token {
		t.Fatalf("Get under k2+k1 = %v", err)
	}
	counts, err := st2.CountByKey(ctx)
	if err != nil || counts["k1"] != 2 {
		t.Fatalf("CountByKey = %v, %v", counts, err)
	}
	res, err := st2.Rewrap(ctx)
	if err != nil || res.Rewrapped != 2 || len(res.Failed) != 0 {
		t.Fatalf("Rewrap = %+v, %v", res, err)
	}
	raw2, _ := conn.DB.Collection(secretbox.Collection).FindOne(ctx, bson.D{{Key: "_id", Value: "acme/hubspot.refresh_token"}}).Raw()
	if !bytes.Equal(raw2.Lookup("ciphertext").Value, raw.Lookup("ciphertext").Value) {
		t.Fatal("rewrap re-encrypted the value instead of only its data key")
	}
	// k1 leaves the configuration: everything still opens.
	st3 := secretbox.NewStore(conn.DB, ring(t, k2))
	for _, c := range [][3]string{{"acme", "hubspot.refresh_token", token}, {"globex", "salesforce.refresh_token", "sf-refresh-1"}} {
		if v, err := st3.Get(ctx, c[0], c[1]); err != nil || v.Reveal() != c[2] {
			t.Fatalf("Get %s/%s under k2 only: %v", c[0], c[1], err)
		}
	}
	// A document copied into another tenant's slot does not open there.
	var d bson.M
	if err := conn.DB.Collection(secretbox.Collection).FindOne(ctx, bson.D{{Key: "_id", Value: "acme/hubspot.refresh_token"}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	d["_id"], d["tenant"] = "globex/hubspot.refresh_token", "globex"
	if _, err := conn.DB.Collection(secretbox.Collection).InsertOne(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := st3.Get(ctx, "globex", "hubspot.refresh_token"); !errors.Is(err, secretbox.ErrOpen) {
		t.Fatalf("copied document opened: %v", err)
	}
	if _, err := st3.Get(ctx, "acme", "nothing"); !errors.Is(err, secretbox.ErrNotFound) {
		t.Fatalf("missing = %v", err)
	}
	if err := st3.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := st3.Get(ctx, "acme", "hubspot.refresh_token"); !errors.Is(err, secretbox.ErrNotFound) {
		t.Fatalf("after DeleteTenant: %v", err)
	}
}
