// Package secretbox stores the secrets ownersync obtains itself — the OAuth tokens of a "Connect"
// flow — encrypted in MongoDB (issue 16). Operator-set secrets stay references (libs/secretref).
//
// Envelope encryption: every value gets a fresh 256-bit data key; the value is sealed with the
// data key (AES-256-GCM), and the data key is sealed with a key-encryption key from the operator's
// configuration (a Keyring). The stored document carries the id of the key-encryption key, so a new
// key can be made primary and Store.Rewrap re-seals the data keys under it without decrypting the
// values' ciphertext again and without any tenant re-connecting; old keys stay in the ring until
// Rewrap reports nothing left under them. The tenant and name of a value are the additional
// authenticated data of both seals: a document copied to another tenant's slot does not open.
//
// Values are returned as Secret, whose String, GoString, JSON and slog forms are "[redacted]", so a
// token cannot be logged or serialised into an API response by accident.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted is what a Secret prints as.
const Redacted = "[redacted]"

// Secret is a secret value that does not print itself.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the value, for the one place that sends it (an Authorization header, a token form).
func (s Secret) Reveal() string { return s.v }

// Empty reports whether there is no value.
func (s Secret) Empty() bool { return s.v == "" }

func (s Secret) String() string                { return Redacted }
func (s Secret) GoString() string              { return Redacted }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(Redacted) }
func (s Secret) MarshalJSON() ([]byte, error)  { return []byte(`"` + Redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(Redacted), nil }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// Errors.
var (
	// ErrUnknownKey: the value was sealed under a key id the ring does not hold.
	ErrUnknownKey = errors.New("secretbox: value sealed under a key this configuration does not hold")
	// ErrOpen: authentication failed (wrong key, tampered document, or another tenant's slot).
	ErrOpen = errors.New("secretbox: value does not open (tampered, moved or wrong key)")
	// ErrNotFound: no value is stored under the name.
	ErrNotFound = errors.New("secretbox: no stored value")
)

// KeySize is the size of a key-encryption key (AES-256).
const KeySize = 32

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Keyring holds the key-encryption keys; the primary one seals new values.
type Keyring struct {
	primary string
	keys    map[string]cipher.AEAD
}

// NewKeyring returns a ring whose primary key is primary; keys maps ids to 32-byte keys.
func NewKeyring(primary string, keys map[string][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no keys")
	}
	kr := &Keyring{primary: primary, keys: map[string]cipher.AEAD{}}
	for id, k := range keys {
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("secretbox: key id %q must match %s", id, keyIDRE)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("secretbox: key %q is %d bytes, want %d", id, len(k), KeySize)
		}
		a, err := newAEAD(k)
		if err != nil {
			return nil, err
		}
		kr.keys[id] = a
	}
	if _, ok := kr.keys[primary]; !ok {
		return nil, fmt.Errorf("secretbox: primary key %q is not among the keys", primary)
	}
	return kr, nil
}

// ParseKeyring reads the operator's configuration form: "id:base64key[,id:base64key…]", the first
// entry being the primary key (standard or URL base64, padded or not). Errors never echo a key.
func ParseKeyring(s string) (*Keyring, error) {
	keys := map[string][]byte{}
	primary := ""
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("secretbox: key entry %d must be id:base64key", i+1)
		}
		k, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %q is not base64", id)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("secretbox: key id %q given twice", id)
		}
		keys[id] = k
		if primary == "" {
			primary = id
		}
	}
	return NewKeyring(primary, keys)
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// NewKey returns a random key in the form ParseKeyring reads ("id:base64").
func NewKey(id string) string {
	k := make([]byte, KeySize)
	mustRand(k)
	return id + ":" + base64.StdEncoding.EncodeToString(k)
}

// Primary is the id of the key new values are sealed under.
func (k *Keyring) Primary() string { return k.primary }

// Has reports whether the ring holds key id.
func (k *Keyring) Has(id string) bool { _, ok := k.keys[id]; return ok }

// Sealed is a value as stored: the key id, the data key sealed under it, and the value sealed
// under the data key. Nonces are prefixed to their ciphertexts.
type Sealed struct {
	KeyID      string `bson:"key_id" json:"-"`
	WrappedKey []byte `bson:"wrapped_key" json:"-"`
	Ciphertext []byte `bson:"ciphertext" json:"-"`
}

// Seal encrypts value for the slot named by aad (the store passes "tenant/name").
func (k *Keyring) Seal(value, aad string) (Sealed, error) {
	dek := make([]byte, KeySize)
	mustRand(dek)
	a, err := newAEAD(dek)
	if err != nil {
		return Sealed{}, err
	}
	ct := seal(a, []byte(value), []byte(aad))
	wrapped := seal(k.keys[k.primary], dek, wrapAAD(k.primary, aad))
	return Sealed{KeyID: k.primary, WrappedKey: wrapped, Ciphertext: ct}, nil
}

// Open decrypts a sealed value of the slot aad.
func (k *Keyring) Open(s Sealed, aad string) (Secret, error) {
	dek, err := k.unwrap(s, aad)
	if err != nil {
		return Secret{}, err
	}
	a, err := newAEAD(dek)
	if err != nil {
		return Secret{}, err
	}
	pt, err := open(a, s.Ciphertext, []byte(aad))
	if err != nil {
		return Secret{}, ErrOpen
	}
	return Secret{v: string(pt)}, nil
}

// Rewrap re-seals the data key of s under the primary key; the value's ciphertext is unchanged.
func (k *Keyring) Rewrap(s Sealed, aad string) (Sealed, error) {
	dek, err := k.unwrap(s, aad)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{KeyID: k.primary, WrappedKey: seal(k.keys[k.primary], dek, wrapAAD(k.primary, aad)), Ciphertext: s.Ciphertext}, nil
}

func (k *Keyring) unwrap(s Sealed, aad string) ([]byte, error) {
	kek, ok := k.keys[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, s.KeyID)
	}
	dek, err := open(kek, s.WrappedKey, wrapAAD(s.KeyID, aad))
	if err != nil || len(dek) != KeySize {
		return nil, ErrOpen
	}
	return dek, nil
}

// wrapAAD binds the wrapped data key to its key id and slot.
func wrapAAD(keyID, aad string) []byte {
	return []byte("ownersync-secretbox-v1\x00" + keyID + "\x00" + aad)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return cipher.NewGCM(b)
}

func seal(a cipher.AEAD, pt, aad []byte) []byte {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(pt)+a.Overhead())
	mustRand(nonce)
	return a.Seal(nonce, nonce, pt, aad)
}

func open(a cipher.AEAD, ct, aad []byte) ([]byte, error) {
	if len(ct) < a.NonceSize()+a.Overhead() {
		return nil, ErrOpen
	}
	return a.Open(nil, ct[:a.NonceSize()], ct[a.NonceSize():], aad)
}

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
}
