// Package readiness waits for an in-process service to answer /readyz. The dev stack and the test
// harness share it; it does not import testing, so the devstack binary does not link it.
package readiness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Wait polls url until it answers 200, the deadline passes, or done yields (the service exited).
func Wait(ctx context.Context, url string, within time.Duration, done <-chan error) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("exited before ready: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %s", within, last)
}
