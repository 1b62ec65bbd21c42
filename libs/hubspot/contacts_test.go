package hubspot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
)

func TestFindContactByEmail(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("GET /crm/v3/objects/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "o'brien+sales@example.com" {
			writeJSON(w, 200, golden(t, "contact_by_email.json"))
			return
		}
		writeJSON(w, 404, golden(t, "error_not_found.json"))
	})
	c := a.client(t)
	got, err := c.FindContactByEmail(context.Background(), "o'brien+sales@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := hubspot.Contact{ID: "51234", Email: "o'brien+sales@example.com", OwnerID: "71234567",
		CreatedAt: time.Date(2025, 5, 2, 9, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contact (-want +got):\n%s", diff)
	}
	r := a.recorded()[0]
	wantQuery := map[string][]string{"idProperty": {"email"}, "properties": {"email", "hubspot_owner_id"}}
	if diff := cmp.Diff(wantQuery, r.Query); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	if r.Path != "/crm/v3/objects/contacts/o'brien+sales@example.com" {
		t.Errorf("path = %q", r.Path)
	}

	_, err = c.FindContactByEmail(context.Background(), "a/b@example.com")
	if !errors.Is(err, hubspot.ErrNotFound) || hubspot.Transient(err) {
		t.Errorf("FindContactByEmail(unknown) = %v, want a permanent ErrNotFound", err)
	}
	if p := a.recorded()[1].EscapedPath; p != "/crm/v3/objects/contacts/a%2Fb@example.com" {
		t.Errorf("escaped path = %q: a / in the email must stay in one segment", p)
	}
}

func TestBatchUpdateOwners(t *testing.T) {
	updates := []hubspot.OwnerUpdate{
		{ContactID: "51234", OwnerID: "71234567", TraceID: "own-task-7f3a"},
		{ContactID: "51240", OwnerID: "99999999", TraceID: "own-task-7f3b"},
		{ContactID: "51250", OwnerID: "", TraceID: "own-task-7f3c"},
	}
	validation := &hubspot.APIError{HTTPStatus: 207, Status: "error", Category: "VALIDATION_ERROR", Message: "Property values were not valid",
		Context: map[string][]string{"objectWriteTraceId": {"own-task-7f3b"}}, Errors: []hubspot.ErrorDetail{}, Links: map[string]string{}}
	tests := []struct {
		name       string
		status     int
		response   string
		wantErrs   []error // per input; nil = applied
		wantStatus int
	}{
		{name: "200 all applied", status: 200, response: "batch_update_200.json", wantErrs: []error{nil, nil, nil}, wantStatus: 200},
		{name: "207 one refused, matched by trace id", status: 207, response: "batch_update_207.json", wantErrs: []error{nil, validation, nil}, wantStatus: 207},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t)
			a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/update", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tt.status, golden(t, tt.response))
			})
			got, err := a.client(t).BatchUpdateOwners(context.Background(), updates)
			if err != nil {
				t.Fatal(err)
			}
			reqs := a.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			sameJSON(t, golden(t, "batch_update_request.json"), reqs[0].Body)
			var gotErrs []error
			for i, it := range got.Items {
				if it.OwnerUpdate != updates[i] {
					t.Errorf("item %d is %+v, want %+v", i, it.OwnerUpdate, updates[i])
				}
				gotErrs = append(gotErrs, it.Err)
			}
			if diff := cmp.Diff(tt.wantErrs, gotErrs, cmp.Comparer(func(a, b error) bool {
				var x, y *hubspot.APIError
				if errors.As(a, &x) && errors.As(b, &y) {
					return cmp.Equal(x, y)
				}
				return a == b
			})); diff != "" {
				t.Errorf("item errors (-want +got):\n%s", diff)
			}
			if len(got.Responses) != 1 || got.Responses[0].HTTPStatus != tt.wantStatus || got.Responses[0].Status != "COMPLETE" ||
				!got.Responses[0].CompletedAt.Equal(time.Date(2026, 1, 1, 0, 0, 5, 100e6, time.UTC)) {
				t.Errorf("responses = %+v", got.Responses)
			}
			for _, f := range got.Failed() {
				if hubspot.Transient(f.Err) {
					t.Errorf("validation error of %s classified transient", f.TraceID)
				}
			}
		})
	}
}

func TestBatchUpdateOwnersMatching(t *testing.T) {
	a := newAccount(t)
	var sizes []int
	a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/update", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs []struct {
				ID                 string            `json:"id"`
				ObjectWriteTraceID string            `json:"objectWriteTraceId"`
				Properties         map[string]string `json:"properties"`
			} `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, []byte(`{"status":"error","message":"bad json","category":"VALIDATION_ERROR"}`))
			return
		}
		sizes = append(sizes, len(req.Inputs))
		results, errs := []map[string]any{}, []map[string]any{}
		for _, in := range req.Inputs {
			switch in.Properties["hubspot_owner_id"] {
			case "bad-by-trace":
				errs = append(errs, map[string]any{"status": "error", "category": "VALIDATION_ERROR", "message": "bad owner", "context": map[string][]string{"objectWriteTraceId": {in.ObjectWriteTraceID}}})
			case "bad-by-id":
				errs = append(errs, map[string]any{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "no contact", "context": map[string][]string{"ids": {in.ID}}})
			case "dropped":
			default:
				results = append(results, map[string]any{"id": in.ID, "properties": map[string]string{"hubspot_owner_id": in.Properties["hubspot_owner_id"]}})
			}
		}
		status := 200
		body := map[string]any{"status": "COMPLETE", "results": results}
		if len(errs) > 0 {
			status, body["errors"], body["numErrors"] = 207, errs, len(errs)
		}
		b, _ := json.Marshal(body)
		writeJSON(w, status, b)
	})
	var updates []hubspot.OwnerUpdate
	for i := range 250 {
		owner := "71234567"
		switch {
		case i%40 == 1:
			owner = "bad-by-trace"
		case i%40 == 2:
			owner = "bad-by-id"
		case i == 249:
			owner = "dropped"
		}
		updates = append(updates, hubspot.OwnerUpdate{ContactID: fmt.Sprint(50000 + i), OwnerID: owner, TraceID: fmt.Sprintf("task-%d", i)})
	}
	got, err := a.client(t).BatchUpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{100, 100, 50}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	for i, it := range got.Items {
		var ae *hubspot.APIError
		switch {
		case i%40 == 1:
			if !errors.As(it.Err, &ae) || ae.Category != "VALIDATION_ERROR" || ae.TraceIDs()[0] != it.TraceID {
				t.Errorf("item %d: %v, want its VALIDATION_ERROR", i, it.Err)
			}
		case i%40 == 2:
			if !errors.As(it.Err, &ae) || ae.Category != "OBJECT_NOT_FOUND" {
				t.Errorf("item %d: %v, want OBJECT_NOT_FOUND matched by id", i, it.Err)
			}
		case i == 249:
			if !errors.Is(it.Err, hubspot.ErrNoResult) || !hubspot.Transient(it.Err) {
				t.Errorf("item %d: %v, want a transient ErrNoResult", i, it.Err)
			}
		default:
			if it.Err != nil {
				t.Errorf("item %d: %v, want applied", i, it.Err)
			}
		}
	}
}

func TestBatchUpdateOwnersWholeRequestError(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/update", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, golden(t, "error_validation.json"))
	})
	updates := []hubspot.OwnerUpdate{{ContactID: "51240", OwnerID: "99999999", TraceID: "own-task-7f3b"}}
	got, err := a.client(t).BatchUpdateOwners(context.Background(), updates)
	var ae *hubspot.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("BatchUpdateOwners = %v, want *APIError", err)
	}
	want := &hubspot.APIError{
		HTTPStatus: 400, Status: "error", Message: "Property values were not valid", CorrelationID: "aeb5f871-7f07-4993-9211-075dc63e7cbf",
		Category:  "VALIDATION_ERROR",
		Errors:    []hubspot.ErrorDetail{{Message: "99999999 is not a valid owner id", Code: "INVALID_OWNER_ID", Context: map[string][]string{"propertyName": {"hubspot_owner_id"}}}},
		Links:     map[string]string{"knowledge-base": "https://www.hubspot.com/products/service/knowledge-base"},
		RateLimit: hubspot.RateLimit{Max: 190, Remaining: 189, Interval: 10 * time.Second, Daily: 625000, DailyRemaining: 624000, HasDaily: true},
	}
	if diff := cmp.Diff(want, ae); diff != "" {
		t.Errorf("APIError (-want +got):\n%s", diff)
	}
	if hubspot.Transient(err) || len(got.Items) != 1 || !errors.Is(got.Items[0].Err, ae) {
		t.Errorf("Transient = %v, items = %+v", hubspot.Transient(err), got.Items)
	}
}

func TestBatchUpdateOwnersRepeatedContactGoesIntoLaterRequest(t *testing.T) {
	a := newAccount(t)
	var batches [][]string
	a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/update", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs []struct {
				ID                 string `json:"id"`
				ObjectWriteTraceID string `json:"objectWriteTraceId"`
			} `json:"inputs"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		var ids []string
		results := []map[string]any{}
		for _, in := range req.Inputs {
			for _, seen := range ids {
				if seen == in.ID {
					writeJSON(w, 400, []byte(`{"status":"error","message":"Duplicate IDs found in batch input","category":"VALIDATION_ERROR"}`))
					return
				}
			}
			ids = append(ids, in.ID)
			results = append(results, map[string]any{"id": in.ID})
		}
		batches = append(batches, ids)
		b, _ := json.Marshal(map[string]any{"status": "COMPLETE", "results": results})
		writeJSON(w, 200, b)
	})
	updates := []hubspot.OwnerUpdate{
		{ContactID: "1", OwnerID: "a", TraceID: "t1"},
		{ContactID: "2", OwnerID: "a", TraceID: "t2"},
		{ContactID: "1", OwnerID: "b", TraceID: "t3"},
		{ContactID: "3", OwnerID: "a", TraceID: "t4"},
		{ContactID: "1", OwnerID: "c", TraceID: "t5"},
	}
	got, err := a.client(t).BatchUpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"1", "2"}, {"1", "3"}, {"1"}}, batches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	if f := got.Failed(); len(f) != 0 {
		t.Errorf("failed: %+v", f)
	}
}

func TestBatchUpdateOwnersRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		updates []hubspot.OwnerUpdate
	}{
		{name: "no contact id", updates: []hubspot.OwnerUpdate{{OwnerID: "1", TraceID: "a"}}},
		{name: "no trace id", updates: []hubspot.OwnerUpdate{{ContactID: "1", OwnerID: "1"}}},
		{name: "repeated trace id", updates: []hubspot.OwnerUpdate{{ContactID: "1", OwnerID: "1", TraceID: "a"}, {ContactID: "2", OwnerID: "1", TraceID: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t)
			if _, err := a.client(t).BatchUpdateOwners(context.Background(), tt.updates); err == nil || len(a.recorded()) != 0 {
				t.Errorf("err = %v after %d requests, want an error and none", err, len(a.recorded()))
			}
		})
	}
}

func TestBatchReadContacts(t *testing.T) {
	a := newAccount(t)
	var bodies []map[string]any
	a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/read", func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, req)
		inputs := req["inputs"].([]any)
		if len(inputs) > 100 {
			writeJSON(w, 400, []byte(`{"status":"error","category":"VALIDATION_ERROR","message":"too many inputs"}`))
			return
		}
		var results []string
		var missing []string
		for _, in := range inputs {
			id := in.(map[string]any)["id"].(string)
			if id == "nobody@example.org" {
				missing = append(missing, `"`+id+`"`)
				continue
			}
			results = append(results, fmt.Sprintf(`{"id":"5%03d","properties":{"email":%q,"hubspot_owner_id":"71234567","hs_object_id":"5%03d"},
				"createdAt":"2025-05-02T09:00:00.000Z","updatedAt":"2026-01-01T00:00:05.000Z","archived":false}`, len(results), id, len(results)))
		}
		status, errs := 200, ""
		if len(missing) > 0 {
			status = 207
			errs = fmt.Sprintf(`,"numErrors":1,"errors":[{"status":"error","category":"OBJECT_NOT_FOUND","message":"Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.","context":{"ids":[%s]},"errors":[],"links":{}}]`, strings.Join(missing, ","))
		}
		writeJSON(w, status, []byte(`{"status":"COMPLETE","results":[`+strings.Join(results, ",")+`]`+errs+`,"startedAt":"2026-01-01T00:00:05.000Z","completedAt":"2026-01-01T00:00:05.100Z"}`))
	})
	c := a.client(t)
	emails := []string{"ada@example.org", "nobody@example.org"}
	for i := range 150 {
		emails = append(emails, fmt.Sprintf("c%d@example.org", i))
	}
	got, err := c.BatchReadContacts(context.Background(), "email", emails)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 151 || got[0].Email != "ada@example.org" || got[0].OwnerID != "71234567" || got[0].ID != "5000" {
		t.Errorf("got %d contacts, first %+v; want 151, ada's first", len(got), got[0])
	}
	if len(bodies) != 2 {
		t.Fatalf("%d requests, want 2 (100 inputs each at most)", len(bodies))
	}
	if bodies[0]["idProperty"] != "email" || len(bodies[0]["inputs"].([]any)) != 100 || len(bodies[1]["inputs"].([]any)) != 52 {
		t.Errorf("requests %v / %d inputs", bodies[0]["idProperty"], len(bodies[1]["inputs"].([]any)))
	}
	if diff := cmp.Diff([]any{"email", "hubspot_owner_id"}, bodies[0]["properties"]); diff != "" {
		t.Errorf("properties (-want +got):\n%s", diff)
	}
	if q := a.recorded()[0].Query; q["archived"][0] != "false" {
		t.Errorf("query %v, want archived=false", q)
	}
	// By record id: no idProperty sent.
	if _, err := c.BatchReadContacts(context.Background(), "", []string{"51234"}); err != nil {
		t.Fatal(err)
	}
	if _, has := bodies[2]["idProperty"]; has {
		t.Errorf("read by id sent idProperty %v", bodies[2]["idProperty"])
	}
}
