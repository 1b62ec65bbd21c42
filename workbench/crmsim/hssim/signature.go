package hssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// v3Decoder undoes the escapes HubSpot decodes before signing a v3 URI
// (docs/crm-protocols.md#hubspot-signatures), in upper and lower case.
var v3Decoder = strings.NewReplacer(
	"%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$", "%27", "'", "%28", "(", "%29", ")",
	"%2A", "*", "%2C", ",", "%3B", ";",
	"%3a", ":", "%2f", "/", "%3f", "?", "%2a", "*", "%2c", ",", "%3b", ";",
)

// DecodeV3URI decodes the escapes v3 signing decodes, leaving every other escape as it is.
func DecodeV3URI(uri string) string { return v3Decoder.Replace(uri) }

// SignV3 returns X-HubSpot-Signature-v3: base64(HMAC-SHA256(secret, method + uri + body +
// timestamp)), with uri decoded per DecodeV3URI and timestamp the X-HubSpot-Request-Timestamp
// header value (epoch milliseconds).
func SignV3(secret, method, uri string, body []byte, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strings.ToUpper(method)))
	mac.Write([]byte(DecodeV3URI(uri)))
	mac.Write(body)
	mac.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignV1 returns the v1 X-HubSpot-Signature: lowercase hex SHA-256 of secret + body.
func SignV1(secret string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// SignV2 returns the v2 X-HubSpot-Signature: lowercase hex SHA-256 of secret + method + uri + body.
func SignV2(secret, method, uri string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write([]byte(strings.ToUpper(method)))
	h.Write([]byte(uri))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}
