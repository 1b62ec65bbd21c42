package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			_, _ = w.Write([]byte(`{"status":"ok"}`))
			return
		}
		http.Error(w, `{"status":"unavailable","checks":{"nats":"down"}}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{name: "ready", args: []string{"healthcheck", srv.URL + "/readyz"}, wantCode: 0},
		{name: "unavailable", args: []string{"healthcheck", srv.URL + "/other"}, wantCode: 1, wantOut: `503 Service Unavailable {"status":"unavailable"`},
		{name: "refused", args: []string{"healthcheck", closedURL + "/readyz"}, wantCode: 1, wantOut: "unhealthy:"},
		{name: "no url", args: []string{"healthcheck"}, wantCode: 2, wantOut: "usage"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(tt.args, &out); code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("run = %d %q, want %d containing %q", code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}
