package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ownersync/ownersync/libs/sfid"
)

// OwnerUpdate sets the owner of one Contact or Lead.
type OwnerUpdate struct {
	ObjectType string // Contact or Lead
	ID         string // the record
	OwnerID    string // a User (005…), or for a Lead also a Queue (00G…)
}

// Result is the outcome of one OwnerUpdate: a SaveResult of sObject Collections
// (docs/crm-protocols.md#sobject-collections). A failed record may have no ID.
type Result struct {
	ID      string      `json:"id,omitempty"`
	Success bool        `json:"success"`
	Errors  []ErrorItem `json:"errors"`
}

// Err returns nil for a success and otherwise an *APIError built from the record's first error
// (Code is its statusCode), which Transient classifies.
func (r Result) Err() error {
	if r.Success {
		return nil
	}
	items := make([]ErrorItem, len(r.Errors))
	for i, e := range r.Errors {
		items[i] = sanitize(e)
	}
	ae := &APIError{HTTPStatus: http.StatusOK, Errors: items}
	if len(items) > 0 {
		ae.Code, ae.Message, ae.Fields = items[0].ErrorCode, items[0].Message, items[0].Fields
	} else {
		ae.Message = "record failed without an error"
	}
	return ae
}

// MaxCollectionRecords is the sObject Collections limit per request.
const MaxCollectionRecords = 200

// UpdateOwner sets one record's OwnerId with PATCH /sobjects/{objectType}/{id} (204 No Content).
func (c *Client) UpdateOwner(ctx context.Context, objectType, id, ownerID string) error {
	if err := checkUpdate(OwnerUpdate{ObjectType: objectType, ID: id, OwnerID: ownerID}); err != nil {
		return err
	}
	r := request{
		method: http.MethodPatch,
		path:   c.dataPath("/sobjects/" + objectType + "/" + url.PathEscape(id)),
		body:   map[string]string{"OwnerId": ownerID},
	}
	if _, err := c.do(ctx, r, nil); err != nil {
		return fmt.Errorf("update owner of %s %s: %w", objectType, id, err)
	}
	return nil
}

// collectionRecord is one element of a Collections update body.
type collectionRecord struct {
	Attributes collectionAttributes `json:"attributes"`
	ID         string               `json:"id"`
	OwnerID    string               `json:"OwnerId"`
}

type collectionAttributes struct {
	Type string `json:"type"`
}

type collectionRequest struct {
	AllOrNone bool               `json:"allOrNone"`
	Records   []collectionRecord `json:"records"`
}

// UpdateOwners sets owners with sObject Collections (PATCH /composite/sobjects, allOrNone false),
// at most 200 records a request. Updates are grouped by object type (keeping their order within a
// type) so each request has as few type chunks as possible. The returned results are in the order
// of updates, matched to the response by position; a record's failure is in its Result
// (Result.Err), not in the error.
//
// The error is for whole requests: an invalid update (nothing is sent), or a request Salesforce
// refused. Requests already made keep their results; the updates of the failed request and of
// those not sent have a zero Result. Setting an owner is idempotent, so sending the batch again is
// safe.
func (c *Client) UpdateOwners(ctx context.Context, updates []OwnerUpdate) ([]Result, error) {
	for i, u := range updates {
		if err := checkUpdate(u); err != nil {
			return nil, fmt.Errorf("update owners: update %d: %w", i, err)
		}
	}
	order := make([]int, len(updates))
	for i := range order {
		order[i] = i
	}
	typeRank := map[string]int{}
	for _, u := range updates {
		if _, ok := typeRank[u.ObjectType]; !ok {
			typeRank[u.ObjectType] = len(typeRank)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		return typeRank[updates[order[a]].ObjectType] < typeRank[updates[order[b]].ObjectType]
	})

	results := make([]Result, len(updates))
	for _, span := range collectionSpans(updates, order) {
		start := span[0]
		idx := order[span[0]:span[1]]
		body := collectionRequest{AllOrNone: false, Records: make([]collectionRecord, len(idx))}
		for j, i := range idx {
			u := updates[i]
			body.Records[j] = collectionRecord{Attributes: collectionAttributes{Type: u.ObjectType}, ID: u.ID, OwnerID: u.OwnerID}
		}
		var got []Result
		r := request{method: http.MethodPatch, path: c.dataPath("/composite/sobjects"), body: body}
		c.metrics.Records(ctx, "salesforce", c.tenant, "composite_update", len(idx))
		if _, err := c.do(ctx, r, &got); err != nil {
			return results, fmt.Errorf("update owners (records %d–%d of %d): %w", start+1, start+len(idx), len(updates), err)
		}
		if len(got) != len(idx) {
			return results, fmt.Errorf("update owners: sent %d records, got %d results", len(idx), len(got))
		}
		for j, i := range idx {
			results[i] = got[j]
		}
	}
	return results, nil
}

// collectionSpans cuts order into consecutive [start, end) requests of at most
// MaxCollectionRecords records in which no record appears twice; a repeated record starts a new
// request, so its updates apply in input order and the last one wins.
func collectionSpans(updates []OwnerUpdate, order []int) [][2]int {
	var spans [][2]int
	start := 0
	inChunk := map[string]bool{}
	for k, i := range order {
		id := recordKey(updates[i].ID)
		if k-start == MaxCollectionRecords || inChunk[id] {
			spans = append(spans, [2]int{start, k})
			start = k
			clear(inChunk)
		}
		inChunk[id] = true
	}
	if start < len(order) {
		spans = append(spans, [2]int{start, len(order)})
	}
	return spans
}

// recordKey is a case-insensitive key for a record id: 18-character ids are case-insensitive, and
// a 15-character id becomes its 18-character form first.
func recordKey(id string) string {
	if len(id) == 15 {
		if id18, err := sfid.To18(id); err == nil {
			id = id18
		}
	}
	return strings.ToUpper(id)
}

func checkUpdate(u OwnerUpdate) error {
	switch {
	case u.ObjectType != Contact && u.ObjectType != Lead:
		return fmt.Errorf("object type %q: want Contact or Lead", u.ObjectType)
	case u.ID == "":
		return fmt.Errorf("%s: empty record id", u.ObjectType)
	case u.OwnerID == "":
		return fmt.Errorf("%s %s: empty owner id", u.ObjectType, u.ID)
	}
	return nil
}

// ErrOwnerNotAllowed is returned by CheckOwner for an owner id the object cannot take.
var ErrOwnerNotAllowed = errors.New("salesforce: owner id not allowed for this object")

// CheckOwner applies the writer rule of docs/crm-protocols.md#salesforce-ids before a write: a User
// (005…) may own a Contact or a Lead, a Queue (00G…) only a Lead (contacts cannot be assigned to
// queues), and nothing else may own either. The client does not call it itself; the writer does, so
// that it can report such a mapping instead of spending an API call on it.
func CheckOwner(objectType, ownerID string) error {
	switch p := sfid.Prefix(ownerID); {
	case p == sfid.PrefixUser && (objectType == Contact || objectType == Lead):
		return nil
	case p == sfid.PrefixQueue && objectType == Lead:
		return nil
	default:
		return fmt.Errorf("%w: %s %s", ErrOwnerNotAllowed, objectType, ownerID)
	}
}
