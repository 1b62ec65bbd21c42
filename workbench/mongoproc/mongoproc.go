// Package mongoproc starts the embedded FerretDB (command workbench/embedmongo/cmd/embedmongo) in a
// child process and hands back its mongodb:// URI. It imports nothing of FerretDB, so a module whose
// tests or tools need a real MongoDB wire-protocol server (libs, the four services) does not require
// FerretDB, pgx, SQLite and the rest in its go.mod: only the workbench module and the dev stack do.
//
// The command is built once per process with `go build` into the user cache directory (the build
// cache keeps that quick after the first time) under a file lock, so that test binaries running in
// parallel share one build. OWNERSYNC_EMBEDMONGO_BIN names a prebuilt binary instead.
package mongoproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a server.
type Options struct {
	// Dir holds the SQLite databases (required; a restart on the same Dir keeps the data).
	Dir string
	// Addr is the listen address; default 127.0.0.1:0 (the child binds a port the system picks).
	Addr string
	// Stderr receives the child's standard error (nil: discarded).
	Stderr io.Writer
}

// Server is a running FerretDB child process.
type Server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	uri   string
	done  chan struct{}
	once  sync.Once
}

// Start builds the command if needed, starts it and waits for its URI.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("mongoproc: Dir is required")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-dir", o.Dir, "-addr", o.Addr)
	cmd.Stderr = o.Stderr
	// If the parent dies without Stop (a test binary killed by its timeout), the child goes too:
	// the kernel signals it, and its stdin reaches EOF.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mongoproc: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "mongodb://") {
			s.Stop()
			return nil, fmt.Errorf("mongoproc: %s did not start (first line %q)", bin, line)
		}
		s.uri = line
		return s, nil
	case <-time.After(60 * time.Second):
		s.Stop()
		return nil, errors.New("mongoproc: no URI from the FerretDB process within 60 s")
	case <-ctx.Done():
		s.Stop()
		return nil, ctx.Err()
	}
}

// URI is the mongodb:// URI of the server.
func (s *Server) URI() string { return s.uri }

// Stop asks the child to stop (its stdin closes), waits up to 10 s, then kills it.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Binary returns the path of the embedmongo command, building it on first use.
func Binary() (string, error) {
	buildOnce.Do(func() { buildBin, buildErr = build() })
	return buildBin, buildErr
}

func build() (string, error) {
	if p := os.Getenv("OWNERSYNC_EMBEDMONGO_BIN"); p != "" {
		return p, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", errors.New("mongoproc: cannot locate the workbench sources (built with -trimpath?); set OWNERSYNC_EMBEDMONGO_BIN")
	}
	workbench := filepath.Dir(filepath.Dir(file))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ownersync")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mongoproc: %w", err)
	}
	out := filepath.Join(dir, "embedmongo")
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("mongoproc: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("mongoproc: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	// go build relinks only when a dependency changed; otherwise it leaves the file as it is.
	cmd := exec.Command("go", "build", "-o", out, "./embedmongo/cmd/embedmongo")
	cmd.Dir = workbench
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mongoproc: go build embedmongo: %v\n%s", err, b)
	}
	return out, nil
}

// Process is the child process (tests check that Stop ends it).
func (s *Server) Process() *os.Process { return s.cmd.Process }
