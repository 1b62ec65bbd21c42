package health

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadyz(t *testing.T) {
	c := New()
	c.Add("nats", func(context.Context) error { return nil })
	rec := httptest.NewRecorder()
	c.Readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("all ok: status %d", rec.Code)
	}
	c.Add("mongo", func(context.Context) error { return errors.New("no primary") })
	rec = httptest.NewRecorder()
	c.Readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"mongo":"no primary"`) {
		t.Fatalf("failing check: %d %s", rec.Code, rec.Body.String())
	}
}
