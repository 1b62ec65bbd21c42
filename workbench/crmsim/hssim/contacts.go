package hssim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// BatchLimit is the most inputs one batch request may carry
// (docs/crm-protocols.md#hubspot-contacts).
const BatchLimit = 100

// OwnerProperty is the contact property holding the owner id.
const OwnerProperty = "hubspot_owner_id"

// SimplePublicObject is a CRM object as the API returns it.
type SimplePublicObject struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
	CreatedAt  string             `json:"createdAt"`
	UpdatedAt  string             `json:"updatedAt"`
	Archived   bool               `json:"archived"`
}

// StandardError is one failed input of a batch (207).
type StandardError struct {
	Status      string              `json:"status"`
	Category    string              `json:"category"`
	SubCategory string              `json:"subCategory,omitempty"`
	Message     string              `json:"message"`
	Context     map[string][]string `json:"context"`
	Errors      []ErrorDetail       `json:"errors"`
	Links       map[string]string   `json:"links"`
	httpStatus  int
	hasTraceID  bool
}

// BatchResponse is BatchResponseSimplePublicObject, or …WithErrors when NumErrors > 0.
type BatchResponse struct {
	Status      string               `json:"status"`
	Results     []SimplePublicObject `json:"results"`
	NumErrors   int                  `json:"numErrors,omitempty"`
	Errors      []StandardError      `json:"errors,omitempty"`
	RequestedAt string               `json:"requestedAt"`
	StartedAt   string               `json:"startedAt"`
	CompletedAt string               `json:"completedAt"`
}

// contactView renders a contact with the requested properties (defaults when none asked) plus
// the ones always returned.
func contactView(c *Contact, props []string) SimplePublicObject {
	out := SimplePublicObject{ID: c.ID, Properties: map[string]*string{}, CreatedAt: fmtTime(c.CreatedAt), UpdatedAt: fmtTime(c.UpdatedAt), Archived: c.Archived}
	if len(props) == 0 {
		props = defaultProps
	} else {
		props = append(slices.Clone(props), "createdate", "hs_object_id", "lastmodifieddate")
	}
	for _, p := range props {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		var v string
		switch p {
		case "hs_object_id":
			v = c.ID
		case "createdate":
			v = fmtTime(c.CreatedAt)
		case "lastmodifieddate":
			v = fmtTime(c.UpdatedAt)
		default:
			if !writableProps[p] {
				continue
			}
			var ok bool
			if v, ok = c.Properties[p]; !ok {
				out.Properties[p] = nil
				continue
			}
		}
		out.Properties[p] = &v
	}
	return out
}

func requestedProps(r *http.Request) []string {
	var out []string
	for _, v := range r.URL.Query()["properties"] {
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

// findContact looks a contact up by id or by a unique property (only email); a.mu held.
func (a *Account) findContact(id, idProperty string) (*Contact, bool) {
	switch strings.ToLower(idProperty) {
	case "", "hs_object_id":
		c, ok := a.st.contacts[id]
		return c, ok
	case "email":
		cid, ok := a.st.emails[strings.ToLower(id)]
		if !ok {
			return nil, false
		}
		return a.st.contacts[cid], true
	}
	return nil, false
}

func (a *Account) handleGetContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("contactId")
	archived, ok := parseArchived(r.URL.Query())
	if !ok {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "archived must be true or false", nil)
		return
	}
	idProp := r.URL.Query().Get("idProperty")
	if idProp != "" && !strings.EqualFold(idProp, "email") && idProp != "hs_object_id" {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Property %s is not a unique identifier", idProp), nil)
		return
	}
	a.mu.RLock()
	c, found := a.findContact(id, idProp)
	var view SimplePublicObject
	if found && c.Archived == archived {
		view = contactView(c, requestedProps(r))
	} else {
		found = false
	}
	a.mu.RUnlock()
	if !found {
		a.writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", map[string][]string{"id": {id}})
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// updateInput is one input of a batch update (or the body of a single PATCH).
type updateInput struct {
	ID                 string                     `json:"id"`
	IDProperty         string                     `json:"idProperty,omitempty"`
	ObjectWriteTraceID string                     `json:"objectWriteTraceId,omitempty"`
	Properties         map[string]json.RawMessage `json:"properties"`
}

// propertyError builds HubSpot's "Property values were not valid" error.
func propertyError(name, value, code, msg string) *StandardError {
	detail, _ := json.Marshal([]map[string]any{{"isValid": false, "message": msg, "error": code, "name": name, "localizedErrorMessage": msg}})
	return &StandardError{Status: "error", Category: "VALIDATION_ERROR",
		Message:    "Property values were not valid: " + string(detail),
		Errors:     []ErrorDetail{{Message: msg, Code: code, Context: map[string][]string{"propertyName": {name}}}},
		httpStatus: http.StatusBadRequest}
}

// validateInput checks one update; a.mu held.
func (a *Account) validateInput(method, path string, in updateInput) (*Contact, map[string]string, *StandardError) {
	c, ok := a.findContact(in.ID, in.IDProperty)
	if !ok || c.Archived {
		return nil, nil, &StandardError{Status: "error", Category: "OBJECT_NOT_FOUND", Message: "Object not found.  objectId are usually numeric.",
			Errors: []ErrorDetail{}, httpStatus: http.StatusNotFound}
	}
	if rule, ok := a.faults.Record(method, path, c.ID); ok {
		a.log.CountFault()
		return nil, nil, &StandardError{Status: "error", Category: cmpOr(rule.Code, "VALIDATION_ERROR"),
			Message: cmpOr(rule.Message, "injected failure for object "+c.ID), Errors: []ErrorDetail{},
			httpStatus: cmpOr(rule.Status, http.StatusBadRequest)}
	}
	if in.Properties == nil {
		return nil, nil, &StandardError{Status: "error", Category: "VALIDATION_ERROR", Message: "properties is required", Errors: []ErrorDetail{}, httpStatus: http.StatusBadRequest}
	}
	props := map[string]string{}
	names := make([]string, 0, len(in.Properties))
	for k := range in.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		name := strings.ToLower(k)
		var v string
		if err := json.Unmarshal(in.Properties[k], &v); err != nil {
			return nil, nil, propertyError(name, string(in.Properties[k]), "INVALID_STRING", fmt.Sprintf("%s is not a valid string value", in.Properties[k]))
		}
		switch {
		case readOnlyProps[name]:
			return nil, nil, propertyError(name, v, "READ_ONLY_VALUE", fmt.Sprintf("%s is a read only property; its value cannot be set.", name))
		case !writableProps[name]:
			return nil, nil, propertyError(name, v, "PROPERTY_DOESNT_EXIST", fmt.Sprintf("Property \"%s\" does not exist", name))
		case name == OwnerProperty && v != "":
			o, ok := a.st.owners[v]
			if !ok || (o.Archived && !a.cfg.AcceptArchivedOwners) {
				return nil, nil, propertyError(name, v, "INVALID_OWNER_ID", fmt.Sprintf("%s is not a valid owner id", v))
			}
		case name == "email" && v != "":
			if other, dup := a.st.emails[strings.ToLower(v)]; dup && other != c.ID {
				return nil, nil, &StandardError{Status: "error", Category: "CONFLICT", Message: "Contact already exists. Existing ID: " + other, Errors: []ErrorDetail{}, httpStatus: http.StatusConflict}
			}
		}
		props[name] = v
	}
	return c, props, nil
}

// applyProps writes validated properties; a.mu held. An owner change fires a webhook event.
func (a *Account) applyProps(c *Contact, props map[string]string, source, sourceID string, now time.Time) {
	ownerBefore := c.Properties[OwnerProperty]
	for k, v := range props {
		if k == "email" {
			if old := strings.ToLower(c.Properties["email"]); old != "" {
				delete(a.st.emails, old)
			}
			if v != "" {
				a.st.emails[strings.ToLower(v)] = c.ID
			}
		}
		if v == "" {
			delete(c.Properties, k)
			continue
		}
		c.Properties[k] = v
	}
	c.UpdatedAt = now
	if v, ok := props[OwnerProperty]; ok && v != ownerBefore {
		a.wh.enqueue(c.ID, OwnerProperty, v, source, sourceID, now)
	}
}

func (a *Account) apiSource() (string, string) {
	return "API", fmt.Sprint(a.cfg.AppID)
}

func (a *Account) handleUpdateContact(w http.ResponseWriter, r *http.Request) {
	var in updateInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return
	}
	in.ID = r.PathValue("contactId")
	in.IDProperty = r.URL.Query().Get("idProperty")
	a.mu.Lock()
	defer a.mu.Unlock()
	c, props, se := a.validateInput(r.Method, r.URL.Path, in)
	if se != nil {
		a.writeError(w, se.httpStatus, se.Category, se.Message, map[string][]string{"id": {in.ID}}, se.Errors...)
		return
	}
	now := a.now()
	src, srcID := a.apiSource()
	a.applyProps(c, props, src, srcID, now)
	changed := make([]string, 0, len(props))
	for k := range props {
		changed = append(changed, k)
	}
	writeJSON(w, http.StatusOK, contactView(c, changed))
}

func (a *Account) handleBatchUpdate(w http.ResponseWriter, r *http.Request) {
	requested := a.now()
	var req struct {
		Inputs []updateInput `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error(), nil)
		return
	}
	if req.Inputs == nil {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "inputs is required", nil)
		return
	}
	if len(req.Inputs) > BatchLimit {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Batch input limit exceeded: %d inputs given, at most %d allowed.", len(req.Inputs), BatchLimit), nil)
		return
	}
	seen := map[string]bool{}
	var dups []string
	for _, in := range req.Inputs {
		key := strings.ToLower(in.IDProperty) + ":" + strings.ToLower(in.ID)
		if seen[key] {
			dups = append(dups, in.ID)
		}
		seen[key] = true
	}
	if len(dups) > 0 {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Duplicate IDs found in batch input: ["+strings.Join(dups, ", ")+"]. IDs must be unique", nil)
		return
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	type ok struct {
		c     *Contact
		props map[string]string
	}
	var oks []ok
	var errs []StandardError
	for _, in := range req.Inputs {
		c, props, se := a.validateInput(r.Method, r.URL.Path, in)
		if se == nil {
			oks = append(oks, ok{c, props})
			continue
		}
		if in.ObjectWriteTraceID != "" {
			se.Context = map[string][]string{"objectWriteTraceId": {in.ObjectWriteTraceID}}
			se.hasTraceID = true
		} else {
			se.Context = map[string][]string{"ids": {in.ID}}
		}
		se.Links = map[string]string{}
		errs = append(errs, *se)
	}
	// Assumption (docs/crm-protocols.md#unconfirmed-facts item 16): a failed input without
	// objectWriteTraceId fails the whole batch unless PartialWithoutTraceID is set.
	if !a.cfg.PartialWithoutTraceID {
		for _, se := range errs {
			if !se.hasTraceID {
				status := http.StatusBadRequest
				if se.Category == "OBJECT_NOT_FOUND" {
					status = http.StatusNotFound
				}
				a.writeError(w, status, se.Category, se.Message, se.Context, se.Errors...)
				return
			}
		}
	}
	now := a.now()
	src, srcID := a.apiSource()
	resp := BatchResponse{Status: "COMPLETE", Results: []SimplePublicObject{}, RequestedAt: fmtTime(requested), StartedAt: fmtTime(requested)}
	for _, o := range oks {
		a.applyProps(o.c, o.props, src, srcID, now)
		names := make([]string, 0, len(o.props))
		for k := range o.props {
			names = append(names, k)
		}
		resp.Results = append(resp.Results, contactView(o.c, names))
	}
	resp.CompletedAt = fmtTime(a.now())
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusMultiStatus
		resp.NumErrors = len(errs)
		resp.Errors = errs
	}
	writeJSON(w, status, resp)
}

// handleBatchRead serves POST /crm/v3/objects/contacts/batch/read: up to BatchLimit inputs, by
// record id or by idProperty email, archived=false (default) or true. Inputs no contact matches are
// named in one OBJECT_NOT_FOUND error of a 207 answer; a contact named twice is returned once.
func (a *Account) handleBatchRead(w http.ResponseWriter, r *http.Request) {
	requested := a.now()
	archived, ok := parseArchived(r.URL.Query())
	if !ok {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "archived must be true or false", nil)
		return
	}
	var req struct {
		Properties []string `json:"properties"`
		IDProperty string   `json:"idProperty"`
		Inputs     []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error(), nil)
		return
	}
	switch {
	case req.Inputs == nil:
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "inputs is required", nil)
		return
	case len(req.Inputs) > BatchLimit:
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Batch input limit exceeded: %d inputs given, at most %d allowed.", len(req.Inputs), BatchLimit), nil)
		return
	case req.IDProperty != "" && !strings.EqualFold(req.IDProperty, "email") && req.IDProperty != "hs_object_id":
		a.writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Property %s is not a unique identifier", req.IDProperty), nil)
		return
	}
	a.mu.RLock()
	resp := BatchResponse{Status: "COMPLETE", Results: []SimplePublicObject{}, RequestedAt: fmtTime(requested), StartedAt: fmtTime(requested)}
	seen := map[string]bool{}
	var missing []string
	for _, in := range req.Inputs {
		c, found := a.findContact(in.ID, req.IDProperty)
		if !found || c.Archived != archived {
			missing = append(missing, in.ID)
			continue
		}
		if !seen[c.ID] {
			seen[c.ID] = true
			resp.Results = append(resp.Results, contactView(c, req.Properties))
		}
	}
	a.mu.RUnlock()
	resp.CompletedAt = fmtTime(a.now())
	status := http.StatusOK
	if len(missing) > 0 {
		status = http.StatusMultiStatus
		resp.NumErrors = 1
		resp.Errors = []StandardError{{Status: "error", Category: "OBJECT_NOT_FOUND",
			Message: "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
			Context: map[string][]string{"ids": missing}, Errors: []ErrorDetail{}, Links: map[string]string{}}}
	}
	writeJSON(w, status, resp)
}
