package servicekit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/envconfig"
)

// TestMainExitCodesAndFlags: -version prints version and commit, -h lists the variables with
// their defaults, a configuration error exits 2 and a runtime failure 1.
func TestMainExitCodesAndFlags(t *testing.T) {
	run := func(_ context.Context, env Env) error {
		r := envconfig.New(env.Getenv)
		ReadConfig(r, "svc", ":9000")
		if err := r.Err(); err != nil {
			return err
		}
		return errors.New("nats: connection refused")
	}
	env := map[string]string{"NATS_URL": "nats://x", "MONGODB_URI": "mongodb://x"}
	for _, tt := range []struct {
		name      string
		args      []string
		env       map[string]string
		code      int
		out, errs string
	}{
		{"version", []string{"svc", "-version"}, nil, 0, "svc dev (commit unknown)", ""},
		{"help", []string{"svc", "-h"}, nil, 0, "", "OWNERSYNC_HTTP_ADDR :9000"},
		{"config error", []string{"svc"}, map[string]string{"OWNERSYNC_LOG_LEVEL": "loud"}, ExitConfig, "", "OWNERSYNC_LOG_LEVEL"},
		{"runtime failure", []string{"svc"}, env, ExitRuntime, "", "connection refused"},
		{"bad flag", []string{"svc", "-nope"}, nil, ExitConfig, "", "-nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := Main("svc", run, tt.args, func(k string) string { return tt.env[k] }, &out, &errs)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(strings.Join(strings.Fields(errs.String()), " "), tt.errs) {
				t.Errorf("code %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errs.String())
			}
		})
	}
}
