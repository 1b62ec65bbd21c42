package servicekit

import (
	"bytes"
	"context"
	"errors"
	"net"
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

// TestMainBusyAddress: a service whose HTTP or internal address is taken by another process exits
// 1 (a runtime failure, not a configuration error) at once — before connecting to NATS, which is
// unreachable here — with a message that names the variable, the address and that it is in use.
func TestMainBusyAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close() // only its address is used: the run must fail on the busy one before binding it
	run := func(ctx context.Context, env Env) error {
		r := envconfig.New(env.Getenv)
		cfg := ReadConfig(r, "svc", ":9000")
		if err := r.Err(); err != nil {
			return err
		}
		b, err := Start(ctx, cfg, env)
		if err != nil {
			return err
		}
		defer b.Close(context.WithoutCancel(ctx))
		return b.HTTP.Run(ctx)
	}
	for _, tt := range []struct{ name, variable, http, internal string }{
		{"http", "OWNERSYNC_HTTP_ADDR", busy.Addr().String(), ""},
		{"internal", "OWNERSYNC_INTERNAL_ADDR", freeAddr, busy.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"NATS_URL": "nats://127.0.0.1:1", "MONGODB_URI": "mongodb://127.0.0.1:1/",
				"OWNERSYNC_HTTP_ADDR": tt.http, "OWNERSYNC_INTERNAL_ADDR": tt.internal,
			}
			var out, errs bytes.Buffer
			code := Main("svc", run, []string{"svc"}, func(k string) string { return env[k] }, &out, &errs)
			msg := errs.String()
			if code != ExitRuntime || !strings.Contains(msg, tt.variable+" "+busy.Addr().String()) || !strings.Contains(msg, "already in use") {
				t.Errorf("code %d (want %d); stderr: %s", code, ExitRuntime, msg)
			}
		})
	}
}
