package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/retry"
	"github.com/ownersync/ownersync/libs/salesforce"
)

func TestUpdateOwnerRequest(t *testing.T) {
	o := newOrg(t)
	serveNoContentPatch(o)
	if err := o.client(t).UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV"); err != nil {
		t.Fatal(err)
	}
	r := o.apiRequests()[0]
	if r.Method != http.MethodPatch || r.Path != "/services/data/v67.0/sobjects/Contact/0035g00000QwErTAAV" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %s (%s)", r.Method, r.Path, r.Header.Get("Content-Type"))
	}
	sameJSON(t, []byte(`{"OwnerId":"0055g00000HjKlMAAV"}`), r.Body)
}

func TestUpdateOwnerErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		header        http.Header
		want          *salesforce.APIError
		wantTransient bool
		wantNotFound  bool
	}{
		{
			name: "inactive owner", status: 400, body: "error_inactive_owner.json",
			want: &salesforce.APIError{HTTPStatus: 400, Code: "INACTIVE_OWNER_OR_USER", Message: "owner or user is inactive", Fields: []string{},
				Errors: []salesforce.ErrorItem{{ErrorCode: "INACTIVE_OWNER_OR_USER", Message: "owner or user is inactive", Fields: []string{}}}},
		},
		{
			name: "request limit", status: 403, body: "error_request_limit.json", wantTransient: true,
			want: &salesforce.APIError{HTTPStatus: 403, Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded.",
				Errors: []salesforce.ErrorItem{{ErrorCode: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded."}}},
		},
		{
			name: "server busy with retry-after", status: 503, body: "", header: http.Header{"Retry-After": {"7"}}, wantTransient: true,
			want: &salesforce.APIError{HTTPStatus: 503, Message: "Service Unavailable", RetryAfterHint: 7 * time.Second},
		},
		{
			name: "deleted record", status: 404, body: "", wantNotFound: true,
			want: &salesforce.APIError{HTTPStatus: 404, Message: "Not Found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrg(t)
			o.mux.HandleFunc("PATCH /services/data/"+version+"/sobjects/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				var body []byte
				if tt.body != "" {
					body = golden(t, tt.body)
				}
				writeJSON(w, tt.status, body)
			})
			err := o.client(t).UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
			var got *salesforce.APIError
			if !errors.As(err, &got) {
				t.Fatalf("UpdateOwner = %v, want *APIError", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if salesforce.Transient(err) != tt.wantTransient || errors.Is(err, salesforce.ErrNotFound) != tt.wantNotFound {
				t.Errorf("Transient = %v, NotFound = %v; want %v, %v", salesforce.Transient(err), errors.Is(err, salesforce.ErrNotFound), tt.wantTransient, tt.wantNotFound)
			}
			if got.RetryAfter() != tt.want.RetryAfterHint {
				t.Errorf("RetryAfter() = %v", got.RetryAfter())
			}
		})
	}
}

func TestUpdateOwnersPartialFailureByPosition(t *testing.T) {
	o := newOrg(t)
	o.mux.HandleFunc("PATCH /services/data/"+version+"/composite/sobjects", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, golden(t, "collections_response.json"))
	})
	// Types interleaved: the client groups them (Contact first, as seen first) and maps results back.
	updates := []salesforce.OwnerUpdate{
		{ObjectType: "Contact", ID: "0035g00000QwErTAAV", OwnerID: "0055g00000HjKlMAAV"},
		{ObjectType: "Lead", ID: "00Q5g00000ZxCvBEAV", OwnerID: "00G5g000003LkJhEAK"},
		{ObjectType: "Contact", ID: "0035g00000QwErUAAV", OwnerID: "0055g00000AsDfGAAV"},
		{ObjectType: "Lead", ID: "00Q5g00000ZxCvCEAV", OwnerID: "0055g00000HjKlMAAV"},
		{ObjectType: "Contact", ID: "0035g00000QwErVAAV", OwnerID: "0055g00000HjKlMAAV"},
	}
	got, err := o.client(t).UpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	reqs := o.apiRequests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPatch {
		t.Fatalf("requests = %+v", reqs)
	}
	sameJSON(t, golden(t, "collections_request.json"), reqs[0].Body)

	// collections_response.json answers, in request order: Contact T ok, Contact U inactive owner,
	// Contact V lock, Lead B ok, Lead C deleted.
	errItem := func(code, msg string) []salesforce.ErrorItem {
		return []salesforce.ErrorItem{{ErrorCode: code, Message: msg, Fields: []string{}}}
	}
	want := []salesforce.Result{
		{ID: "0035g00000QwErTAAV", Success: true, Errors: []salesforce.ErrorItem{}},
		{ID: "00Q5g00000ZxCvBEAV", Success: true, Errors: []salesforce.ErrorItem{}},
		{Errors: errItem("INACTIVE_OWNER_OR_USER", "operation performed with inactive user")},
		{Errors: errItem("ENTITY_IS_DELETED", "entity is deleted")},
		{ID: "0035g00000QwErVAAV", Errors: errItem("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records: 0035g00000QwErVAAV")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	wantTransient := []bool{false, false, false, false, true}
	for i, r := range got {
		if (r.Err() == nil) != r.Success || salesforce.Transient(r.Err()) != wantTransient[i] {
			t.Errorf("result %d: Err() = %v, Transient = %v", i, r.Err(), salesforce.Transient(r.Err()))
		}
	}
	var ae *salesforce.APIError
	if !errors.As(got[2].Err(), &ae) || ae.Code != "INACTIVE_OWNER_OR_USER" {
		t.Errorf("result 2 Err() = %v", got[2].Err())
	}
}

func TestUpdateOwnersChunks(t *testing.T) {
	o := newOrg(t)
	type rec struct {
		Attributes struct {
			Type string `json:"type"`
		} `json:"attributes"`
		ID      string `json:"id"`
		OwnerID string `json:"OwnerId"`
	}
	o.mux.HandleFunc("PATCH /services/data/"+version+"/composite/sobjects", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AllOrNone *bool `json:"allOrNone"`
			Records   []rec `json:"records"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.AllOrNone == nil || *body.AllOrNone {
			writeJSON(w, 400, []byte(`[{"message":"bad body","errorCode":"JSON_PARSER_ERROR"}]`))
			return
		}
		out := []map[string]any{}
		for _, rc := range body.Records {
			if rc.OwnerID == "0055g00000INACTAAV" {
				out = append(out, map[string]any{"success": false, "errors": []map[string]any{{"statusCode": "INACTIVE_OWNER_OR_USER", "message": "inactive", "fields": []string{}}}})
				continue
			}
			out = append(out, map[string]any{"id": rc.ID, "success": true, "errors": []any{}})
		}
		b, _ := json.Marshal(out)
		writeJSON(w, 200, b)
	})
	var updates []salesforce.OwnerUpdate
	for i := range 450 {
		typ, prefix := "Contact", "003"
		if i%3 == 0 {
			typ, prefix = "Lead", "00Q"
		}
		owner := "0055g00000HjKlMAAV"
		if i%50 == 0 {
			owner = "0055g00000INACTAAV"
		}
		updates = append(updates, salesforce.OwnerUpdate{ObjectType: typ, ID: fmt.Sprintf("%s5g%010dAAA", prefix, i), OwnerID: owner})
	}
	got, err := o.client(t).UpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	reqs := o.apiRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		var body struct{ Records []rec }
		json.Unmarshal(r.Body, &body)
		chunks := 0
		for j, rc := range body.Records {
			if j == 0 || body.Records[j-1].Attributes.Type != rc.Attributes.Type {
				chunks++
			}
		}
		if len(body.Records) > 200 || chunks > 2 {
			t.Errorf("request %d: %d records in %d type chunks", i, len(body.Records), chunks)
		}
	}
	for i, r := range got {
		wantOK := i%50 != 0
		if r.Success != wantOK || (wantOK && r.ID != updates[i].ID) {
			t.Errorf("result %d = %+v, want success %v for %s", i, r, wantOK, updates[i].ID)
		}
	}
}

func TestUpdateOwnersRepeatedRecordGoesIntoLaterRequest(t *testing.T) {
	o := newOrg(t)
	var bodies []string
	o.mux.HandleFunc("PATCH /services/data/"+version+"/composite/sobjects", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Records []struct {
				ID      string `json:"id"`
				OwnerID string `json:"OwnerId"`
			} `json:"records"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		var parts []string
		out := []map[string]any{}
		for _, rc := range body.Records {
			parts = append(parts, rc.ID[:4]+"→"+rc.OwnerID[len(rc.OwnerID)-1:])
			out = append(out, map[string]any{"id": rc.ID, "success": true, "errors": []any{}})
		}
		bodies = append(bodies, strings.Join(parts, " "))
		b, _ := json.Marshal(out)
		writeJSON(w, 200, b)
	})
	// C1 appears three times, once by its 15-character id; L1 twice.
	updates := []salesforce.OwnerUpdate{
		{ObjectType: "Contact", ID: "0031g00000QwErTAAV", OwnerID: "0055g00000HjKlMAA1"},
		{ObjectType: "Lead", ID: "00Q1g00000ZxCvBEAV", OwnerID: "0055g00000HjKlMAA2"},
		{ObjectType: "Contact", ID: "0032g00000QwErTAAV", OwnerID: "0055g00000HjKlMAA3"},
		{ObjectType: "Contact", ID: "0031g00000QwErT", OwnerID: "0055g00000HjKlMAA4"},
		{ObjectType: "Lead", ID: "00Q1g00000ZxCvBEAV", OwnerID: "0055g00000HjKlMAA5"},
		{ObjectType: "Contact", ID: "0031G00000QWERTAAV", OwnerID: "0055g00000HjKlMAA6"},
	}
	got, err := o.client(t).UpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0031→1 0032→3", "0031→4", "0031→6 00Q1→2", "00Q1→5"}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	for i, r := range got {
		if !r.Success || r.ID != updates[i].ID {
			t.Errorf("result %d = %+v for %s", i, r, updates[i].ID)
		}
	}
}

func TestUpdateOwnersRejectsBadInputBeforeSending(t *testing.T) {
	o := newOrg(t)
	_, err := o.client(t).UpdateOwners(context.Background(), []salesforce.OwnerUpdate{
		{ObjectType: "Contact", ID: "0035g00000QwErTAAV", OwnerID: "0055g00000HjKlMAAV"},
		{ObjectType: "Account", ID: "0015g00000QwErTAAV", OwnerID: "0055g00000HjKlMAAV"},
	})
	if err == nil || len(o.apiRequests()) != 0 {
		t.Fatalf("err = %v after %d requests, want an error and none", err, len(o.apiRequests()))
	}
}

func TestUpdateOwnersWholeRequestError(t *testing.T) {
	o := newOrg(t)
	o.mux.HandleFunc("PATCH /services/data/"+version+"/composite/sobjects", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, []byte(`[{"message":"Unexpected character","errorCode":"JSON_PARSER_ERROR"}]`))
	})
	_, err := o.client(t).UpdateOwners(context.Background(), []salesforce.OwnerUpdate{{ObjectType: "Contact", ID: "0035g00000QwErTAAV", OwnerID: "0055g00000HjKlMAAV"}})
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.Code != "JSON_PARSER_ERROR" || salesforce.Transient(err) {
		t.Fatalf("UpdateOwners = %v, want a permanent JSON_PARSER_ERROR", err)
	}
}

// TestTransientRetriedByCallerPolicy shows the intended use: the caller wraps a call in retry.Do
// with salesforce.Transient, and 5xx and UNABLE_TO_LOCK_ROW are retried until success, while a
// permanent code is not.
func TestTransientRetriedByCallerPolicy(t *testing.T) {
	tests := []struct {
		name         string
		failures     []string // status:body of the first answers, then 204
		wantAttempts int
		wantErr      bool
	}{
		{name: "503 twice then ok", failures: []string{"503:", "503:"}, wantAttempts: 3},
		{name: "500 then lock then ok", failures: []string{"500:", `400:[{"errorCode":"UNABLE_TO_LOCK_ROW","message":"lock"}]`}, wantAttempts: 3},
		{name: "maintenance then ok", failures: []string{`503:[{"errorCode":"INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE","message":"m"}]`}, wantAttempts: 2},
		{name: "inactive owner is not retried", failures: []string{`400:[{"errorCode":"INACTIVE_OWNER_OR_USER","message":"inactive"}]`}, wantAttempts: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrg(t)
			n := 0
			o.mux.HandleFunc("PATCH /services/data/"+version+"/sobjects/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
				n++
				if n <= len(tt.failures) {
					code, body, _ := strings.Cut(tt.failures[n-1], ":")
					status, _ := strconv.Atoi(code)
					writeJSON(w, status, []byte(body))
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			c := o.client(t)
			attempts := 0
			err := retry.Do(context.Background(), retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Retryable: salesforce.Transient},
				func(ctx context.Context) error {
					attempts++
					return c.UpdateOwner(ctx, "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
				})
			if (err != nil) != tt.wantErr || attempts != tt.wantAttempts {
				t.Fatalf("retry.Do = %v after %d attempts; want error %v after %d", err, attempts, tt.wantErr, tt.wantAttempts)
			}
		})
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	o := newOrg(t)
	release := make(chan struct{})
	defer close(release)
	o.mux.HandleFunc("PATCH /services/data/"+version+"/sobjects/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := o.client(t, func(cfg *salesforce.Config) { cfg.Timeout = 50 * time.Millisecond })
	start := time.Now()
	err := c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
	if err == nil || !salesforce.Transient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("UpdateOwner = %v, want a transient deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v; the timeout did not bound the call", d)
	}
	// A caller's own cancellation is not transient.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.UpdateOwner(ctx, "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV"); err == nil || salesforce.Transient(err) {
		t.Errorf("cancelled UpdateOwner = %v, Transient = %v", err, salesforce.Transient(err))
	}
}

func TestUntrustedCertificateIsPermanent(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, err := salesforce.New(salesforce.Config{InstanceURL: srv.URL, APIVersion: "67.0", // default client: the test CA is not trusted
		ClientCredentials: &salesforce.ClientCredentials{ClientID: "id", ClientSecret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
	if err == nil || salesforce.Transient(err) {
		t.Fatalf("UpdateOwner = %v, Transient = %v; want a permanent certificate error", err, salesforce.Transient(err))
	}
}

func TestCheckOwner(t *testing.T) {
	tests := []struct {
		objectType, ownerID string
		ok                  bool
	}{
		{"Contact", "0055g00000HjKlMAAV", true},
		{"Lead", "0055g00000HjKlMAAV", true},
		{"Lead", "00G5g000003LkJhEAK", true},
		{"Contact", "00G5g000003LkJhEAK", false},
		{"Contact", "0035g00000QwErTAAV", false},
		{"Account", "0055g00000HjKlMAAV", false},
		{"Lead", "", false},
	}
	for _, tt := range tests {
		err := salesforce.CheckOwner(tt.objectType, tt.ownerID)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, salesforce.ErrOwnerNotAllowed)) {
			t.Errorf("CheckOwner(%s, %s) = %v, want ok %v", tt.objectType, tt.ownerID, err, tt.ok)
		}
	}
}

func TestConcurrentUnauthorizedFetchOneNewToken(t *testing.T) {
	o := newOrg(t)
	serveNoContentPatch(o, tokenN(1))
	c := o.client(t)
	// Prime the client with token 1, which the org then rejects.
	o.mux.HandleFunc("GET /services/data/"+version+"/query", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []byte(`{"totalSize":0,"done":true,"records":[]}`))
	})
	if _, err := c.FindRecordsByEmail(context.Background(), "Contact", []string{"a@example.com"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			errs <- c.UpdateOwner(context.Background(), "Contact", "0035g00000QwErTAAV", "0055g00000HjKlMAAV")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := o.tokenCount(); n != 2 {
		t.Errorf("fetched %d tokens, want 2 (one replacement shared by all callers)", n)
	}
}
