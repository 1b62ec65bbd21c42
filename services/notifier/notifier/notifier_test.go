package notifier_test

import (
	"testing"

	"github.com/ownersync/ownersync/libs/stacktest"
	"github.com/ownersync/ownersync/services/notifier/notifier"
)

// TestRunServesReadyz runs the service with an internal address: probes and scrapes are served
// there (stacktest waits for its /readyz), the public port serves none of them.
func TestRunServesReadyz(t *testing.T) {
	infra := stacktest.Start(t)
	addr, internal := stacktest.FreeAddr(t), stacktest.FreeAddr(t)
	stacktest.Service(t, "notifier", notifier.Run, internal, infra.Env(map[string]string{
		"OWNERSYNC_INTERNAL_ADDR": internal,
		"OWNERSYNC_HTTP_ADDR":     addr,
		"SMTP_URL":                "smtp://127.0.0.1:2525",
	}))
	stacktest.NotFound(t, addr, "/healthz", "/readyz", "/metrics")
}
