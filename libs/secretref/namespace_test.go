package secretref

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNamespace is issue 13 item 1: a reference resolves only inside the operator's namespace —
// environment variables with its prefix, files inside its directory — and anything else is
// refused both when it is checked (tenant validation) and when it is resolved.
func TestNamespace(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "operator-only")
	for path, v := range map[string]string{filepath.Join(secrets, "acme-sf"): "sf-secret\n", outside: "operator-secret"} {
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(secrets, "escape")); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OWNERSYNC_SECRET_ACME": "acme-secret", "OWNERSYNC_OPERATOR_TOKEN": "operator-token", "PATH": "/usr/bin"}
	ns := Namespace{EnvPrefix: "OWNERSYNC_SECRET_", Dir: secrets}
	r := Resolver{Namespace: ns, Getenv: func(k string) string { return env[k] }}
	for _, tt := range []struct {
		ref, want string
		checkErr  bool // refused by Check as well as Resolve
	}{
		{ref: "env:OWNERSYNC_SECRET_ACME", want: "acme-secret"},
		{ref: "file:" + secrets + "/acme-sf", want: "sf-secret"},
		{ref: "env:OWNERSYNC_OPERATOR_TOKEN", checkErr: true},
		{ref: "env:PATH", checkErr: true},
		{ref: "env:OWNERSYNC_SECRET_", checkErr: true},
		{ref: "file:/proc/self/environ", checkErr: true},
		{ref: "file:" + secrets + "/../operator-only", checkErr: true},
		{ref: "file:" + secrets, checkErr: true},
		{ref: "file:" + secrets + "-other/x", checkErr: true},
		// Inside by name, outside by a symbolic link: refused when resolved.
		{ref: "file:" + secrets + "/escape"},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			cerr := ns.Check(tt.ref)
			if tt.checkErr != (cerr != nil) || cerr != nil && !errors.Is(cerr, ErrOutsideNamespace) {
				t.Errorf("Check = %v, want refused %t", cerr, tt.checkErr)
			}
			got, err := r.Resolve(tt.ref)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Errorf("Resolve = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %q, want a refusal", got)
			}
			for _, v := range env {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the refusal shows a value: %v", err)
				}
			}
			if strings.Contains(err.Error(), "operator-secret") {
				t.Errorf("the refusal shows the file's content: %v", err)
			}
		})
	}
	// The zero namespace resolves nothing: a resolver nobody configured fails closed.
	if _, err := (Resolver{Getenv: func(k string) string { return env[k] }}).Resolve("env:OWNERSYNC_SECRET_ACME"); !errors.Is(err, ErrOutsideNamespace) {
		t.Errorf("a zero namespace resolved a reference: %v", err)
	}
}
