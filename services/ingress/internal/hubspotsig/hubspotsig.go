// Package hubspotsig verifies the signatures HubSpot puts on webhook requests
// (docs/crm-protocols.md#hubspot-signatures).
//
// v3 (X-HubSpot-Signature-v3) is HMAC-SHA256 keyed with the app's client secret over
// METHOD + decoded URI + raw body + X-HubSpot-Request-Timestamp, base64-encoded, with a replay window.
// v1 and v2 (X-HubSpot-Signature) are plain SHA-256 hex digests without a timestamp; accept them only
// for apps configured as legacy.
package hubspotsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names (HTTP header names are case-insensitive; HubSpot's docs write both -v3 and -V3).
const (
	HeaderV3        = "X-HubSpot-Signature-v3"
	HeaderTimestamp = "X-HubSpot-Request-Timestamp"
	HeaderLegacy    = "X-HubSpot-Signature"
	HeaderVersion   = "X-HubSpot-Signature-Version"
)

// MaxSkew is how far the v3 timestamp may lie in the past (documented) or the future (our choice).
const MaxSkew = 5 * time.Minute

// Errors; each verification failure wraps exactly one.
var (
	ErrMissing      = errors.New("signature missing")
	ErrBadTimestamp = errors.New("request timestamp missing or not epoch milliseconds")
	ErrExpired      = errors.New("request timestamp older than 5 minutes")
	ErrFuture       = errors.New("request timestamp more than 5 minutes in the future")
	ErrMismatch     = errors.New("signature mismatch")
)

// v3Escapes are the only escapes v3 URI decoding undoes (docs/crm-protocols.md#hubspot-signatures).
// Lowercase hex forms are decoded too: the reference marks that choice unconfirmed but safe, since
// a URI HubSpot signed with a lowercase escape would otherwise never verify.
var v3Escapes = map[string]byte{
	"3A": ':', "2F": '/', "3F": '?', "40": '@', "21": '!', "24": '$',
	"27": '\'', "28": '(', "29": ')', "2A": '*', "2C": ',', "3B": ';',
}

// DecodeURI undoes the v3 escapes in uri in a single left-to-right pass and leaves everything else,
// including other escapes such as %20 or %25, exactly as received.
func DecodeURI(uri string) string {
	if !strings.Contains(uri, "%") {
		return uri
	}
	return string(appendDecodedURI(make([]byte, 0, len(uri)), uri))
}

// appendDecodedURI appends DecodeURI(uri) to dst.
func appendDecodedURI(dst []byte, uri string) []byte {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '%' && i+2 < len(uri) {
			if c, ok := v3Escape(uri[i+1], uri[i+2]); ok {
				dst = append(dst, c)
				i += 2
				continue
			}
		}
		dst = append(dst, uri[i])
	}
	return dst
}

// v3Escape looks up the escape %hl in v3Escapes, either case of hex digit.
func v3Escape(h, l byte) (byte, bool) {
	var k [2]byte
	for i, c := range [2]byte{h, l} {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		k[i] = c
	}
	c, ok := v3Escapes[string(k[:])]
	return c, ok
}

// SignV3 returns the v3 signature of a request. uri is the full public URI as HubSpot called it
// (scheme, host, path, query); it is decoded with DecodeURI here. timestamp is the header verbatim.
func SignV3(secret, method, uri string, body []byte, timestamp string) string {
	var mac [sha256.Size]byte
	sumV3(&mac, secret, method, uri, body, timestamp)
	return base64.StdEncoding.EncodeToString(mac[:])
}

// v3SignatureLen is the length of a v3 signature: 32 bytes in padded base64.
var v3SignatureLen = base64.StdEncoding.EncodedLen(sha256.Size)

// VerifyV3 checks a v3 signature and its timestamp against now. It allocates nothing once the
// secret's HMAC state is pooled (ingress verifies every request).
func VerifyV3(secret, method, uri string, body []byte, timestamp, signature string, now time.Time) error {
	if signature == "" {
		return ErrMissing
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil || ms <= 0 {
		return ErrBadTimestamp
	}
	age := now.Sub(time.UnixMilli(ms))
	switch {
	case age > MaxSkew:
		return ErrExpired
	case age < -MaxSkew:
		return ErrFuture
	}
	var mac [sha256.Size]byte
	sumV3(&mac, secret, method, uri, body, timestamp)
	var want [64]byte
	base64.StdEncoding.Encode(want[:v3SignatureLen], mac[:])
	if !equalConstantTime(want[:v3SignatureLen], signature) {
		return ErrMismatch
	}
	return nil
}

// equalConstantTime is subtle.ConstantTimeCompare(a, []byte(b)) == 1 without converting b.
func equalConstantTime(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// macState is a secret's keyed HMAC-SHA256 and a buffer for the signed text's small parts.
type macState struct {
	h       hash.Hash
	scratch []byte
	sum     []byte
}

// macPools keeps, per client secret, HMAC states ready for use: keying an HMAC costs two SHA-256
// blocks and five allocations, on every request otherwise. A tenant has one or two secrets (two
// during a rotation); the map is emptied when it holds more than maxMACPools, so a stream of
// requests naming unknown apps cannot grow it.
var macPools struct {
	sync.RWMutex
	m map[string]*sync.Pool
}

const maxMACPools = 256

func macPool(secret string) *sync.Pool {
	macPools.RLock()
	p := macPools.m[secret]
	macPools.RUnlock()
	if p != nil {
		return p
	}
	macPools.Lock()
	defer macPools.Unlock()
	if p = macPools.m[secret]; p != nil {
		return p
	}
	if macPools.m == nil || len(macPools.m) >= maxMACPools {
		macPools.m = map[string]*sync.Pool{}
	}
	key := []byte(secret)
	p = &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}
	macPools.m[secret] = p
	return p
}

// sumV3 writes the v3 HMAC of the request into mac.
func sumV3(mac *[sha256.Size]byte, secret, method, uri string, body []byte, timestamp string) {
	pool := macPool(secret)
	st := pool.Get().(*macState)
	st.scratch = append(st.scratch[:0], strings.ToUpper(method)...)
	st.scratch = appendDecodedURI(st.scratch, uri)
	st.h.Write(st.scratch)
	st.h.Write(body)
	st.scratch = append(st.scratch[:0], timestamp...)
	st.h.Write(st.scratch)
	st.sum = st.h.Sum(st.sum[:0])
	copy(mac[:], st.sum)
	st.h.Reset()
	if cap(st.scratch) > 4<<10 {
		st.scratch = nil // a long URI: not kept
	}
	pool.Put(st)
}

// SignV1 returns the v1 signature: lowercase hex SHA-256 of secret + body.
func SignV1(secret string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// SignV2 returns the v2 signature: lowercase hex SHA-256 of secret + METHOD + URI + body, the URI
// exactly as HubSpot called it (no decoding).
func SignV2(secret, method, uri string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write([]byte(strings.ToUpper(method)))
	h.Write([]byte(uri))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyV1 checks a v1 signature.
func VerifyV1(secret string, body []byte, signature string) error {
	return compareHex(SignV1(secret, body), signature)
}

// VerifyV2 checks a v2 signature.
func VerifyV2(secret, method, uri string, body []byte, signature string) error {
	return compareHex(SignV2(secret, method, uri, body), signature)
}

func compareHex(want, got string) error {
	got = strings.ToLower(strings.TrimSpace(got))
	if got == "" {
		return ErrMissing
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return ErrMismatch
	}
	return nil
}

// Request is what a signature covers, taken from one HTTP request.
type Request struct {
	Method string
	// URI is the full public URI: the configured public base URL + route path + "?" + raw query.
	URI  string
	Body []byte
	// Header returns a request header (http.Header.Get).
	Header func(string) string
}

// Verify checks the newest signature the request carries: v3 whenever X-HubSpot-Signature-v3 is
// present, otherwise v1 or v2 (by X-HubSpot-Signature-Version, default v1) only if allowLegacy.
// It returns the version it checked.
func Verify(r Request, secret string, allowLegacy bool, now time.Time) (version string, err error) {
	if sig := r.Header(HeaderV3); sig != "" {
		return "v3", VerifyV3(secret, r.Method, r.URI, r.Body, r.Header(HeaderTimestamp), sig, now)
	}
	if !allowLegacy {
		return "v3", ErrMissing
	}
	sig := r.Header(HeaderLegacy)
	switch v := strings.ToLower(strings.TrimSpace(r.Header(HeaderVersion))); v {
	case "v2":
		return "v2", VerifyV2(secret, r.Method, r.URI, r.Body, sig)
	case "", "v1":
		return "v1", VerifyV1(secret, r.Body, sig)
	default:
		return v, ErrMissing
	}
}
