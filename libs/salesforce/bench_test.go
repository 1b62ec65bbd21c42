package salesforce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/salesforce"
)

// BenchmarkQueryUsers pulls 4,500 users over 3 pages from an httptest org whose pages are
// pre-rendered, so the time is the client's: HTTP, JSON decoding and paging.
func BenchmarkQueryUsers(b *testing.B) {
	users := makeUsers(b, 4500)
	pages := map[string][]byte{}
	for off := 0; off < len(users); off += 2000 {
		end := min(off+2000, len(users))
		recs := []map[string]any{}
		for _, u := range users[off:end] {
			recs = append(recs, map[string]any{"attributes": map[string]string{"type": "User", "url": "/services/data/v67.0/sobjects/User/" + u.ID},
				"Id": u.ID, "Email": u.Email, "IsActive": u.IsActive, "FirstName": u.FirstName, "LastName": u.LastName, "UserType": u.UserType, "Username": u.Username})
		}
		resp := map[string]any{"totalSize": len(users), "done": end == len(users), "records": recs}
		if end < len(users) {
			resp["nextRecordsUrl"] = fmt.Sprintf("/services/data/v67.0/query/01g-%d", end)
		}
		key := "/services/data/v67.0/query"
		if off > 0 {
			key = fmt.Sprintf("/services/data/v67.0/query/01g-%d", off)
		}
		pages[key], _ = json.Marshal(resp)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"t","token_type":"Bearer"}`))
			return
		}
		w.Header().Set("Sforce-Limit-Info", "api-usage=1/15000")
		w.Write(pages[r.URL.Path])
	}))
	defer srv.Close()
	c, err := salesforce.New(salesforce.Config{InstanceURL: srv.URL, APIVersion: "67.0", HTTPClient: srv.Client(),
		ClientCredentials: &salesforce.ClientCredentials{ClientID: "id", ClientSecret: "secret"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := c.QueryUsers(context.Background(), func(p []salesforce.User) error { n += len(p); return nil }); err != nil || n != 4500 {
			b.Fatalf("QueryUsers: %v, %d users", err, n)
		}
	}
}

func BenchmarkParseLimitInfo(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		salesforce.ParseLimitInfo("api-usage=18/15000; per-app-api-usage=17/250(appName=sample-connected-app)")
	}
}
