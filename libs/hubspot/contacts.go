package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// OwnerProperty is the contact property holding the owner ID (not the user ID).
const OwnerProperty = "hubspot_owner_id"

// MaxBatchInputs is the limit of inputs per batch request.
const MaxBatchInputs = 100

// Contact is a contact as ownersync reads it.
type Contact struct {
	ID string
	// Email and OwnerID are the email and hubspot_owner_id properties; OwnerID is "" when unowned.
	Email     string
	OwnerID   string
	Archived  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// simpleObject is SimplePublicObject: property values are strings or null.
type simpleObject struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
	CreatedAt  time.Time          `json:"createdAt"`
	UpdatedAt  time.Time          `json:"updatedAt"`
	Archived   bool               `json:"archived"`
}

func (o simpleObject) prop(name string) string {
	if v := o.Properties[name]; v != nil {
		return *v
	}
	return ""
}

// FindContactByEmail looks a contact up by its unique email property with
// GET /crm/v3/objects/contacts/{email}?idProperty=email; errors.Is(err, ErrNotFound) when no
// contact has that email.
func (c *Client) FindContactByEmail(ctx context.Context, email string) (Contact, error) {
	if email == "" {
		return Contact{}, errors.New("find hubspot contact: empty email")
	}
	q := url.Values{"idProperty": {"email"}, "properties": {"email", OwnerProperty}}
	var o simpleObject
	if _, err := c.do(ctx, http.MethodGet, "/crm/v3/objects/contacts/"+url.PathEscape(email), q, nil, &o); err != nil {
		return Contact{}, fmt.Errorf("find hubspot contact by email: %w", err)
	}
	return Contact{ID: o.ID, Email: o.prop("email"), OwnerID: o.prop(OwnerProperty), Archived: o.Archived, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}, nil
}

// OwnerUpdate sets one contact's owner.
type OwnerUpdate struct {
	ContactID string
	// OwnerID is the owner id; "" clears the owner.
	OwnerID string
	// TraceID is sent as objectWriteTraceId (ownersync's task id) and matches a 207 error back to
	// the input. Required and unique within one call.
	TraceID string
}

// ItemResult is the outcome of one OwnerUpdate; Err is nil when the update was applied.
type ItemResult struct {
	OwnerUpdate
	// Err is an *APIError (HTTPStatus 207) for an input HubSpot refused, ErrNoResult when the
	// response named it nowhere, or the whole request's error.
	Err error
}

// BatchResponse is one batch response (200 BatchResponseSimplePublicObject or 207
// BatchResponseSimplePublicObjectWithErrors).
type BatchResponse struct {
	HTTPStatus  int
	Status      string // PENDING, PROCESSING, CANCELED, COMPLETE
	NumErrors   int
	Errors      []APIError
	RequestedAt time.Time
	StartedAt   time.Time
	CompletedAt time.Time
}

// BatchResult is the outcome of BatchUpdateOwners.
type BatchResult struct {
	// Items are the updates' outcomes, in input order.
	Items []ItemResult
	// Responses are the batch responses received, one per request of up to 100 inputs.
	Responses []BatchResponse
}

// Failed returns the items whose Err is not nil.
func (r BatchResult) Failed() []ItemResult {
	var out []ItemResult
	for _, it := range r.Items {
		if it.Err != nil {
			out = append(out, it)
		}
	}
	return out
}

type batchInput struct {
	ID                 string            `json:"id"`
	ObjectWriteTraceID string            `json:"objectWriteTraceId"`
	Properties         map[string]string `json:"properties"`
}

type batchRequest struct {
	Inputs []batchInput `json:"inputs"`
}

type batchResponse struct {
	Status      string         `json:"status"`
	Results     []simpleObject `json:"results"`
	NumErrors   int            `json:"numErrors"`
	Errors      []APIError     `json:"errors"`
	RequestedAt time.Time      `json:"requestedAt"`
	StartedAt   time.Time      `json:"startedAt"`
	CompletedAt time.Time      `json:"completedAt"`
}

// BatchUpdateOwners sets hubspot_owner_id on contacts with POST
// /crm/v3/objects/contacts/batch/update, up to 100 inputs a request, each with its TraceID as
// objectWriteTraceId. A contact updated twice goes into two requests, in input order. Both 200 and 207 are handled: an error of a 207 is matched to its input by
// context.objectWriteTraceId (or, failing that, context.ids); an input in results and in no error
// succeeded.
//
// The error is for whole requests: invalid updates (nothing is sent) or a request HubSpot refused
// (4xx/5xx, parsed into *APIError). Then the items of the failed request and of those not sent carry
// that error too, while earlier requests keep their outcomes. Setting an owner is idempotent, so
// sending updates again is safe.
func (c *Client) BatchUpdateOwners(ctx context.Context, updates []OwnerUpdate) (BatchResult, error) {
	traces := make(map[string]bool, len(updates))
	for i, u := range updates {
		switch {
		case u.ContactID == "":
			return BatchResult{}, fmt.Errorf("batch update owners: update %d: empty contact id", i)
		case u.TraceID == "":
			return BatchResult{}, fmt.Errorf("batch update owners: update %d: empty trace id", i)
		case traces[u.TraceID]:
			return BatchResult{}, fmt.Errorf("batch update owners: update %d: trace id %q repeated", i, u.TraceID)
		}
		traces[u.TraceID] = true
	}
	res := BatchResult{Items: make([]ItemResult, len(updates))}
	for i, u := range updates {
		res.Items[i].OwnerUpdate = u
	}
	for _, span := range batchSpans(updates) {
		start, end := span[0], span[1]
		chunk := updates[start:end]
		req := batchRequest{Inputs: make([]batchInput, len(chunk))}
		for j, u := range chunk {
			req.Inputs[j] = batchInput{ID: u.ContactID, ObjectWriteTraceID: u.TraceID, Properties: map[string]string{OwnerProperty: u.OwnerID}}
		}
		var resp batchResponse
		c.metrics.Records(ctx, "hubspot", c.tenant, "batch_update", len(chunk))
		status, err := c.do(ctx, http.MethodPost, "/crm/v3/objects/contacts/batch/update", nil, req, &resp)
		if err != nil {
			err = fmt.Errorf("batch update hubspot contact owners (inputs %d–%d of %d): %w", start+1, end, len(updates), err)
			for i := start; i < len(updates); i++ {
				res.Items[i].Err = err
			}
			return res, err
		}
		resp.sanitize()
		res.Responses = append(res.Responses, BatchResponse{
			HTTPStatus: status, Status: resp.Status, NumErrors: resp.NumErrors, Errors: resp.Errors,
			RequestedAt: resp.RequestedAt, StartedAt: resp.StartedAt, CompletedAt: resp.CompletedAt,
		})
		matchBatch(res.Items[start:end], status, resp)
	}
	return res, nil
}

// batchSpans cuts updates into consecutive [start, end) requests of at most MaxBatchInputs inputs
// in which no contact appears twice (HubSpot refuses duplicate ids in one batch); a repeated
// contact starts a new request, so updates apply in input order and the last one wins.
func batchSpans(updates []OwnerUpdate) [][2]int {
	var spans [][2]int
	start := 0
	inChunk := map[string]bool{}
	for i, u := range updates {
		if i-start == MaxBatchInputs || inChunk[u.ContactID] {
			spans = append(spans, [2]int{start, i})
			start = i
			clear(inChunk)
		}
		inChunk[u.ContactID] = true
	}
	if start < len(updates) {
		spans = append(spans, [2]int{start, len(updates)})
	}
	return spans
}

// matchBatch sets each item's Err from one batch response.
func matchBatch(items []ItemResult, status int, resp batchResponse) {
	byTrace := make(map[string]int, len(items))
	byID := make(map[string][]int, len(items))
	for i, it := range items {
		byTrace[it.TraceID] = i
		byID[it.ContactID] = append(byID[it.ContactID], i)
	}
	for k := range resp.Errors {
		e := resp.Errors[k] // a copy per error: items point at their own
		e.HTTPStatus = status
		matched := false
		for _, tr := range e.Context["objectWriteTraceId"] {
			if i, ok := byTrace[tr]; ok {
				items[i].Err = &e
				matched = true
			}
		}
		if matched {
			continue
		}
		for _, id := range e.Context["ids"] {
			for _, i := range byID[id] {
				items[i].Err = &e
			}
		}
	}
	done := make(map[string]bool, len(resp.Results))
	for _, r := range resp.Results {
		done[r.ID] = true
	}
	for i := range items {
		if items[i].Err == nil && !done[items[i].ContactID] {
			items[i].Err = fmt.Errorf("contact %s (trace %s): %w", items[i].ContactID, items[i].TraceID, ErrNoResult)
		}
	}
}

// batchReadRequest is BatchReadInputSimplePublicObjectId.
type batchReadRequest struct {
	Properties            []string         `json:"properties"`
	PropertiesWithHistory []string         `json:"propertiesWithHistory"`
	IDProperty            string           `json:"idProperty,omitempty"`
	Inputs                []batchReadInput `json:"inputs"`
}

type batchReadInput struct {
	ID string `json:"id"`
}

// BatchReadContacts reads contacts with POST /crm/v3/objects/contacts/batch/read (archived=false),
// at most MaxBatchInputs ids a request: by record id when idProperty is "", or by a unique
// property such as "email" (ids are then its values). It returns the contacts found, with their
// email and owner, in no particular order; an id no live contact has is simply absent (HubSpot
// answers 207 with an OBJECT_NOT_FOUND error naming it). Any other error is returned.
func (c *Client) BatchReadContacts(ctx context.Context, idProperty string, ids []string) ([]Contact, error) {
	var out []Contact
	for start := 0; start < len(ids); start += MaxBatchInputs {
		chunk := ids[start:min(start+MaxBatchInputs, len(ids))]
		req := batchReadRequest{Properties: []string{"email", OwnerProperty}, PropertiesWithHistory: []string{},
			IDProperty: idProperty, Inputs: make([]batchReadInput, len(chunk))}
		for i, id := range chunk {
			req.Inputs[i] = batchReadInput{ID: id}
		}
		var resp batchResponse
		status, err := c.do(ctx, http.MethodPost, "/crm/v3/objects/contacts/batch/read", url.Values{"archived": {"false"}}, req, &resp)
		if err != nil {
			return out, fmt.Errorf("batch read hubspot contacts (%d of %d): %w", len(chunk), len(ids), err)
		}
		resp.sanitize()
		for k := range resp.Errors {
			if e := resp.Errors[k]; e.Category != "OBJECT_NOT_FOUND" {
				e.HTTPStatus = status
				return out, fmt.Errorf("batch read hubspot contacts: %w", &e)
			}
		}
		for _, o := range resp.Results {
			out = append(out, Contact{ID: o.ID, Email: o.prop("email"), OwnerID: o.prop(OwnerProperty), Archived: o.Archived,
				CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt})
		}
	}
	return out, nil
}
