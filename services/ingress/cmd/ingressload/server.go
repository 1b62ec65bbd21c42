package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/ingress/internal/webhook"
	"github.com/ownersync/ownersync/workbench/embednats"
)

// The server side runs in a child process of the load generator (issue 18: a load generator in the
// measured process takes a third of its CPU and pulls every ratio toward 1). The parent starts
// its own executable with serverEnv=1; the child prints one hello line (JSON) on stdout and
// serves until its stdin closes.
const (
	serverEnv       = "OWNERSYNC_INGRESSLOAD_SERVER"
	serverMemoryEnv = "OWNERSYNC_INGRESSLOAD_MEMORY"
	// serverDisabledEnv=1 configures the load tenant with both providers turned off: ingress then
	// acknowledges and publishes nothing, which the tool must refuse to report as a measurement
	// (its test uses it).
	serverDisabledEnv = "OWNERSYNC_INGRESSLOAD_DISABLED"
)

// hello is the child's first line on stdout.
type hello struct {
	Base    string `json:"base"`    // the measured server: ingress and bare handlers
	Control string `json:"control"` // statistics and profiles, on a listener of its own
	PID     int    `json:"pid"`
	Org18   string `json:"org18"`
	// SharedKey is the Outbound Message key of the load tenant's Salesforce connection (stored as
	// its digest, as for a key ownersync generated; ingress requires it, as in production).
	SharedKey string `json:"shared_key"`
}

// stats is what GET /stats on the control listener answers.
type stats struct {
	// CPUMicros is the child's user + system CPU time so far: ingress (or bare), Echo, the
	// publisher and the embedded NATS server with its file store.
	CPUMicros int64 `json:"cpu_us"`
	// Stored is how many messages the CRM stream holds.
	Stored uint64 `json:"stored"`
}

// serve runs the child: NATS, the handlers, the control listener. It returns when stdin closes or
// ctx ends.
func serve(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "ingressload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := embednats.Start(embednats.Options{Dir: dir, Port: -1})
	if err != nil {
		return err
	}
	defer srv.Stop()
	conn, err := natsbus.Connect(ctx, natsbus.Options{URL: srv.URL(), Name: "ingressload"})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := natsbus.DeclareStreams(ctx, conn.JS, streams.Configs(streams.Options{MemoryStorage: os.Getenv(serverMemoryEnv) == "1"})); err != nil {
		return err
	}
	streamName, err := conn.JS.StreamNameBySubject(ctx, streams.CrmOwnerChanged(loadTenant, provider.HubSpot))
	if err != nil {
		return err
	}
	stream, err := conn.JS.Stream(ctx, streamName)
	if err != nil {
		return err
	}
	pub := natsbus.NewPublisher(conn.JS, nil, 5*time.Second)

	// One server with the real ingress handlers and the bare handlers side by side.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + l.Addr().String()
	org18, _ := sfid.To18(loadOrg15)
	key, keyRef, err := tenant.NewSharedKey()
	if err != nil {
		return err
	}
	enabled := os.Getenv(serverDisabledEnv) != "1"
	tn := &tenant.Tenant{ID: loadTenant,
		Salesforce: &tenant.SFConfig{Settings: tenant.Settings{Enabled: enabled}, OrgID: org18, SharedKeyRef: keyRef},
		HubSpot:    &tenant.HSConfig{Settings: tenant.Settings{Enabled: enabled}, PortalID: loadPortal, AppID: loadApp, ClientSecretRef: "env:LOAD_SECRET"}}
	h, err := webhook.New(webhook.Config{PublicURL: base, Logger: slog.New(slog.DiscardHandler), RequireSharedKey: true}, pub,
		staticTenants{tn}, staticSecrets{"env:LOAD_SECRET": loadSecret})
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	h.Register(e)
	var bareSeq atomic.Int64
	bare := func(p provider.Provider) echo.HandlerFunc {
		subject := streams.CrmOwnerChanged(loadTenant, p)
		return func(c echo.Context) error {
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return err
			}
			msg := nats.NewMsg(subject)
			msg.Data = body
			msg.Header.Set(streams.HeaderContentType, c.Request().Header.Get(echo.HeaderContentType))
			id := "bare:" + strconv.FormatInt(bareSeq.Add(1), 10)
			if _, err := pub.PublishMsg(c.Request().Context(), msg, id); err != nil {
				return c.NoContent(http.StatusServiceUnavailable)
			}
			return c.NoContent(http.StatusOK)
		}
	}
	e.POST("/bare/salesforce", bare(provider.Salesforce))
	e.POST("/bare/hubspot", bare(provider.HubSpot))
	hs := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	defer hs.Close()

	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	control := &http.Server{Handler: controlHandler(stream), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = control.Serve(cl) }()
	defer control.Close()

	line, err := json.Marshal(hello{Base: base, Control: "http://" + cl.Addr().String(), PID: os.Getpid(), Org18: org18, SharedKey: key})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	// The parent closes our stdin when it is done (or dies).
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(stdin))
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// controlHandler serves GET /stats, POST /profile?file=… (start a CPU profile of this process into
// the file) and DELETE /profile (stop it).
func controlHandler(stream jetstream.Stream) http.Handler {
	var (
		mu      sync.Mutex
		profile *os.File
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		info, err := stream.Info(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(stats{CPUMicros: processCPU().Microseconds(), Stored: info.State.Msgs})
	})
	mux.HandleFunc("POST /profile", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if profile != nil {
			http.Error(w, "a profile is running", http.StatusConflict)
			return
		}
		f, err := os.Create(r.URL.Query().Get("file"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		profile = f
	})
	mux.HandleFunc("DELETE /profile", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if profile == nil {
			http.Error(w, "no profile is running", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		err := profile.Close()
		profile = nil
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return mux
}

// server is the parent's handle on the child.
type server struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	hello  hello
	client *http.Client
}

// startServer starts the child and waits for its hello line.
func startServer(ctx context.Context, memory bool) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	if memory {
		cmd.Env = append(cmd.Env, serverMemoryEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server process: %w", err)
	}
	s := &server{cmd: cmd, stdin: stdin, client: &http.Client{Timeout: 30 * time.Second}}
	lines := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &s.hello)
		}
		lines <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-lines:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(time.Minute):
		err = errors.New("no hello line within a minute")
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("server process: %w", err)
	}
	return s, nil
}

// stop closes the child's stdin and waits for it to exit (killing it after 10 s).
func (s *server) stop() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func (s *server) stats(ctx context.Context) (stats, error) {
	var st stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.hello.Control+"/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return st, fmt.Errorf("server stats: %s: %s", resp.Status, b)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *server) profile(ctx context.Context, method, file string) error {
	u := s.hello.Control + "/profile"
	if file != "" {
		u += "?file=" + url.QueryEscape(file)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("server profile: %s: %s", resp.Status, b)
	}
	return nil
}

// measure runs f against the server and fills in the server's and the generator's CPU per
// request and the messages stored, profiling the server into profile when it is not "". A run
// whose acknowledged requests did not each store one message measured something else than
// ingress (a tenant with the provider turned off acknowledges and publishes nothing): it is an
// error.
func (s *server) measure(ctx context.Context, target, profile string, f func() Result) (Result, error) {
	st0, err := s.stats(ctx)
	if err != nil {
		return Result{}, err
	}
	if profile != "" {
		if err := s.profile(ctx, http.MethodPost, profile); err != nil {
			return Result{}, err
		}
	}
	gen0 := processCPU()
	res := f()
	gen := processCPU() - gen0
	if profile != "" {
		if err := s.profile(ctx, http.MethodDelete, ""); err != nil {
			return Result{}, err
		}
		res.Profile = profile
	}
	st1, err := s.stats(ctx)
	if err != nil {
		return Result{}, err
	}
	res.Stored = st1.Stored - st0.Stored
	if res.Requests > 0 {
		res.CPUMicros = float64(st1.CPUMicros-st0.CPUMicros) / float64(res.Requests)
		res.GenCPUMicros = float64(gen.Microseconds()) / float64(res.Requests)
	}
	// A request that failed (503 after a publish timeout) may still have stored its message.
	if acked := uint64(res.Requests - res.Errors); res.Stored < acked || res.Stored > uint64(res.Requests) {
		return res, fmt.Errorf("%s: %d requests acknowledged (%d sent) but %d messages stored: the run did not measure publishing",
			target, acked, res.Requests, res.Stored)
	}
	return res, ctx.Err()
}

type staticTenants struct{ t *tenant.Tenant }

func (s staticTenants) BySalesforceOrg(_ context.Context, org string) (*tenant.Tenant, error) {
	if sfid.Equal(org, s.t.Salesforce.OrgID) {
		return s.t, nil
	}
	return nil, tenant.ErrNotFound
}

func (s staticTenants) ByHubSpotPortal(_ context.Context, portal int64) (*tenant.Tenant, error) {
	if portal == s.t.HubSpot.PortalID {
		return s.t, nil
	}
	return nil, tenant.ErrNotFound
}

type staticSecrets map[string]string

func (s staticSecrets) Resolve(ref string) (string, error) {
	if v, ok := s[ref]; ok {
		return v, nil
	}
	return "", errors.New("no such secret")
}
