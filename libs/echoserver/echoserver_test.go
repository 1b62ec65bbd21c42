package echoserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ownersync/ownersync/libs/health"
)

func TestServeErrorsAndShutdown(t *testing.T) {
	h := health.New()
	h.Add("dep", func(context.Context) error { return nil })
	s := New(Options{Service: "t", Addr: "127.0.0.1:0", Health: h})
	s.E.GET("/boom", func(echo.Context) error { return errors.New("secret detail") })
	s.E.GET("/teapot", func(echo.Context) error { return Errorf(418, "teapot", "short and stout") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	addr, err := s.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + addr.String() + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path, want string
		code       int
	}{
		{"/healthz", `"ok"`, 200},
		{"/readyz", `"dep":"ok"`, 200},
		{"/boom", `{"error":{"code":"internal","message":"internal error"}}`, 500},
		{"/teapot", `{"error":{"code":"teapot","message":"short and stout"}}`, 418},
		{"/nope", `"code":"not_found"`, 404},
	} {
		code, body := get(tt.path)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d %s, want %d containing %s", tt.path, code, body, tt.code, tt.want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no shutdown")
	}
}

// TestInternalAddrSeparatesOperationalRoutes: with an internal address, /healthz, /readyz and
// /metrics answer only there, and the public port answers only the service's own routes.
func TestInternalAddrSeparatesOperationalRoutes(t *testing.T) {
	h := health.New()
	h.Add("dep", func(context.Context) error { return nil })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })
	s := New(Options{Service: "t", Addr: "127.0.0.1:0", InternalAddr: "127.0.0.1:0", Health: h, Metrics: metrics})
	s.E.POST("/webhook", func(c echo.Context) error { return c.String(200, "accepted") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	pub, err := s.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	internal, err := s.InternalAddr(ctx)
	if err != nil || internal == nil {
		t.Fatalf("InternalAddr = %v, %v", internal, err)
	}
	if internal.String() == pub.String() {
		t.Fatalf("internal and public listen on the same address %s", pub)
	}
	do := func(method, addr, p string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name, method, addr, path, want string
		code                           int
	}{
		{"internal healthz", "GET", internal.String(), "/healthz", `"ok"`, 200},
		{"internal readyz", "GET", internal.String(), "/readyz", `"dep":"ok"`, 200},
		{"internal metrics", "GET", internal.String(), "/metrics", "up 1", 200},
		{"internal has no service routes", "POST", internal.String(), "/webhook", "", 404},
		{"public has no healthz", "GET", pub.String(), "/healthz", `"code":"not_found"`, 404},
		{"public has no readyz", "GET", pub.String(), "/readyz", `"code":"not_found"`, 404},
		{"public has no metrics", "GET", pub.String(), "/metrics", `"code":"not_found"`, 404},
		{"public serves the service", "POST", pub.String(), "/webhook", "accepted", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.method, tt.addr, tt.path)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("%s %s = %d %s, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.want)
			}
		})
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no shutdown")
	}
	if _, err := net.Dial("tcp", internal.String()); err == nil {
		t.Error("internal listener still accepts after shutdown")
	}
}

// TestInternalAddrInUseFailsRun: an internal address already taken fails Run with its address
// instead of serving the public port alone.
func TestInternalAddrInUseFailsRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := New(Options{Service: "t", Addr: "127.0.0.1:0", InternalAddr: taken.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = s.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "listen internal "+taken.Addr().String()) {
		t.Fatalf("Run = %v, want a listen internal error naming %s", err, taken.Addr())
	}
}

// TestClientAddressTrustsOnlyConfiguredProxies is issue 13 item 14: X-Forwarded-For names the
// client only when the connection comes from a configured trusted proxy; anyone else gets their
// own connection address, whatever header they send.
func TestClientAddressTrustsOnlyConfiguredProxies(t *testing.T) {
	realIP := func(trusted []netip.Prefix, remote, xff string) string {
		s := New(Options{Service: "test", TrustedProxies: trusted})
		s.E.GET("/ip", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()) })
		req := httptest.NewRequest(http.MethodGet, "/ip", nil)
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		s.E.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}
	for _, c := range []struct {
		name        string
		trusted     []netip.Prefix
		remote, xff string
		want        string
	}{
		{"no proxies configured: the header is ignored", nil, "198.51.100.7:5000", "203.0.113.9", "198.51.100.7"},
		{"loopback and private are not trusted by default", nil, "127.0.0.1:5000", "203.0.113.9", "127.0.0.1"},
		{"private peer not configured", proxies, "192.168.1.2:5000", "203.0.113.9", "192.168.1.2"},
		{"a trusted proxy names the client", proxies, "10.1.2.3:5000", "203.0.113.9", "203.0.113.9"},
		{"a spoofed first hop is skipped", proxies, "10.1.2.3:5000", "6.6.6.6, 203.0.113.9", "203.0.113.9"},
		{"a chain of trusted proxies", proxies, "10.1.2.3:5000", "203.0.113.9, 10.1.9.9", "203.0.113.9"},
		{"IPv6 proxy", proxies, "[2001:db8::1]:5000", "203.0.113.9", "203.0.113.9"},
	} {
		if got := realIP(c.trusted, c.remote, c.xff); got != c.want {
			t.Errorf("%s: RealIP = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "10.1.2.3/16"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "10.1.0.0/16"}
	for i := range want {
		if i >= len(got) || got[i].String() != want[i] {
			t.Fatalf("ParsePrefixes = %v, want %v", got, want)
		}
	}
	if _, err := ParsePrefixes([]string{"proxy.internal"}); err == nil {
		t.Error("a host name was accepted as a trusted proxy")
	}
}
