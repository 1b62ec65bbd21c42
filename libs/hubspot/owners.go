package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Owner is a PublicOwner of the Owners API v3 (docs/crm-protocols.md#hubspot-owners-api and
// docs/crm-protocols.md#identity-edge-cases).
type Owner struct {
	// ID is the owner ID, the value of hubspot_owner_id. It survives archiving.
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	// Type is PERSON or QUEUE.
	Type string `json:"type"`
	// UserID is the user's ID, nil when the owner is archived. It is not an owner ID.
	UserID *int64 `json:"userId"`
	// UserIDIncludingInactive keeps the user ID of archived owners too.
	UserIDIncludingInactive int64     `json:"userIdIncludingInactive"`
	Archived                bool      `json:"archived"`
	Teams                   []Team    `json:"teams"`
	CreatedAt               time.Time `json:"createdAt"`
	UpdatedAt               time.Time `json:"updatedAt"`
}

// Team is one of an owner's teams.
type Team struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Primary bool   `json:"primary"`
}

// Owner types.
const (
	OwnerPerson = "PERSON"
	OwnerQueue  = "QUEUE"
)

type ownersPage struct {
	Results []Owner `json:"results"`
	Paging  *struct {
		Next *struct {
			After string `json:"after"`
			Link  string `json:"link"`
		} `json:"next"`
	} `json:"paging"`
}

// ListOwners calls fn with every owner of one pass, page by page: archived=false gives the active
// owners, archived=true only the archived ones (deactivated users), so a full sync makes both
// passes. It pages with limit and after until the response has no paging. An error from fn stops
// the listing and is returned as is.
func (c *Client) ListOwners(ctx context.Context, archived bool, fn func(page []Owner) error) error {
	after := ""
	seen := map[string]bool{}
	for {
		q := url.Values{"limit": {strconv.Itoa(c.pageSize)}, "archived": {strconv.FormatBool(archived)}}
		if after != "" {
			q.Set("after", after)
		}
		var page ownersPage
		if _, err := c.do(ctx, http.MethodGet, "/crm/v3/owners", q, nil, &page); err != nil {
			return fmt.Errorf("list hubspot owners (archived=%t): %w", archived, err)
		}
		c.metrics.Records(ctx, "hubspot", c.tenant, "owners_list", len(page.Results))
		if len(page.Results) > 0 {
			if err := fn(page.Results); err != nil {
				return err
			}
		}
		if page.Paging == nil || page.Paging.Next == nil || page.Paging.Next.After == "" {
			return nil
		}
		after = page.Paging.Next.After
		if seen[after] {
			return fmt.Errorf("list hubspot owners (archived=%t): paging cursor %q repeated", archived, after)
		}
		seen[after] = true
	}
}

// GetOwner returns the owner with id. archived must match the owner's state: an archived owner is
// only found with archived=true. errors.Is(err, ErrNotFound) when there is none.
func (c *Client) GetOwner(ctx context.Context, id string, archived bool) (Owner, error) {
	var o Owner
	q := url.Values{"archived": {strconv.FormatBool(archived)}}
	if _, err := c.do(ctx, http.MethodGet, "/crm/v3/owners/"+url.PathEscape(id), q, nil, &o); err != nil {
		return Owner{}, fmt.Errorf("get hubspot owner %s: %w", id, err)
	}
	return o, nil
}
