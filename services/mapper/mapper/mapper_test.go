package mapper_test

import (
	"github.com/ownersync/ownersync/libs/servicekit"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/mapper/mapper"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestRunServesReadyz runs the service with an internal address: probes and scrapes are served
// there (the harness waits for its /readyz), the public port serves none of them.
func TestRunServesReadyz(t *testing.T) {
	infra := harness.Start(t)
	addr, _ := harness.ServiceInternal(t, "mapper", mapper.Run, infra.Env(map[string]string{
		"OWNERSYNC_OPERATOR_TOKEN": "operator-token-0123456789",
	}))
	harness.NotFound(t, addr, "/healthz", "/readyz", "/metrics")
}

func TestRunReportsEveryConfigProblem(t *testing.T) {
	err := mapper.Run(t.Context(), servicekit.Env{Getenv: func(k string) string {
		if k == "OWNERSYNC_TENANT_TOKENS" {
			return "acme=short"
		}
		return ""
	}})
	if err == nil {
		t.Fatal("Run with no configuration succeeded")
	}
	for _, want := range []string{"NATS_URL", "MONGODB_URI", "OWNERSYNC_OPERATOR_TOKEN", "OWNERSYNC_TENANT_TOKENS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}
