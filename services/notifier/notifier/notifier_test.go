package notifier_test

import (
	"github.com/ownersync/ownersync/libs/servicekit"
	"io"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/services/notifier/notifier"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestRunServesReadyz runs the service with an internal address: probes and scrapes are served
// there (the harness waits for its /readyz), the public port serves none of them.
func TestRunServesReadyz(t *testing.T) {
	infra := harness.Start(t)
	addr, _ := harness.ServiceInternal(t, "notifier", notifier.Run, infra.Env(map[string]string{
		"SMTP_URL": "smtp://127.0.0.1:2525",
	}))
	harness.NotFound(t, addr, "/healthz", "/readyz", "/metrics")
}

// TestStartupErrorsRedactURLs covers issue 13 item 11 for notifier: an unparseable SMTP_URL and a
// NATS_URL with user:password are named in the start-up error without their credentials.
func TestStartupErrorsRedactURLs(t *testing.T) {
	env := map[string]string{
		"SMTP_URL":            "smtp://mailer:hunter2%zz@smtp.example.com:587",
		"NATS_URL":            "nats://ops:natspw@127.0.0.1:1",
		"MONGODB_URI":         "mongodb://root:mongopw@127.0.0.1:1/",
		"OWNERSYNC_ADMIN_URL": "ftp://admin:adminpw@console.example.com",
	}
	err := notifier.Run(t.Context(), servicekit.Env{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard})
	if err == nil {
		t.Fatal("Run with an unparseable SMTP_URL succeeded")
	}
	for _, secret := range []string{"hunter2", "natspw", "mongopw", "adminpw"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("start-up error holds %q:\n%v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "SMTP_URL") {
		t.Errorf("start-up error does not name SMTP_URL:\n%v", err)
	}
}
