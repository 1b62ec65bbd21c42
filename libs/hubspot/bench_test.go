package hubspot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/ownersync/ownersync/libs/hubspot"
)

// BenchmarkListOwners lists 1,000 owners in pages of 100 from an httptest account.
func BenchmarkListOwners(b *testing.B) {
	a := newAccount(b)
	serveOwners(b, a, makeOwners(1000, false), nil)
	c, err := hubspot.New(hubspot.Config{BaseURL: a.srv.URL, AccessToken: privateToken, HTTPClient: a.srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := c.ListOwners(context.Background(), false, func(p []hubspot.Owner) error { n += len(p); return nil }); err != nil || n != 1000 {
			b.Fatalf("ListOwners: %v, %d owners", err, n)
		}
	}
}

// BenchmarkBatchUpdateOwners sends one full batch of 100 inputs and matches a 207 with 10 errors.
func BenchmarkBatchUpdateOwners(b *testing.B) {
	a := newAccount(b)
	var updates []hubspot.OwnerUpdate
	results, errs := []map[string]any{}, []map[string]any{}
	for i := range 100 {
		u := hubspot.OwnerUpdate{ContactID: fmt.Sprint(50000 + i), OwnerID: "71234567", TraceID: fmt.Sprintf("task-%d", i)}
		updates = append(updates, u)
		if i%10 == 0 {
			errs = append(errs, map[string]any{"status": "error", "category": "VALIDATION_ERROR", "message": "bad", "context": map[string][]string{"objectWriteTraceId": {u.TraceID}}})
			continue
		}
		results = append(results, map[string]any{"id": u.ContactID, "properties": map[string]string{"hubspot_owner_id": u.OwnerID}})
	}
	body, _ := json.Marshal(map[string]any{"status": "COMPLETE", "results": results, "errors": errs, "numErrors": len(errs)})
	a.mux.HandleFunc("POST /crm/v3/objects/contacts/batch/update", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 207, body) })
	c, err := hubspot.New(hubspot.Config{BaseURL: a.srv.URL, AccessToken: privateToken, HTTPClient: a.srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.BatchUpdateOwners(context.Background(), updates)
		if err != nil || len(res.Failed()) != 10 {
			b.Fatalf("BatchUpdateOwners: %v, %d failed", err, len(res.Failed()))
		}
	}
}
