package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"
)

// nopPublisher marshals like natsbus does and stores nothing, so the benchmarks measure the
// handler's own cost.
type nopPublisher struct{}

func (nopPublisher) Publish(_ context.Context, _, _ string, m proto.Message) (bool, error) {
	_, err := proto.Marshal(m)
	return false, err
}

func benchHandler(b *testing.B, path, contentType string, body []byte, header http.Header, bare bool) {
	ten, _ := testTenants()
	h, err := New(Config{PublicURL: publicURL, Now: func() time.Time { return testNow }}, nopPublisher{}, ten, envSecrets{"HS_SECRET": hsSecret})
	if err != nil {
		b.Fatal(err)
	}
	ec := echo.New()
	h.Register(ec)
	// The bare peer: read the body and answer, what any handler must do at least.
	ec.POST("/bare", func(c echo.Context) error {
		if _, err := io.ReadAll(c.Request().Body); err != nil {
			return err
		}
		return c.NoContent(http.StatusOK)
	})
	if bare {
		path = "/bare"
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header = header.Clone()
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		ec.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkSalesforce1(b *testing.B) {
	body := readFile(b, "salesforce/contact_and_queue_lead.xml")
	for _, bare := range []bool{false, true} {
		b.Run(map[bool]string{false: "ingress", true: "bare"}[bare], func(b *testing.B) {
			benchHandler(b, SalesforcePath, "text/xml", body, http.Header{}, bare)
		})
	}
}

func BenchmarkSalesforce100(b *testing.B) {
	benchHandler(b, SalesforcePath, "text/xml", readFile(b, "salesforce/contacts_100.xml"), http.Header{}, false)
}

func BenchmarkHubSpot1(b *testing.B) {
	body := readFile(b, "hubspot/owner_change_single.json")
	for _, bare := range []bool{false, true} {
		b.Run(map[bool]string{false: "ingress", true: "bare"}[bare], func(b *testing.B) {
			benchHandler(b, HubSpotPath, "application/json", body, signV3("", body, testNow), bare)
		})
	}
}

func BenchmarkHubSpot100(b *testing.B) {
	body := readFile(b, "hubspot/owner_changes_100.json")
	benchHandler(b, HubSpotPath, "application/json", body, signV3("", body, testNow), false)
}
