package writer_test

import (
	"testing"

	"github.com/ownersync/ownersync/libs/stacktest"
	"github.com/ownersync/ownersync/services/writer/writer"
)

func TestRunServesReadyz(t *testing.T) {
	infra := stacktest.Start(t)
	addr := stacktest.FreeAddr(t)
	stacktest.Service(t, "writer", writer.Run, addr, infra.Env(map[string]string{"OWNERSYNC_HTTP_ADDR": addr}))
}
