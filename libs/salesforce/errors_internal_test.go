package salesforce

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseErrorResponse feeds error bodies (the golden ones as seeds) to the parser: it must not
// panic, must keep the status, and must take Code from the first element of an error array.
func FuzzParseErrorResponse(f *testing.F) {
	for _, name := range []string{"error_inactive_owner.json", "error_invalid_session.json", "error_request_limit.json", "collections_response.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(400, b)
	}
	f.Add(503, []byte("<html>busy</html>"))
	f.Add(404, []byte(`{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		ae := parseErrorResponse(status, http.Header{}, body)
		if ae.HTTPStatus != status {
			t.Fatalf("status %d became %d", status, ae.HTTPStatus)
		}
		if len(ae.Errors) > 0 && ae.Code != ae.Errors[0].ErrorCode {
			t.Fatalf("Code %q, first error %q", ae.Code, ae.Errors[0].ErrorCode)
		}
		_ = ae.Error()
		_ = Transient(ae)
	})
}
