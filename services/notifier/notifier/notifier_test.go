package notifier_test

import (
	"testing"

	"github.com/ownersync/ownersync/libs/stacktest"
	"github.com/ownersync/ownersync/services/notifier/notifier"
)

func TestRunServesReadyz(t *testing.T) {
	infra := stacktest.Start(t)
	addr := stacktest.FreeAddr(t)
	stacktest.Service(t, "notifier", notifier.Run, addr, infra.Env(map[string]string{
		"OWNERSYNC_HTTP_ADDR": addr,
		"SMTP_URL":            "smtp://127.0.0.1:2525",
	}))
}
