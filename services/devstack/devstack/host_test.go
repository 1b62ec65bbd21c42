package devstack

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckHostRefusesNonLoopback(t *testing.T) {
	for _, tt := range []struct {
		host   string
		expose bool
		ok     bool
	}{
		{host: "127.0.0.1", ok: true},
		{host: "127.0.0.2", ok: true},
		{host: "::1", ok: true},
		{host: "localhost", ok: true},
		{host: "0.0.0.0"},
		{host: "::"},
		{host: "192.168.1.10"},
		{host: "devbox.example.com"},
		{host: "0.0.0.0", expose: true, ok: true},
		{host: "192.168.1.10", expose: true, ok: true},
	} {
		err := checkHost(tt.host, tt.expose)
		if tt.ok && err != nil {
			t.Errorf("checkHost(%q, %v) = %v, want nil", tt.host, tt.expose, err)
		}
		if !tt.ok && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("checkHost(%q, %v) = %v, want ErrNotLoopback", tt.host, tt.expose, err)
		}
	}
}

// TestRunRefusesAllInterfacesWithoutFlag: `devstack --host 0.0.0.0` stops before it creates its
// data directory or binds anything.
func TestRunRefusesAllInterfacesWithoutFlag(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	err := Run(t.Context(), []string{"devstack", "--host", "0.0.0.0", "--data", data}, func(string) string { return "" }, io.Discard)
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Run --host 0.0.0.0 = %v, want ErrNotLoopback", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory created before the host was refused: %v", err)
	}
}
