package hubspot_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
)

func int64p(v int64) *int64 { return &v }

// serveOwners answers GET /crm/v3/owners from active and archived owners the way the Owners API
// pages: limit (default 100), an opaque after cursor, paging absent on the last page.
func serveOwners(t testing.TB, a *account, active, archived []hubspot.Owner) {
	a.mux.HandleFunc("GET /crm/v3/owners", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		list := active
		switch q.Get("archived") {
		case "", "false":
		case "true":
			list = archived
		default:
			writeJSON(w, 400, []byte(`{"status":"error","message":"bad archived","category":"VALIDATION_ERROR"}`))
			return
		}
		limit := 100
		if s := q.Get("limit"); s != "" {
			limit, _ = strconv.Atoi(s)
		}
		offset := 0
		if s := q.Get("after"); s != "" {
			b, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				writeJSON(w, 400, []byte(`{"status":"error","message":"bad cursor","category":"VALIDATION_ERROR"}`))
				return
			}
			offset, _ = strconv.Atoi(string(b))
		}
		end := min(offset+limit, len(list))
		resp := map[string]any{"results": list[offset:end]}
		if end < len(list) {
			after := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
			resp["paging"] = map[string]any{"next": map[string]string{"after": after, "link": "https://api.hubapi.com/crm/v3/owners?after=" + after}}
		}
		b, _ := json.Marshal(resp)
		writeJSON(w, 200, b)
	})
}

func makeOwners(n int, archived bool) []hubspot.Owner {
	out := make([]hubspot.Owner, n)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		uid := int64(9000000 + i)
		o := hubspot.Owner{
			ID: strconv.Itoa(70000000 + i), Email: fmt.Sprintf("owner%d@example.com", i), FirstName: "F", LastName: "L",
			Type: hubspot.OwnerPerson, UserID: &uid, UserIDIncludingInactive: uid, Archived: archived,
			Teams: []hubspot.Team{{ID: "368389", Name: "EMEA Sales", Primary: true}}, CreatedAt: base, UpdatedAt: base.Add(time.Duration(i) * time.Minute),
		}
		if archived {
			o.ID = strconv.Itoa(60000000 + i)
			o.UserID = nil
		}
		if i%25 == 0 && !archived {
			o.Type, o.UserID, o.UserIDIncludingInactive, o.Teams = hubspot.OwnerQueue, nil, 0, nil
		}
		out[i] = o
	}
	return out
}

func TestListOwnersBothPasses(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int
		archived  bool
		wantPages []int
	}{
		{name: "active, default page size", archived: false, wantPages: []int{100, 100, 100, 100, 100, 100, 100, 30}},
		{name: "archived, default page size", archived: true, wantPages: []int{100, 100, 60}},
		{name: "active, limit 500", pageSize: 500, archived: false, wantPages: []int{500, 230}},
	}
	active, archived := makeOwners(730, false), makeOwners(260, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t)
			serveOwners(t, a, active, archived)
			c := a.client(t, func(cfg *hubspot.Config) { cfg.OwnersPageSize = tt.pageSize })
			var got []hubspot.Owner
			var pages []int
			if err := c.ListOwners(context.Background(), tt.archived, func(p []hubspot.Owner) error {
				pages = append(pages, len(p))
				got = append(got, p...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			want := active
			if tt.archived {
				want = archived
			}
			if diff := cmp.Diff(tt.wantPages, pages); diff != "" {
				t.Errorf("pages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("owners (-want +got):\n%s", diff)
			}
			limit := strconv.Itoa(max(tt.pageSize, 100))
			for i, r := range a.recorded() {
				if r.Auth != "Bearer "+privateToken || r.Query["limit"][0] != limit || r.Query["archived"][0] != strconv.FormatBool(tt.archived) || (i == 0) != (r.Query["after"] == nil) {
					t.Errorf("request %d: auth %q, query %v", i, r.Auth, r.Query)
				}
			}
		})
	}
}

func TestOwnerWireShape(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("GET /crm/v3/owners", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") == "80000001" {
			writeJSON(w, 200, []byte(`{"results":[]}`))
			return
		}
		writeJSON(w, 200, golden(t, "owners_page.json"))
	})
	var got []hubspot.Owner
	if err := a.client(t).ListOwners(context.Background(), false, func(p []hubspot.Owner) error { got = append(got, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []hubspot.Owner{
		{ID: "71234567", Email: "ada@example.com", Type: "PERSON", FirstName: "Ada", LastName: "Lovelace",
			UserID: int64p(9988776), UserIDIncludingInactive: 9988776,
			CreatedAt: time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 15, 8, 30, 0, 0, time.UTC),
			Teams: []hubspot.Team{{ID: "368389", Name: "EMEA Sales", Primary: true}}},
		{ID: "80000001", Type: "QUEUE", FirstName: "Inbound", LastName: "Queue",
			CreatedAt: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owners (-want +got):\n%s", diff)
	}
	if n := len(a.recorded()); n != 2 {
		t.Errorf("%d requests, want 2 (the cursor was followed once)", n)
	}
}

func TestListOwnersRepeatedCursorStops(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("GET /crm/v3/owners", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, golden(t, "owners_page.json")) // always the same cursor
	})
	err := a.client(t).ListOwners(context.Background(), false, func([]hubspot.Owner) error { return nil })
	if err == nil || len(a.recorded()) != 2 {
		t.Fatalf("ListOwners = %v after %d requests, want an error after 2", err, len(a.recorded()))
	}
}

func TestGetOwner(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("GET /crm/v3/owners/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "71234568" && r.URL.Query().Get("archived") == "true" {
			writeJSON(w, 200, golden(t, "owner_archived.json"))
			return
		}
		writeJSON(w, 404, []byte(`{"status":"error","message":"Owner not found","correlationId":"c0ffee00-0000-4000-8000-000000000000","category":"OBJECT_NOT_FOUND"}`))
	})
	c := a.client(t)
	got, err := c.GetOwner(context.Background(), "71234568", true)
	if err != nil {
		t.Fatal(err)
	}
	want := hubspot.Owner{ID: "71234568", Email: "grace@example.com", Type: "PERSON", UserIDIncludingInactive: 9988777, Archived: true,
		CreatedAt: time.Date(2023, 5, 1, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owner (-want +got):\n%s", diff)
	}
	_, err = c.GetOwner(context.Background(), "71234568", false)
	var ae *hubspot.APIError
	if !errors.Is(err, hubspot.ErrNotFound) || !errors.As(err, &ae) || ae.Category != "OBJECT_NOT_FOUND" || hubspot.Transient(err) {
		t.Errorf("GetOwner(archived owner, archived=false) = %v, want a permanent ErrNotFound", err)
	}
}
