package hssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkBatchUpdate100 measures one 100-input contacts batch update over HTTP.
func BenchmarkBatchUpdate100(b *testing.B) {
	seed := Seed{Owners: []Owner{{ID: "1", Email: "a@x"}, {ID: "2", Email: "b@x"}}}
	for i := range 100 {
		seed.Contacts = append(seed.Contacts, SeedContact{Email: fmt.Sprintf("c%d@example.org", i), Owner: "1"})
	}
	a, err := New(Config{AccessTokens: []string{"t"}, BurstLimit: -1, DailyLimit: -1, LogCapacity: 1000, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Load(seed); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(a)
	b.Cleanup(func() { srv.Close(); _ = a.Close() })
	var bodies [2][]byte
	for k, owner := range []string{"2", "1"} {
		var inputs []map[string]any
		for _, c := range a.Contacts() {
			inputs = append(inputs, map[string]any{"id": c.ID, "objectWriteTraceId": "t" + c.ID, "properties": map[string]string{"hubspot_owner_id": owner}})
		}
		bodies[k], _ = json.Marshal(map[string]any{"inputs": inputs})
	}
	i := 0
	for b.Loop() {
		req, _ := http.NewRequest("POST", srv.URL+"/crm/v3/objects/contacts/batch/update", bytes.NewReader(bodies[i%2]))
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		i++
	}
}
