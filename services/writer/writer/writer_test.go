package writer_test

import (
	"testing"

	"github.com/ownersync/ownersync/services/writer/writer"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestRunServesReadyz runs the service with an internal address: probes and scrapes are served
// there (stacktest waits for its /readyz), the public port serves none of them.
func TestRunServesReadyz(t *testing.T) {
	infra := harness.Start(t)
	addr, internal := harness.FreeAddr(t), harness.FreeAddr(t)
	harness.Service(t, "writer", writer.Run, internal, infra.Env(map[string]string{
		"OWNERSYNC_HTTP_ADDR":     addr,
		"OWNERSYNC_INTERNAL_ADDR": internal,
	}))
	harness.NotFound(t, addr, "/healthz", "/readyz", "/metrics")
}
