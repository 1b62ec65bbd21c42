package devstack

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// TestRunSaysWhichPortIsInUse: a dev stack whose mapper port another process holds stops before
// it starts anything and names the flag, the address and that it is in use.
func TestRunSaysWhichPortIsInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	err = Run(t.Context(), []string{"devstack", "--data", t.TempDir(), "--demo=false", "--mapper-port", port,
		"--ingress-port", "0", "--writer-port", "0", "--notifier-port", "0", "--nats-port", "0", "--mongo-port", "0", "--smtp-port", "0"},
		func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--mapper-port "+busy.Addr().String()) || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Run with a busy mapper port = %v", err)
	}
}
