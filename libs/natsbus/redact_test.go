package natsbus

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestConnectErrorRedactsURL covers issue 13 item 11: NATS_URL with user:password is never printed
// verbatim in a start-up error.
func TestConnectErrorRedactsURL(t *testing.T) {
	for _, u := range []string{
		"nats://ops:natspw@[::1:4222",    // does not parse
		"nats://ops:natspw@127.0.0.1:1",  // nothing listens
		"nats://s3cr3tt0ken@127.0.0.1:1", // token auth
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := Connect(ctx, Options{URL: u, ConnectTimeout: 200 * time.Millisecond})
		cancel()
		if err == nil {
			t.Fatalf("Connect(%q) succeeded", u)
		}
		for _, secret := range []string{"natspw", "s3cr3tt0ken"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Connect error holds %q: %v", secret, err)
			}
		}
	}
}
