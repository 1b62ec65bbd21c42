// Package echoserver is the HTTP server every ownersync service runs: Echo with timeouts, tracing,
// /healthz, /readyz and /metrics, one JSON error shape ({"error":{"code","message"}}) and graceful
// shutdown. With an internal address the three operational routes move to a second listener, so
// the public port (webhooks, admin API) never exposes metrics or dependency state.
package echoserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ownersync/ownersync/libs/health"
)

// Options configure the server.
type Options struct {
	Service string
	// Addr is the public listen address: the service's own routes (bound by Run unless Listener is set).
	Addr string
	// Listener, when set, is served as the public listener instead of binding Addr (Run closes it
	// when it returns).
	Listener net.Listener
	// InternalAddr, when set, is a second listen address that alone serves /healthz, /readyz and
	// /metrics (for probes and scrapers inside the cluster); the public address then serves none of
	// them. Empty keeps all routes on Addr.
	InternalAddr string
	// InternalListener, when set, is served as the internal listener instead of binding
	// InternalAddr (and turns the internal listener on like InternalAddr does).
	InternalListener  net.Listener
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	Logger            *slog.Logger
	TracerProvider    trace.TracerProvider
	// MeterProvider records http.server.request.duration by route and status (nil: not recorded).
	MeterProvider metric.MeterProvider
	Health        *health.Checker
	Metrics       http.Handler
	// TrustedProxies are the addresses of the reverse proxies / load balancers in front of the
	// service (OWNERSYNC_TRUSTED_PROXIES). Only a connection from one of them may name the client
	// with X-Forwarded-For; everyone else is known by their connection address. Empty trusts no
	// header at all (c.RealIP() is the peer address) — loopback and private ranges included.
	TrustedProxies []netip.Prefix
}

// Server is a service's HTTP server.
type Server struct {
	E        *echo.Echo
	o        Options
	internal *http.Server // nil without Options.InternalAddr
	mu       sync.Mutex
	addr     net.Addr
	intAddr  net.Addr
	up       chan struct{}
}

// APIError is an error with an HTTP status and a stable code, rendered as
// {"error":{"code":…,"message":…}}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an APIError.
func Errorf(status int, code, format string, a ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// New builds the server with the common routes.
func New(o Options) *Server {
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 5 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Server.ReadHeaderTimeout = o.ReadHeaderTimeout
	e.Server.ReadTimeout = o.ReadTimeout
	e.Server.WriteTimeout = o.WriteTimeout
	e.Server.IdleTimeout = o.IdleTimeout
	e.Server.MaxHeaderBytes = 64 << 10
	e.IPExtractor = ClientIP(o.TrustedProxies)
	s := &Server{E: e, o: o, up: make(chan struct{})}
	e.HTTPErrorHandler = s.errorHandler
	if o.TracerProvider != nil {
		e.Use(tracing(o))
	}
	if o.InternalAddr == "" && o.InternalListener == nil {
		e.GET("/healthz", echo.WrapHandler(http.HandlerFunc(health.Healthz)))
		if o.Health != nil {
			e.GET("/readyz", echo.WrapHandler(http.HandlerFunc(o.Health.Readyz)))
		}
		if o.Metrics != nil {
			e.GET("/metrics", echo.WrapHandler(o.Metrics))
		}
		return s
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", health.Healthz)
	if o.Health != nil {
		mux.HandleFunc("GET /readyz", o.Health.Readyz)
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	s.internal = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	return s
}

// ClientIP is the IP extractor behind c.RealIP(): with no trusted proxies the connection's address;
// otherwise X-Forwarded-For read from the right, skipping hops that are trusted proxies, so that a
// client cannot forge its address by sending the header itself (Echo's own defaults would trust
// every loopback, link-local and private peer; here only the configured ranges are trusted).
func ClientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// ParsePrefixes parses a list of CIDR ranges or single addresses (OWNERSYNC_TRUSTED_PROXIES).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR range nor an IP address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// tracing is the server span of each request: otelhttp (otelecho, its Echo wrapper, was
// deprecated and removed upstream) extracts an incoming traceparent with the global propagator,
// and the inner middleware names the span after the matched route ("POST /v1/webhooks/hubspot"),
// which otelhttp cannot see, and adds http.route to the duration metric. Probes are not traced.
func tracing(o Options) echo.MiddlewareFunc {
	opts := []otelhttp.Option{
		otelhttp.WithTracerProvider(o.TracerProvider),
		otelhttp.WithFilter(func(r *http.Request) bool {
			p := r.URL.Path
			return p != "/healthz" && p != "/readyz" && p != "/metrics"
		}),
	}
	if o.MeterProvider != nil {
		opts = append(opts, otelhttp.WithMeterProvider(o.MeterProvider))
	}
	outer := echo.WrapMiddleware(otelhttp.NewMiddleware(o.Service, opts...))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return outer(func(c echo.Context) error {
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			trace.SpanFromContext(c.Request().Context()).SetName(c.Request().Method + " " + route)
			trace.SpanFromContext(c.Request().Context()).SetAttributes(attribute.String("http.route", route))
			if l, ok := otelhttp.LabelerFromContext(c.Request().Context()); ok {
				l.Add(attribute.String("http.route", route))
			}
			err := next(c)
			if err != nil {
				// The error handler runs after this middleware returns; render here so otelhttp
				// sees the final status.
				c.Error(err)
			}
			return nil
		})
	}
}

// errorHandler is the one place errors become HTTP responses.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *APIError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			msg = m
		}
		ae = &APIError{Status: he.Code, Code: strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), Message: msg}
	default:
		ae = &APIError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
		s.o.Logger.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method,
			"path", c.Path(), "error", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, map[string]*APIError{"error": ae})
}

// Run listens (or takes Options.Listener) and serves until ctx is cancelled, then shuts down
// gracefully. With an internal address both listeners are bound before either serves, and a
// failure of one stops both.
func (s *Server) Run(ctx context.Context) error {
	l := s.o.Listener
	var err error
	if l == nil {
		if l, err = net.Listen("tcp", s.o.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", s.o.Addr, err)
		}
	}
	var il net.Listener
	if s.internal != nil {
		if il = s.o.InternalListener; il == nil {
			if il, err = net.Listen("tcp", s.o.InternalAddr); err != nil {
				_ = l.Close()
				return fmt.Errorf("listen internal %s: %w", s.o.InternalAddr, err)
			}
		}
	}
	s.mu.Lock()
	s.addr = l.Addr()
	if il != nil {
		s.intAddr = il.Addr()
	}
	s.mu.Unlock()
	close(s.up)
	s.E.Listener = l
	errc := make(chan error, 2)
	go func() { errc <- s.E.Server.Serve(l) }()
	if il != nil {
		go func() { errc <- s.internal.Serve(il) }()
	}
	var serveErr error
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
	defer cancel()
	// The public server drains first; the internal one keeps answering probes and scrapes meanwhile.
	if err := s.E.Server.Shutdown(sctx); err != nil && serveErr == nil {
		serveErr = fmt.Errorf("shutdown http: %w", err)
	}
	if s.internal != nil {
		if err := s.internal.Shutdown(sctx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("shutdown internal http: %w", err)
		}
	}
	return serveErr
}

// Addr waits until the server listens and returns its address (useful with port 0).
func (s *Server) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.up:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// InternalAddr waits until the server listens and returns the internal listener's address, or nil
// when the server has no internal address.
func (s *Server) InternalAddr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.up:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.intAddr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
