package echoserver

import (
	"context"
	"errors"
	"io"
	"net/http"
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
