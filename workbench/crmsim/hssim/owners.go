package hssim

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Owners API paging (docs/crm-protocols.md#hubspot-owners-api; the maximum is
// docs/crm-protocols.md#unconfirmed-facts item 14).
const (
	DefaultOwnersLimit = 100
	MaxOwnersLimit     = 500
)

// PublicOwner is the Owners API's owner shape.
type PublicOwner struct {
	ID                      string `json:"id"`
	Email                   string `json:"email,omitempty"`
	Type                    string `json:"type"`
	FirstName               string `json:"firstName"`
	LastName                string `json:"lastName"`
	UserID                  *int64 `json:"userId"`
	UserIDIncludingInactive *int64 `json:"userIdIncludingInactive"`
	CreatedAt               string `json:"createdAt"`
	UpdatedAt               string `json:"updatedAt"`
	Archived                bool   `json:"archived"`
	Teams                   []Team `json:"teams,omitempty"`
}

func publicOwner(o *Owner) PublicOwner {
	p := PublicOwner{ID: o.ID, Email: o.Email, Type: o.Type, FirstName: o.FirstName, LastName: o.LastName,
		CreatedAt: fmtTime(o.CreatedAt), UpdatedAt: fmtTime(o.UpdatedAt), Archived: o.Archived, Teams: o.Teams}
	if o.UserID != 0 {
		uid := o.UserID
		p.UserIDIncludingInactive = &uid
		if !o.Archived {
			p.UserID = &uid
		}
	}
	return p
}

type ownersPage struct {
	Results []PublicOwner `json:"results"`
	Paging  *paging       `json:"paging,omitempty"`
}

type paging struct {
	Next struct {
		After string `json:"after"`
		Link  string `json:"link"`
	} `json:"next"`
}

func (a *Account) origin(r *http.Request) string {
	a.mu.RLock()
	u := a.baseURL
	a.mu.RUnlock()
	if u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func parseArchived(q url.Values) (bool, bool) {
	switch v := q.Get("archived"); v {
	case "":
		return false, true
	default:
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
}

// handleListOwners serves GET /crm/v3/owners: limit, after, email, archived (true = only archived).
func (a *Account) handleListOwners(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultOwnersLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxOwnersLimit {
			a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be between 1 and "+strconv.Itoa(MaxOwnersLimit)+", got "+strconv.Quote(v), nil)
			return
		}
		limit = n
	}
	archived, ok := parseArchived(q)
	if !ok {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "archived must be true or false", nil)
		return
	}
	after := q.Get("after")
	if after != "" {
		if _, ok := numericID(after); !ok {
			a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid after cursor: "+strconv.Quote(after), nil)
			return
		}
	}
	email := q.Get("email")
	if a.endless.Load() && !archived && email == "" {
		a.endlessOwners(w, r, q, after, limit)
		return
	}
	a.mu.RLock()
	start := 0
	if after != "" {
		start = sort.Search(len(a.st.ownerOrder), func(i int) bool { return lessID(after, a.st.ownerOrder[i]) })
	}
	page := ownersPage{Results: []PublicOwner{}}
	more := false
	for _, id := range a.st.ownerOrder[start:] {
		o := a.st.owners[id]
		if o.Archived != archived || (email != "" && !strings.EqualFold(o.Email, email)) {
			continue
		}
		if len(page.Results) == limit {
			more = true
			break
		}
		page.Results = append(page.Results, publicOwner(o))
	}
	a.mu.RUnlock()
	if more {
		page.Paging = a.nextPage(r, q, page.Results[len(page.Results)-1].ID)
	}
	writeJSON(w, http.StatusOK, page)
}

// nextPage is the paging of a page whose last owner is last: the same query after it.
func (a *Account) nextPage(r *http.Request, q url.Values, last string) *paging {
	next := url.Values{}
	for k, v := range q {
		if k != "after" {
			next[k] = v
		}
	}
	next.Set("after", last)
	p := &paging{}
	p.Next.After = last
	p.Next.Link = a.origin(r) + "/crm/v3/owners?" + next.Encode()
	return p
}

// endlessOwners answers a page of limit generated owners after the cursor, with a next link.
func (a *Account) endlessOwners(w http.ResponseWriter, r *http.Request, q url.Values, after string, limit int) {
	first := int64(900000001)
	if n, err := strconv.ParseInt(after, 10, 64); err == nil && n >= first {
		first = n + 1
	}
	now := fmtTime(a.cfg.Now())
	page := ownersPage{Results: make([]PublicOwner, 0, limit)}
	for i := range int64(limit) {
		id := strconv.FormatInt(first+i, 10)
		page.Results = append(page.Results, PublicOwner{ID: id, Email: "endless-" + id + "@endless.example", Type: OwnerPerson,
			FirstName: "Endless", LastName: id, CreatedAt: now, UpdatedAt: now})
	}
	page.Paging = a.nextPage(r, q, page.Results[len(page.Results)-1].ID)
	writeJSON(w, http.StatusOK, page)
}

// handleGetOwner serves GET /crm/v3/owners/{ownerId}?idProperty=id|userId&archived=.
func (a *Account) handleGetOwner(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	archived, ok := parseArchived(q)
	if !ok {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "archived must be true or false", nil)
		return
	}
	id := r.PathValue("ownerId")
	idProp := q.Get("idProperty")
	if idProp != "" && idProp != "id" && idProp != "userId" {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "idProperty must be id or userId", nil)
		return
	}
	a.mu.RLock()
	var found *Owner
	if idProp == "userId" {
		for _, oid := range a.st.ownerOrder {
			if o := a.st.owners[oid]; strconv.FormatInt(o.UserID, 10) == id && o.Archived == archived {
				found = o
				break
			}
		}
	} else if o, ok := a.st.owners[id]; ok && o.Archived == archived {
		found = o
	}
	var out PublicOwner
	if found != nil {
		out = publicOwner(found)
	}
	a.mu.RUnlock()
	if found == nil {
		a.writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Owner not found: "+id, map[string][]string{"id": {id}})
		return
	}
	writeJSON(w, http.StatusOK, out)
}
