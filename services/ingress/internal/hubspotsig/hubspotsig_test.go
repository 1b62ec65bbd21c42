package hubspotsig

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const testdata = "../../testdata/hubspot"

type vector struct {
	Name       string `json:"name"`
	Secret     string `json:"secret"`
	Method     string `json:"method"`
	URI        string `json:"uri"`
	DecodedURI string `json:"decoded_uri"`
	Timestamp  string `json:"timestamp"`
	BodyFile   string `json:"body_file"`
	Signature  string `json:"signature"`
}

func vectors(t testing.TB) map[string][]vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "signature_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string][]vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func body(t testing.TB, name string) []byte {
	t.Helper()
	if name == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorsV1(t *testing.T) {
	for _, v := range vectors(t)["v1"] {
		t.Run(v.Name, func(t *testing.T) {
			b := body(t, v.BodyFile)
			if got := SignV1(v.Secret, b); got != v.Signature {
				t.Errorf("SignV1 = %s, want %s", got, v.Signature)
			}
			if err := VerifyV1(v.Secret, b, v.Signature); err != nil {
				t.Errorf("VerifyV1: %v", err)
			}
			if err := VerifyV1("other", b, v.Signature); !errors.Is(err, ErrMismatch) {
				t.Errorf("VerifyV1 with another secret = %v, want ErrMismatch", err)
			}
		})
	}
}

func TestVectorsV2(t *testing.T) {
	for _, v := range vectors(t)["v2"] {
		t.Run(v.Name, func(t *testing.T) {
			b := body(t, v.BodyFile)
			if got := SignV2(v.Secret, v.Method, v.URI, b); got != v.Signature {
				t.Errorf("SignV2 = %s, want %s", got, v.Signature)
			}
			if err := VerifyV2(v.Secret, v.Method, v.URI, b, v.Signature); err != nil {
				t.Errorf("VerifyV2: %v", err)
			}
			if err := VerifyV2(v.Secret, v.Method, v.URI+"?a=1", b, v.Signature); !errors.Is(err, ErrMismatch) {
				t.Errorf("VerifyV2 with another URI = %v, want ErrMismatch", err)
			}
		})
	}
}

func TestVectorsV3(t *testing.T) {
	vs := vectors(t)["v3"]
	if len(vs) < 5 {
		t.Fatalf("only %d v3 vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			b := body(t, v.BodyFile)
			if got := DecodeURI(v.URI); got != v.DecodedURI {
				t.Errorf("DecodeURI = %s, want %s", got, v.DecodedURI)
			}
			if got := SignV3(v.Secret, v.Method, v.URI, b, v.Timestamp); got != v.Signature {
				t.Errorf("SignV3 = %s, want %s", got, v.Signature)
			}
			ms, _ := strconv.ParseInt(v.Timestamp, 10, 64)
			now := time.UnixMilli(ms).Add(2 * time.Second)
			if err := VerifyV3(v.Secret, v.Method, v.URI, b, v.Timestamp, v.Signature, now); err != nil {
				t.Errorf("VerifyV3: %v", err)
			}
		})
	}
}

func TestVerifyV3Rejects(t *testing.T) {
	v := vectors(t)["v3"][0]
	b := body(t, v.BodyFile)
	ts := time.UnixMilli(1767225601000)
	tampered := append([]byte(nil), b...)
	tampered[len(tampered)-3] = 'X'
	tests := []struct {
		name      string
		secret    string
		method    string
		uri       string
		body      []byte
		timestamp string
		sig       string
		now       time.Time
		want      error
	}{
		{"valid", v.Secret, "POST", v.URI, b, v.Timestamp, v.Signature, ts, nil},
		{"lowercase method is the same request", v.Secret, "post", v.URI, b, v.Timestamp, v.Signature, ts, nil},
		{"exactly 5 minutes old", v.Secret, "POST", v.URI, b, v.Timestamp, v.Signature, ts.Add(5 * time.Minute), nil},
		{"older than 5 minutes", v.Secret, "POST", v.URI, b, v.Timestamp, v.Signature, ts.Add(5*time.Minute + time.Millisecond), ErrExpired},
		{"5 minutes in the future", v.Secret, "POST", v.URI, b, v.Timestamp, v.Signature, ts.Add(-5 * time.Minute), nil},
		{"more than 5 minutes in the future", v.Secret, "POST", v.URI, b, v.Timestamp, v.Signature, ts.Add(-5*time.Minute - time.Millisecond), ErrFuture},
		{"wrong secret", "other", "POST", v.URI, b, v.Timestamp, v.Signature, ts, ErrMismatch},
		{"tampered body", v.Secret, "POST", v.URI, tampered, v.Timestamp, v.Signature, ts, ErrMismatch},
		{"other URI", v.Secret, "POST", "https://hooks.example.com/hubspot/webhooks?tenant=acmf", b, v.Timestamp, v.Signature, ts, ErrMismatch},
		{"other method", v.Secret, "PUT", v.URI, b, v.Timestamp, v.Signature, ts, ErrMismatch},
		{"timestamp changed", v.Secret, "POST", v.URI, b, "1767225601001", v.Signature, ts, ErrMismatch},
		{"timestamp in seconds", v.Secret, "POST", v.URI, b, "1767225601", v.Signature, ts, ErrExpired},
		{"timestamp missing", v.Secret, "POST", v.URI, b, "", v.Signature, ts, ErrBadTimestamp},
		{"timestamp not a number", v.Secret, "POST", v.URI, b, "yesterday", v.Signature, ts, ErrBadTimestamp},
		{"signature missing", v.Secret, "POST", v.URI, b, v.Timestamp, "", ts, ErrMissing},
		{"sha256= prefix is not accepted", v.Secret, "POST", v.URI, b, v.Timestamp, "sha256=" + v.Signature, ts, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyV3(tt.secret, tt.method, tt.uri, tt.body, tt.timestamp, tt.sig, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("VerifyV3 = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	vs := vectors(t)
	v3 := vs["v3"][0]
	v1 := vs["v1"][1] // same secret and body as v3
	b := body(t, v3.BodyFile)
	now := time.UnixMilli(1767225601000)
	tests := []struct {
		name        string
		header      http.Header
		allowLegacy bool
		wantVersion string
		want        error
	}{
		{"v3", http.Header{"X-Hubspot-Signature-V3": {v3.Signature}, "X-Hubspot-Request-Timestamp": {v3.Timestamp}}, false, "v3", nil},
		{"v3 wins over a valid v1 even for legacy apps", http.Header{"X-Hubspot-Signature-V3": {"AAAA"}, "X-Hubspot-Request-Timestamp": {v3.Timestamp}, "X-Hubspot-Signature": {v1.Signature}}, true, "v3", ErrMismatch},
		{"v1 refused unless legacy", http.Header{"X-Hubspot-Signature": {v1.Signature}, "X-Hubspot-Signature-Version": {"v1"}}, false, "v3", ErrMissing},
		{"v1 for a legacy app", http.Header{"X-Hubspot-Signature": {v1.Signature}, "X-Hubspot-Signature-Version": {"v1"}}, true, "v1", nil},
		{"v1 without version header", http.Header{"X-Hubspot-Signature": {v1.Signature}}, true, "v1", nil},
		{"v1 wrong", http.Header{"X-Hubspot-Signature": {SignV1("other", b)}}, true, "v1", ErrMismatch},
		{"v2 for a legacy app", http.Header{"X-Hubspot-Signature": {SignV2(v3.Secret, "POST", v3.URI, b)}, "X-Hubspot-Signature-Version": {"v2"}}, true, "v2", nil},
		{"unknown version", http.Header{"X-Hubspot-Signature": {v1.Signature}, "X-Hubspot-Signature-Version": {"v9"}}, true, "v9", ErrMissing},
		{"nothing", http.Header{}, true, "v1", ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{Method: "POST", URI: v3.URI, Body: b, Header: tt.header.Get}
			ver, err := Verify(r, v3.Secret, tt.allowLegacy, now)
			if ver != tt.wantVersion || !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %s, %v; want %s, %v", ver, err, tt.wantVersion, tt.want)
			}
		})
	}
}

func TestDecodeURI(t *testing.T) {
	tests := map[string]string{
		"":                      "",
		"%":                     "%",
		"%3":                    "%3",
		"%3A":                   ":",
		"%3a%3A":                "::",
		"%253A":                 "%253A",
		"a%2Fb%2fc%20d":         "a/b/c%20d",
		"%3A%2F%3F%40%21%24%27": ":/?@!$'",
		"%28%29%2A%2C%3B":       "()*,;",
		"%zz%3B":                "%zz;",
		"end%2":                 "end%2",
	}
	for in, want := range tests {
		if got := DecodeURI(in); got != want {
			t.Errorf("DecodeURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzVerifyV3 checks that a signature made by SignV3 always verifies, that any change of the
// body refuses, and that DecodeURI never grows its input.
func FuzzVerifyV3(f *testing.F) {
	for _, v := range vectors(f)["v3"] {
		f.Add(v.Secret, v.Method, v.URI, body(f, v.BodyFile), v.Timestamp, v.Signature)
	}
	f.Fuzz(func(t *testing.T, secret, method, uri string, body []byte, timestamp, sig string) {
		if len(DecodeURI(uri)) > len(uri) {
			t.Fatal("DecodeURI grew its input")
		}
		now := time.UnixMilli(1767225601000)
		err := VerifyV3(secret, method, uri, body, timestamp, sig, now)
		if err == nil && sig != SignV3(secret, method, uri, body, timestamp) {
			t.Fatal("accepted a signature SignV3 does not produce")
		}
		good := SignV3(secret, method, uri, body, "1767225601000")
		if err := VerifyV3(secret, method, uri, body, "1767225601000", good, now); err != nil {
			t.Fatalf("own signature refused: %v", err)
		}
		if err := VerifyV3(secret, method, uri, append(body, 'x'), "1767225601000", good, now); err == nil {
			t.Fatal("changed body accepted")
		}
	})
}

// TestVerifyV3AllocatesNothing: ingress verifies every HubSpot request (issue 18: the HMAC, its
// key schedule and the base64 string were allocated per request). Two secrets alternate, and the
// secrets' own states are kept apart: a request signed with one never verifies with the other.
func TestVerifyV3AllocatesNothing(t *testing.T) {
	v := vectors(t)["v3"][0]
	b := body(t, v.BodyFile)
	ms, _ := strconv.ParseInt(v.Timestamp, 10, 64)
	now := time.UnixMilli(ms)
	other := SignV3("another secret", v.Method, v.URI, b, v.Timestamp)
	if n := testing.AllocsPerRun(100, func() {
		if err := VerifyV3(v.Secret, v.Method, v.URI, b, v.Timestamp, v.Signature, now); err != nil {
			t.Fatal(err)
		}
		if err := VerifyV3("another secret", v.Method, v.URI, b, v.Timestamp, other, now); err != nil {
			t.Fatal(err)
		}
		if err := VerifyV3("another secret", v.Method, v.URI, b, v.Timestamp, v.Signature, now); !errors.Is(err, ErrMismatch) {
			t.Fatalf("a signature of one secret checked with another: %v", err)
		}
	}); n != 0 {
		t.Errorf("%.1f allocations per three verifications, want 0", n)
	}
}
