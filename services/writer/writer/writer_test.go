package writer_test

import (
	"testing"

	"github.com/ownersync/ownersync/libs/stacktest"
	"github.com/ownersync/ownersync/services/writer/writer"
)

// TestRunServesReadyz runs the service with an internal address: probes and scrapes are served
// there (stacktest waits for its /readyz), the public port serves none of them.
func TestRunServesReadyz(t *testing.T) {
	infra := stacktest.Start(t)
	addr, internal := stacktest.FreeAddr(t), stacktest.FreeAddr(t)
	stacktest.Service(t, "writer", writer.Run, internal, infra.Env(map[string]string{
		"OWNERSYNC_HTTP_ADDR":     addr,
		"OWNERSYNC_INTERNAL_ADDR": internal,
	}))
	stacktest.NotFound(t, addr, "/healthz", "/readyz", "/metrics")
}
