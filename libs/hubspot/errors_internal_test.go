package hubspot

import (
	"github.com/ownersync/ownersync/libs/retry"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzParseErrorResponse feeds error bodies (the golden ones as seeds) to the parser: it must not
// panic, must keep the status, and a 429's wait must never be negative.
func FuzzParseErrorResponse(f *testing.F) {
	for _, name := range []string{"error_validation.json", "error_not_found.json", "rate_limit_ten_secondly.json", "rate_limit_daily.json", "batch_update_207.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(429, b, "")
	}
	f.Add(423, []byte(""), "1")
	f.Add(477, []byte(`{"status":"error"}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		ae := parseErrorResponse(status, h, body, RateLimit{}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if ae.HTTPStatus != status {
			t.Fatalf("status %d became %d", status, ae.HTTPStatus)
		}
		if ae.RetryAfter() < 0 {
			t.Fatalf("negative RetryAfter %v", ae.RetryAfter())
		}
		if status == StatusLocked && ae.RetryAfter() < LockWait {
			t.Fatalf("423 wait %v < %v", ae.RetryAfter(), LockWait)
		}
		_ = ae.Error()
		_ = Transient(ae)
	})
}

func TestParseRetryAfterBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"-3", 0}, {"0", 0}, {"120", 2 * time.Minute}, {"86400", 24 * time.Hour},
		{"99999999999999999", 48 * time.Hour}, {"Thu, 01 Jan 2026 00:00:30 GMT", 30 * time.Second},
		{"Wed, 31 Dec 2025 23:00:00 GMT", 0}, {"soon", 0},
	}
	for _, tt := range tests {
		if got := retry.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("retry.ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
