// Package servicekit is the common start-up of an ownersync service (STYLE "a service is a small
// house"): read the shared configuration, set up telemetry, connect NATS, declare the streams,
// connect MongoDB, and build the HTTP server with /healthz, /readyz and /metrics. Close tears it
// down in the order docs/architecture.md#operations asks: NATS, then MongoDB, then telemetry (the
// caller stops HTTP and consumers first by cancelling their context).
package servicekit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/health"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/redact"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/secretref"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/telemetry"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
)

var secretPrefixRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{3,}$`)

// Version is the build version, set with -ldflags "-X …/servicekit.Version=…".
var Version = "dev"

// Config is the configuration every service shares.
type Config struct {
	Service       string
	NATSURL       string
	MongoURI      string
	MongoDatabase string
	MongoTimeout  time.Duration
	HTTPAddr      string
	// HTTPListenFD, when above 0, is an inherited file descriptor of a listening socket to serve on
	// instead of binding HTTPAddr: a parent that restarts the service keeps the port bound throughout.
	HTTPListenFD    int
	ShutdownTimeout time.Duration
	Streams         streams.Options
	// LogLevel is OWNERSYNC_LOG_LEVEL (debug, info, warn, error).
	LogLevel slog.Level
	// TenantLabel keeps the tenant label on metrics (OWNERSYNC_METRICS_TENANT_LABEL); turn it off
	// when there are so many tenants that a series per tenant is too many.
	TenantLabel bool
	// InternalAddr, when set, serves /healthz, /readyz and /metrics on their own listener, off the
	// public port (Kubernetes probes and Prometheus use it; the webhook port faces the internet).
	InternalAddr string
	// MongoWriteConcern is the write concern of every MongoDB write ("majority", or a number of
	// nodes): acknowledged work must survive a primary failover.
	MongoWriteConcern string
	// TrustedProxies are the proxies whose X-Forwarded-For names the client
	// (OWNERSYNC_TRUSTED_PROXIES: CIDR ranges or addresses, comma-separated; none by default).
	TrustedProxies []netip.Prefix
	// StoredSecretKeys are the key-encryption keys of the tokens Connect flows store
	// (OWNERSYNC_STORED_SECRET_KEYS, "id:base64[,id:base64…]", first primary; libs/secretbox).
	// Unset: nothing can be connected through the console and stored: references do not resolve.
	StoredSecretKeys *secretbox.Keyring
	// TenantCache is how often the service's tenant cache reloads every tenant
	// (OWNERSYNC_TENANT_REFRESH_INTERVAL, default 10 s; a change made through mapper reaches the
	// others at once on ownersync.tenant.changed) and the least time between the reloads that a
	// lookup of an unknown source causes (1 s, so a flood of webhooks from an unknown portal cannot
	// hammer MongoDB).
	TenantCache tenantstore.CacheOptions
	// Connections is the operator's policy for tenant connections (issue 13 item 1): the secret
	// namespace (OWNERSYNC_SECRET_ENV_PREFIX, OWNERSYNC_SECRETS_DIR) that references must stay in,
	// and whether CRM URLs may name any host (OWNERSYNC_CRM_ANY_HOST, sandboxes and tests only).
	Connections tenant.Policy
}

// ReadConfig reads the shared variables; service-specific ones are read by the caller on the same
// reader so that every problem is reported at once.
func ReadConfig(r *envconfig.Reader, service, defaultAddr string) Config {
	c := Config{
		Service:         service,
		NATSURL:         r.Required("NATS_URL"),
		MongoURI:        r.Required("MONGODB_URI"),
		MongoDatabase:   r.String("OWNERSYNC_MONGODB_DATABASE", "ownersync"),
		MongoTimeout:    r.Duration("OWNERSYNC_MONGODB_TIMEOUT", 2*time.Minute),
		HTTPAddr:        r.String("OWNERSYNC_HTTP_ADDR", defaultAddr),
		HTTPListenFD:    r.Int("OWNERSYNC_HTTP_LISTEN_FD", 0, 0, 1<<20),
		ShutdownTimeout: r.Duration("OWNERSYNC_SHUTDOWN_TIMEOUT", 10*time.Second),
		Streams: streams.Options{
			Replicas:           r.Int("OWNERSYNC_STREAM_REPLICAS", 1, 1, 5),
			MaxAge:             r.Duration("OWNERSYNC_STREAM_MAX_AGE", 7*24*time.Hour),
			CRMDuplicates:      r.Duration("OWNERSYNC_CRM_DUPLICATE_WINDOW", 24*time.Hour),
			PlatformDuplicates: r.Duration("OWNERSYNC_PLATFORM_DUPLICATE_WINDOW", 10*time.Minute),
		},
		TenantLabel:       r.Bool("OWNERSYNC_METRICS_TENANT_LABEL", true),
		InternalAddr:      r.String("OWNERSYNC_INTERNAL_ADDR", ""),
		MongoWriteConcern: r.String("OWNERSYNC_MONGODB_WRITE_CONCERN", "majority"),
		TenantCache: tenantstore.CacheOptions{
			Interval:   r.Duration("OWNERSYNC_TENANT_REFRESH_INTERVAL", 10*time.Second),
			MinRefresh: time.Second,
		},
		Connections: tenant.Policy{
			Secrets: secretref.Namespace{
				EnvPrefix: r.String("OWNERSYNC_SECRET_ENV_PREFIX", "OWNERSYNC_SECRET_"),
				Dir:       r.String("OWNERSYNC_SECRETS_DIR", "/run/secrets/ownersync"),
			},
			AnyCRMHost: r.Bool("OWNERSYNC_CRM_ANY_HOST", false),
		},
	}
	if c.TenantCache.Interval <= 0 {
		r.Problem("OWNERSYNC_TENANT_REFRESH_INTERVAL must be longer than zero")
	}
	if p := c.Connections.Secrets.EnvPrefix; !secretPrefixRE.MatchString(p) {
		r.Problem("OWNERSYNC_SECRET_ENV_PREFIX=%q must be at least 4 characters of A-Z, 0-9 and _ (a prefix no other variable of the process has)", p)
	}
	if d := c.Connections.Secrets.Dir; !filepath.IsAbs(d) || filepath.Clean(d) == "/" {
		r.Problem("OWNERSYNC_SECRETS_DIR=%q must be an absolute directory other than /", d)
	}
	if v := r.String("OWNERSYNC_STORED_SECRET_KEYS", ""); v != "" {
		kr, err := secretbox.ParseKeyring(v)
		if err != nil {
			r.Problem("OWNERSYNC_STORED_SECRET_KEYS: %v", err)
		}
		c.StoredSecretKeys = kr
	}
	if _, err := mongodb.ParseWriteConcern(c.MongoWriteConcern); err != nil {
		r.Problem("OWNERSYNC_MONGODB_WRITE_CONCERN must be \"majority\" or a number of nodes of at least 1")
	}
	tp, err := echoserver.ParsePrefixes(r.List("OWNERSYNC_TRUSTED_PROXIES"))
	if err != nil {
		r.Problem("OWNERSYNC_TRUSTED_PROXIES: %v", err)
	}
	c.TrustedProxies = tp
	if v := r.String("OWNERSYNC_LOG_LEVEL", "info"); c.LogLevel.UnmarshalText([]byte(v)) != nil {
		r.Problem("OWNERSYNC_LOG_LEVEL=%q must be debug, info, warn or error", v)
	}
	return c
}

// Env is what a service's Run receives from its process — or from the dev stack and the tests that
// run it in process.
type Env struct {
	// Args are the command-line arguments, the program name first.
	Args []string
	// Getenv reads the configuration.
	Getenv func(string) string
	// Stdout receives the JSON logs.
	Stdout io.Writer
	// Listener, when set, is the HTTP listener the service serves on, and OWNERSYNC_HTTP_ADDR is not
	// bound. The dev stack and tests bind 127.0.0.1:0 themselves and pass it, so that no port is
	// picked, freed and bound again (another process can take it in between).
	Listener net.Listener
	// InternalListener, when set, serves /healthz, /readyz and /metrics off the public port, as
	// OWNERSYNC_INTERNAL_ADDR does, on a listener the caller bound.
	InternalListener net.Listener
}

// RunFunc is a service's exported Run.
type RunFunc func(ctx context.Context, env Env) error

// Base is what a running service holds.
type Base struct {
	Config Config
	Tel    *telemetry.Telemetry
	Log    *slog.Logger
	Bus    *natsbus.Conn
	Pub    *natsbus.Publisher
	Mongo  *mongodb.Conn
	// Stored is the encrypted store of Connect-flow tokens (nil without StoredSecretKeys).
	Stored *secretbox.Store
	Health *health.Checker
	HTTP   *echoserver.Server

	// bound are the listeners Start bound itself; Close closes them in case HTTP never served.
	bound []net.Listener
}

// Start sets up telemetry, NATS (declaring the streams) and MongoDB, and builds the HTTP server.
// On error everything opened so far is closed.
func Start(ctx context.Context, cfg Config, env Env) (_ *Base, err error) {
	b := &Base{Config: cfg, Health: health.New()}
	b.Tel, err = telemetry.Setup(ctx, telemetry.Options{Service: cfg.Service, Version: Version,
		Getenv: env.Getenv, LogOutput: env.Stdout, LogLevel: cfg.LogLevel, DropTenantLabel: !cfg.TenantLabel})
	if err != nil {
		return nil, err
	}
	b.Log = b.Tel.Logger
	// The listeners are bound first: a port that another process holds is reported at once, not
	// after NATS and MongoDB were reached (or not).
	defer func() {
		if err != nil {
			b.Close(context.WithoutCancel(ctx))
		}
	}()
	l, err := HTTPListener(cfg, env)
	if err != nil {
		return nil, err
	}
	if l == nil {
		if l, err = Listen("OWNERSYNC_HTTP_ADDR", cfg.HTTPAddr); err != nil {
			return nil, err
		}
		b.bound = append(b.bound, l)
	}
	il := env.InternalListener
	if il == nil && cfg.InternalAddr != "" {
		if il, err = Listen("OWNERSYNC_INTERNAL_ADDR", cfg.InternalAddr); err != nil {
			return nil, err
		}
		b.bound = append(b.bound, il)
	}
	b.Bus, err = natsbus.Connect(ctx, natsbus.Options{URL: cfg.NATSURL, Name: "ownersync-" + cfg.Service, Logger: b.Log})
	if err != nil {
		return nil, err
	}
	if err = natsbus.DeclareStreams(ctx, b.Bus.JS, streams.Configs(cfg.Streams)); err != nil {
		return nil, err
	}
	b.Pub = natsbus.NewPublisher(b.Bus.JS, b.Tel.TracerProvider, 5*time.Second)
	b.Pub.Observe(b.Tel.MeterProvider)
	if err = natsbus.ObserveDLQ(b.Tel.MeterProvider, b.Bus.JS, cfg.Service); err != nil {
		return nil, err
	}
	b.Health.Add("nats", b.Bus.Ping)
	b.Mongo, err = mongodb.Connect(ctx, mongodb.Options{URI: cfg.MongoURI, Database: cfg.MongoDatabase, OperationTimeout: cfg.MongoTimeout, WriteConcern: cfg.MongoWriteConcern, AppName: "ownersync-" + cfg.Service, Logger: b.Log, TracerProvider: b.Tel.TracerProvider})
	if err != nil {
		// The driver's errors may quote the URI; it never reaches a log with its credentials.
		return nil, redact.Error(err, cfg.MongoURI)
	}
	if cfg.StoredSecretKeys != nil {
		if err := mongodb.EnsureIndexes(ctx, b.Mongo.DB, secretbox.Indexes); err != nil {
			return nil, err
		}
		b.Stored = secretbox.NewStore(b.Mongo.DB, cfg.StoredSecretKeys)
	}
	b.Health.Add("mongodb", b.Mongo.Ping)
	b.HTTP = echoserver.New(echoserver.Options{
		Service:          cfg.Service,
		Addr:             cfg.HTTPAddr,
		InternalAddr:     cfg.InternalAddr,
		Listener:         l,
		InternalListener: il,
		ShutdownTimeout:  cfg.ShutdownTimeout,
		Logger:           b.Log,
		TracerProvider:   b.Tel.TracerProvider,
		MeterProvider:    b.Tel.MeterProvider,
		Health:           b.Health,
		Metrics:          b.Tel.MetricsHandler(),
		TrustedProxies:   cfg.TrustedProxies,
	})
	return b, nil
}

// Listen binds a service's address. An address another process holds is reported as such, with
// the variable that names it.
func Listen(variable, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s %s: the address is already in use (another process listens on it; stop it or choose another address)", variable, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", variable, addr, err)
	}
	return l, nil
}

// HTTPListener is the listener the service serves on: env.Listener, else the inherited descriptor
// cfg.HTTPListenFD, else nil (the HTTP server binds cfg.HTTPAddr).
func HTTPListener(cfg Config, env Env) (net.Listener, error) {
	if env.Listener != nil || cfg.HTTPListenFD <= 0 {
		return env.Listener, nil
	}
	f := os.NewFile(uintptr(cfg.HTTPListenFD), "http-listener")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("OWNERSYNC_HTTP_LISTEN_FD=%d: %w", cfg.HTTPListenFD, err)
	}
	return l, nil
}

// Close drains NATS, disconnects MongoDB and flushes telemetry, in that order.
func (b *Base) Close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, l := range b.bound {
		_ = l.Close() // already closed when HTTP served and shut down
	}
	if b.Bus != nil {
		b.Bus.Close()
	}
	if b.Mongo != nil {
		if err := b.Mongo.Close(ctx); err != nil && b.Log != nil {
			b.Log.Warn("mongodb disconnect", "error", err)
		}
	}
	if b.Tel != nil {
		_ = b.Tel.Shutdown(ctx)
	}
}

// ConsumerOptions fills the logging, tracing and metrics fields of consumer options.
func (b *Base) ConsumerOptions(o natsbus.ConsumerOptions) natsbus.ConsumerOptions {
	o.Service = b.Config.Service
	o.Logger = b.Log
	o.Tracer = b.Tel.TracerProvider
	o.Meter = b.Tel.MeterProvider
	return o
}

// Consumer declares the durable consumer o (with ConsumerOptions' fields filled in) and adds it to
// /readyz as "consumer <durable>".
func (b *Base) Consumer(ctx context.Context, o natsbus.ConsumerOptions) (*natsbus.Consumer, error) {
	c, err := natsbus.NewConsumer(ctx, b.Bus, b.ConsumerOptions(o))
	if err != nil {
		return nil, err
	}
	b.Health.Add("consumer "+o.Config.Durable, c.Ready)
	return c, nil
}

// Ready logs that the service is ready with its address.
func (b *Base) Ready(ctx context.Context) {
	addr, err := b.HTTP.Addr(ctx)
	if err != nil {
		return
	}
	attrs := []any{"http", fmt.Sprintf("http://%s", addr)}
	if internal, err := b.HTTP.InternalAddr(ctx); err == nil && internal != nil {
		attrs = append(attrs, "internal", fmt.Sprintf("http://%s", internal))
	}
	b.Log.Info("service ready", attrs...)
}

// ServiceConfig is a service's configuration: its own settings and the base part every service
// has (internal/config.Config of each service).
type ServiceConfig interface{ BaseConfig() Config }

// Run is the preamble of every service's Run: it loads the service's configuration from env with
// load, starts the base (telemetry, NATS, MongoDB, HTTP) with the configuration's base part, calls
// wire, which connects the service's parts and blocks while they run, and closes the base when
// wire returns.
func Run[C ServiceConfig](ctx context.Context, env Env, load func(getenv func(string) string) (C, error),
	wire func(ctx context.Context, env Env, cfg C, base *Base) error) error {
	cfg, err := load(env.Getenv)
	if err != nil {
		return err
	}
	base, err := Start(ctx, cfg.BaseConfig(), env)
	if err != nil {
		return err
	}
	defer base.Close(context.WithoutCancel(ctx))
	return wire(ctx, env, cfg, base)
}

// FollowTenants loads every tenant into cache and keeps it current from the tenant-change
// announcements on the base's NATS connection; stop ends the following.
func (b *Base) FollowTenants(ctx context.Context, cache *tenantstore.Cache) (stop func(), err error) {
	if err := cache.Refresh(ctx); err != nil {
		return nil, err
	}
	return cache.Follow(b.Bus.NC)
}
