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
	"strconv"
	"strings"
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
	var b strings.Builder
	b.Grow(len(uri))
	for i := 0; i < len(uri); i++ {
		if uri[i] == '%' && i+2 < len(uri) {
			if c, ok := v3Escapes[strings.ToUpper(uri[i+1:i+3])]; ok {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(uri[i])
	}
	return b.String()
}

// SignV3 returns the v3 signature of a request. uri is the full public URI as HubSpot called it
// (scheme, host, path, query); it is decoded with DecodeURI here. timestamp is the header verbatim.
func SignV3(secret, method, uri string, body []byte, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strings.ToUpper(method)))
	m.Write([]byte(DecodeURI(uri)))
	m.Write(body)
	m.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyV3 checks a v3 signature and its timestamp against now.
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
	want := SignV3(secret, method, uri, body, timestamp)
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return ErrMismatch
	}
	return nil
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
