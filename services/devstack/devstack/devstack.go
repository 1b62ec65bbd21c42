// Package devstack runs the whole of ownersync in one process
// (docs/architecture.md#dev-stack-and-sandboxes): embedded nats-server with JetStream and FerretDB
// (SQLite) under one data directory, an SMTP sink writing .eml files to an outbox, and the four
// services, each started through its own exported Run.
package devstack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/ingress/ingress"
	"github.com/ownersync/ownersync/services/mapper/mapper"
	"github.com/ownersync/ownersync/services/notifier/notifier"
	"github.com/ownersync/ownersync/services/writer/writer"
	"github.com/ownersync/ownersync/workbench/embedmongo"
	"github.com/ownersync/ownersync/workbench/embednats"
	"github.com/ownersync/ownersync/workbench/readiness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// Options configure the stack. A port of 0 lets the system pick one: each server binds its own
// listener (the services' listeners are bound here and handed to them), so no port is picked, freed
// and bound again. Start writes the bound ports back into Stack.Opts.
type Options struct {
	DataDir      string
	Host         string
	NATSPort     int
	MongoPort    int
	SMTPPort     int
	IngressPort  int
	MapperPort   int
	WriterPort   int
	NotifierPort int
	// SalesforcePort, HubSpotPort and PlatformPort serve the sandboxes of the demo.
	SalesforcePort int
	HubSpotPort    int
	PlatformPort   int
	// Demo starts the CRM sandboxes, the platform sandbox and the demo tenant.
	Demo bool
	// TenantsFile seeds tenants (mapper's OWNERSYNC_TENANTS_FILE).
	TenantsFile string
	// OperatorToken is the admin API's operator token.
	OperatorToken string
	// PlatformToken is the bearer token of ingress's platform events API.
	PlatformToken string
	// Verbose copies the services' JSON logs to stdout (they always go to <data>/logs/).
	Verbose bool
	// Getenv passes other variables (OTEL_*, OWNERSYNC_LOG_LEVEL) to the services.
	Getenv func(string) string
	// InternalListeners serve each service's /healthz, /readyz and /metrics on a second listener of
	// its own (an ephemeral port on Host), off the public port, as OWNERSYNC_INTERNAL_ADDR does in
	// production; URLs["<service>-internal"] names it.
	InternalListeners bool
	// ExposeUnsafe allows a Host that is not loopback. The dev stack's NATS and FerretDB have no
	// authentication, and the sandboxes' admin APIs and the demo tokens are public knowledge, so
	// binding them beyond this machine must be asked for explicitly (--expose-unsafe).
	ExposeUnsafe bool
}

// ErrNotLoopback is returned by Start for a non-loopback host without ExposeUnsafe.
var ErrNotLoopback = errors.New("the dev stack has no authentication on NATS and FerretDB and publishes " +
	"well-known tokens; it listens on loopback only unless --expose-unsafe is given")

// checkHost refuses a listen host that other machines could reach, unless expose is set.
func checkHost(host string, expose bool) error {
	if expose || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--host %s: %w", host, ErrNotLoopback)
}

// Default development tokens; they only ever guard loopback ports of a developer machine.
const (
	DevOperatorToken = "dev-operator-token-change-me"
	DevPlatformToken = "dev-platform-token-change-me"
)

// DefaultOptions are the ports `make run` uses.
func DefaultOptions() Options {
	return Options{
		DataDir: ".ownersync", Host: "127.0.0.1",
		NATSPort: 4222, MongoPort: 27017, SMTPPort: 2525,
		IngressPort: 8080, MapperPort: 8081, WriterPort: 8082, NotifierPort: 8083,
		SalesforcePort: 8091, HubSpotPort: 8092, PlatformPort: 8093, Demo: true,
		OperatorToken: DevOperatorToken, PlatformToken: DevPlatformToken,
	}
}

// Stack is a running dev stack.
type Stack struct {
	Opts     Options
	NATS     *embednats.Server
	Mongo    *embedmongo.Server
	SMTP     *smtpsink.Sink
	URLs     map[string]string
	Started  time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errMu    sync.Mutex
	errs     []error
	logFiles []*os.File
	demo     *demo
}

// portOf is the port of a host:port or URL.
func portOf(hostport string) int {
	if u, err := url.Parse(hostport); err == nil && u.Host != "" {
		hostport = u.Host
	}
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}

// Start starts everything and returns when every service answers /readyz.
func Start(ctx context.Context, o Options, stdout io.Writer) (_ *Stack, err error) {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if err := checkHost(o.Host, o.ExposeUnsafe); err != nil {
		return nil, err
	}
	s := &Stack{Opts: o, URLs: map[string]string{}, Started: time.Now()}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	for _, d := range []string{"nats", "mongo", "outbox", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.DataDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	addr := func(p int) string { return net.JoinHostPort(o.Host, strconv.Itoa(p)) }

	// The services' listeners first: the services and sandboxes are configured with each other's URLs.
	services := []struct {
		name string
		run  servicekit.RunFunc
		port *int
		l    net.Listener
		il   net.Listener
	}{
		{"mapper", mapper.Run, &o.MapperPort, nil, nil},
		{"ingress", ingress.Run, &o.IngressPort, nil, nil},
		{"writer", writer.Run, &o.WriterPort, nil, nil},
		{"notifier", notifier.Run, &o.NotifierPort, nil, nil},
	}
	defer func() {
		for _, svc := range services {
			for _, l := range []net.Listener{svc.l, svc.il} {
				if l != nil && err != nil {
					_ = l.Close()
				}
			}
		}
	}()
	for i := range services {
		l, err := servicekit.Listen("--"+services[i].name+"-port", addr(*services[i].port))
		if err != nil {
			return nil, err
		}
		services[i].l = l
		*services[i].port = l.Addr().(*net.TCPAddr).Port
		if o.InternalListeners {
			if services[i].il, err = servicekit.Listen(services[i].name+" internal", addr(0)); err != nil {
				return nil, err
			}
		}
	}
	s.Opts = o

	s.NATS, err = embednats.Start(embednats.Options{Dir: filepath.Join(o.DataDir, "nats"), Host: o.Host, Port: o.NATSPort, Name: "ownersync-devstack"})
	if err != nil {
		return nil, err
	}
	o.NATSPort = portOf(s.NATS.URL())
	s.Mongo, err = embedmongo.Start(ctx, embedmongo.Options{Dir: filepath.Join(o.DataDir, "mongo"), Addr: addr(o.MongoPort)})
	if err != nil {
		return nil, err
	}
	o.MongoPort = portOf(s.Mongo.URI())
	smtpLog, err := s.logFile("smtp", stdout, o.Verbose)
	if err != nil {
		return nil, err
	}
	s.SMTP, err = smtpsink.Start(smtpsink.Config{Addr: addr(o.SMTPPort), Dir: filepath.Join(o.DataDir, "outbox"),
		Logger: slog.New(slog.NewJSONHandler(smtpLog, nil))})
	if err != nil {
		return nil, err
	}
	o.SMTPPort = portOf(s.SMTP.Addr())
	s.Opts = o
	s.URLs["nats"] = s.NATS.URL()
	s.URLs["mongodb"] = s.Mongo.URI()
	s.URLs["smtp"] = "smtp://" + addr(o.SMTPPort)
	s.URLs["outbox"] = filepath.Join(o.DataDir, "outbox")

	var sandboxLog io.Writer
	if o.Demo {
		if sandboxLog, err = s.logFile("sandboxes", stdout, o.Verbose); err != nil {
			return nil, err
		}
		path, err := s.startSandboxes(slog.New(slog.NewJSONHandler(sandboxLog, nil)))
		if err != nil {
			return nil, err
		}
		if o.TenantsFile == "" {
			o.TenantsFile = path
			s.Opts.TenantsFile = path
		}
	}
	env := map[string]string{
		"NATS_URL":                   s.NATS.URL(),
		"MONGODB_URI":                s.Mongo.URI(),
		"OWNERSYNC_MONGODB_DATABASE": "ownersync",
		"SMTP_URL":                   "smtp://" + addr(o.SMTPPort),
		"OWNERSYNC_PUBLIC_URL":       "http://" + addr(o.IngressPort),
		"OWNERSYNC_ADMIN_URL":        "http://" + addr(o.MapperPort),
		"OWNERSYNC_INGRESS_URL":      "http://" + addr(o.IngressPort),
		"OWNERSYNC_PLATFORM_TOKEN":   o.PlatformToken,
		"OWNERSYNC_OPERATOR_TOKEN":   o.OperatorToken,
		"OWNERSYNC_TENANTS_FILE":     o.TenantsFile,
		// The sandbox org's outbound messages carry no shared key; production requires one.
		"OWNERSYNC_REQUIRE_SHARED_KEY": "false",
		// mapper writes by _id a few documents per command (per_document, the default): the
		// embedded FerretDB's wrapper indexes the expression FerretDB compares for _id
		// (embedmongo.IDExpression), so those writes are index lookups, not the scans that once
		// made delete+insert the faster choice here.
		// The sandboxes are plain http on this machine; production allows only the CRMs' own hosts.
		"OWNERSYNC_CRM_ANY_HOST": "true",
	}
	if o.Demo {
		for k, v := range demoSecrets {
			env[k] = v
		}
	}
	connectVars, err := s.connectEnv(env["OWNERSYNC_PUBLIC_URL"])
	if err != nil {
		return nil, err
	}
	for k, v := range connectVars {
		env[k] = v
	}
	svcCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for i := range services {
		svc := &services[i]
		out, err := s.logFile(svc.name, stdout, o.Verbose)
		if err != nil {
			return nil, err
		}
		a := svc.l.Addr().String()
		ready := a
		if svc.il != nil {
			ready = svc.il.Addr().String()
		}
		getenv := func(k string) string {
			if k == "OWNERSYNC_INTERNAL_ADDR" {
				return "" // one port per service here: the stack waits for /readyz on it
			}
			if v, ok := env[k]; ok {
				return v
			}
			return o.Getenv(k)
		}
		done := make(chan error, 1)
		l, il := svc.l, svc.il
		svc.l, svc.il = nil, nil // the service owns them now (its HTTP server closes them)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			env := servicekit.Env{Args: []string{svc.name}, Getenv: getenv, Stdout: out, Listener: l}
			if il != nil {
				env.InternalListener = il
			}
			err := svc.run(svcCtx, env)
			_ = l.Close() // when the service failed before serving it
			if il != nil {
				_ = il.Close()
			}
			if err != nil {
				s.addErr(fmt.Errorf("%s: %w", svc.name, err))
			}
			done <- err
		}()
		if err := readiness.Wait(ctx, "http://"+ready+"/readyz", 60*time.Second, done); err != nil {
			return nil, fmt.Errorf("%s: %w (log: %s)", svc.name, err, filepath.Join(o.DataDir, "logs", svc.name+".log"))
		}
		s.URLs[svc.name] = "http://" + a
		if il != nil {
			s.URLs[svc.name+"-internal"] = "http://" + ready
		}
	}
	s.URLs["console"] = s.URLs["mapper"] + "/admin/"
	if o.Demo {
		if err := s.startPlatform(ctx, slog.New(slog.NewJSONHandler(sandboxLog, nil))); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) addErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	s.errs = append(s.errs, err)
}

// Err returns the errors of services that stopped on their own.
func (s *Stack) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.errs...)
}

func (s *Stack) logFile(name string, stdout io.Writer, verbose bool) (io.Writer, error) {
	f, err := os.OpenFile(filepath.Join(s.Opts.DataDir, "logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	s.logFiles = append(s.logFiles, f)
	if verbose && stdout != nil {
		return io.MultiWriter(f, stdout), nil
	}
	return f, nil
}

// Stop stops the services, then the SMTP sink, NATS and FerretDB.
func (s *Stack) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.demo.stop()
	if s.SMTP != nil {
		_ = s.SMTP.Close()
	}
	if s.NATS != nil {
		s.NATS.Stop()
	}
	if s.Mongo != nil {
		s.Mongo.Stop()
	}
	for _, f := range s.logFiles {
		_ = f.Close()
	}
}

// Run parses flags, starts the stack, prints every URL and runs until ctx is cancelled.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o := DefaultOptions()
	o.Getenv = getenv
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.StringVar(&o.DataDir, "data", o.DataDir, "data directory (NATS store, FerretDB files, outbox, logs)")
	fs.StringVar(&o.Host, "host", o.Host, "listen host (loopback unless --expose-unsafe)")
	fs.BoolVar(&o.ExposeUnsafe, "expose-unsafe", false, "allow a non-loopback --host: exposes NATS and FerretDB without authentication, the sandbox admin APIs and the dev tokens")
	fs.IntVar(&o.NATSPort, "nats-port", o.NATSPort, "NATS client port (0: any free port)")
	fs.IntVar(&o.MongoPort, "mongo-port", o.MongoPort, "FerretDB (MongoDB wire protocol) port")
	fs.IntVar(&o.SMTPPort, "smtp-port", o.SMTPPort, "SMTP sink port")
	fs.IntVar(&o.IngressPort, "ingress-port", o.IngressPort, "ingress HTTP port")
	fs.IntVar(&o.MapperPort, "mapper-port", o.MapperPort, "mapper HTTP port (admin API and console)")
	fs.IntVar(&o.WriterPort, "writer-port", o.WriterPort, "writer HTTP port")
	fs.IntVar(&o.NotifierPort, "notifier-port", o.NotifierPort, "notifier HTTP port")
	fs.StringVar(&o.TenantsFile, "tenants", o.TenantsFile, "tenants seed file (YAML)")
	fs.BoolVar(&o.Verbose, "v", false, "copy the services' logs to stdout")
	fs.BoolVar(&o.Demo, "demo", o.Demo, "start the CRM and platform sandboxes with the demo tenant")
	fs.IntVar(&o.SalesforcePort, "salesforce-port", o.SalesforcePort, "Salesforce sandbox port")
	fs.IntVar(&o.HubSpotPort, "hubspot-port", o.HubSpotPort, "HubSpot sandbox port")
	fs.IntVar(&o.PlatformPort, "platform-port", o.PlatformPort, "platform sandbox port")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := Start(ctx, o, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ownersync dev stack ready in %s (data in %s)\n", time.Since(s.Started).Round(time.Millisecond), o.DataDir)
	for _, k := range []string{"console", "ingress", "mapper", "writer", "notifier", "salesforce-sandbox", "hubspot-sandbox",
		"platform-sandbox", "nats", "mongodb", "smtp", "outbox"} {
		if s.URLs[k] != "" {
			fmt.Fprintf(stdout, "  %-18s %s\n", k, s.URLs[k])
		}
	}
	if o.Demo {
		fmt.Fprintf(stdout, "  demo tenant:       %s (admin API: curl -H 'Authorization: Bearer %s' %s/v1/tenants/%s/users/overview)\n",
			DemoTenant, o.OperatorToken, s.URLs["mapper"], DemoTenant)
	}
	fmt.Fprintf(stdout, "  operator token: %s\n  platform token: %s\n  logs: %s\nPress Ctrl-C to stop.\n",
		o.OperatorToken, o.PlatformToken, filepath.Join(o.DataDir, "logs"))
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	stopStart := time.Now()
	s.Stop()
	fmt.Fprintf(stdout, "stopped in %s\n", time.Since(stopStart).Round(time.Millisecond))
	return s.Err()
}
