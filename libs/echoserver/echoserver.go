// Package echoserver is the HTTP server every ownersync service runs: Echo with timeouts, tracing,
// /healthz, /readyz and /metrics, one JSON error shape ({"error":{"code","message"}}) and graceful
// shutdown.
package echoserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	Service           string
	Addr              string
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
}

// Server is a service's HTTP server.
type Server struct {
	E    *echo.Echo
	o    Options
	mu   sync.Mutex
	addr net.Addr
	up   chan struct{}
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
	s := &Server{E: e, o: o, up: make(chan struct{})}
	e.HTTPErrorHandler = s.errorHandler
	if o.TracerProvider != nil {
		e.Use(tracing(o))
	}
	e.GET("/healthz", echo.WrapHandler(http.HandlerFunc(health.Healthz)))
	if o.Health != nil {
		e.GET("/readyz", echo.WrapHandler(http.HandlerFunc(o.Health.Readyz)))
	}
	if o.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(o.Metrics))
	}
	return s
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

// Run listens and serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.o.Addr, err)
	}
	s.mu.Lock()
	s.addr = l.Addr()
	s.mu.Unlock()
	close(s.up)
	s.E.Listener = l
	errc := make(chan error, 1)
	go func() { errc <- s.E.Server.Serve(l) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
	defer cancel()
	if err := s.E.Server.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
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
