package writer_test

import (
	"testing"

	"github.com/ownersync/ownersync/services/writer/writer"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestRunServesReadyz runs the service with an internal address: probes and scrapes are served
// there (the harness waits for its /readyz), the public port serves none of them.
func TestRunServesReadyz(t *testing.T) {
	infra := harness.Start(t)
	addr, _ := harness.ServiceInternal(t, "writer", writer.Run, infra.Env(map[string]string{}))
	harness.NotFound(t, addr, "/healthz", "/readyz", "/metrics")
}
