package ingress_test

import (
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/stacktest"
	"github.com/ownersync/ownersync/services/ingress/ingress"
)

func TestRunServesReadyz(t *testing.T) {
	infra := stacktest.Start(t)
	addr := stacktest.FreeAddr(t)
	stacktest.Service(t, "ingress", ingress.Run, addr, infra.Env(map[string]string{
		"OWNERSYNC_HTTP_ADDR":      addr,
		"OWNERSYNC_PUBLIC_URL":     "https://hooks.example.com",
		"OWNERSYNC_PLATFORM_TOKEN": "platform-token-0123456789",
	}))
}

func TestRunReportsEveryConfigProblem(t *testing.T) {
	err := ingress.Run(t.Context(), nil, func(string) string { return "" }, nil)
	if err == nil {
		t.Fatal("Run with no configuration succeeded")
	}
	for _, want := range []string{"NATS_URL", "MONGODB_URI", "OWNERSYNC_PUBLIC_URL", "OWNERSYNC_PLATFORM_TOKEN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}
