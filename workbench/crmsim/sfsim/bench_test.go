package sfsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

func benchOrg(b *testing.B, users, contacts int) (*Org, *httptest.Server, string) {
	b.Helper()
	var seed Seed
	for i := range users {
		seed.Users = append(seed.Users, SeedUser{Username: fmt.Sprintf("u%05d@acme.example", i), Email: fmt.Sprintf("u%05d@example.com", i)})
	}
	for i := range contacts {
		seed.Contacts = append(seed.Contacts, SeedRecord{Email: fmt.Sprintf("c%05d@example.org", i), Owner: "u00000@acme.example"})
	}
	org, err := New(Config{DailyLimit: -1, LogCapacity: 1000, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	if err := org.Load(seed); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(org)
	b.Cleanup(func() { srv.Close(); _ = org.Close() })
	return org, srv, org.IssueToken("")
}

// BenchmarkQueryUsersFirstPage measures a 2,000-record page of a 5,000-user org over HTTP.
func BenchmarkQueryUsersFirstPage(b *testing.B) {
	_, srv, tok := benchOrg(b, 5000, 0)
	u := srv.URL + "/services/data/v62.0/query?q=" + url.QueryEscape("SELECT Id, Email, IsActive, FirstName, LastName, UserType FROM User ORDER BY Id")
	for b.Loop() {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkCollectionsUpdate200 measures one 200-record sObject Collections owner update.
func BenchmarkCollectionsUpdate200(b *testing.B) {
	org, srv, tok := benchOrg(b, 2, 200)
	owners := []string{org.Users()[0].ID, org.Users()[1].ID}
	var bodies [2][]byte
	for k := range 2 {
		var recs []map[string]any
		for _, c := range org.Records(ObjectContact) {
			recs = append(recs, map[string]any{"attributes": map[string]string{"type": "Contact"}, "id": c.ID, "OwnerId": owners[k]})
		}
		bodies[k], _ = json.Marshal(map[string]any{"records": recs})
	}
	i := 0
	for b.Loop() {
		req, _ := http.NewRequest("PATCH", srv.URL+"/services/data/v62.0/composite/sobjects", bytes.NewReader(bodies[i%2]))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		i++
	}
}
