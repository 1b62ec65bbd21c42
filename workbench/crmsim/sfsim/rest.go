package sfsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/sfid"
)

// Query paging limits (docs/crm-protocols.md#soql-queries).
const (
	DefaultBatchSize = 2000
	MinBatchSize     = 200
	MaxBatchSize     = 2000
	// CollectionLimit is the most records one sObject Collections request may carry (§2.5).
	CollectionLimit = 200
	// MaxChunks is the most type chunks one Collections request may have (a new chunk starts at
	// every change of object type).
	MaxChunks = 10
	// cursorIdle is how long an unused query locator stays valid.
	cursorIdle = 15 * time.Minute
)

// result is a query's matching rows; pages are rendered when served.
type result struct {
	object string
	fields []fieldDef
	rows   []hit
}

type hit struct {
	row any
	id  string
	key any // ORDER BY value
}

type cursor struct {
	res      *result
	version  string
	lastUsed time.Time
}

func (o *Org) serveREST(w http.ResponseWriter, r *http.Request, version, rest string, sess *session) {
	method := r.Method
	if method == http.MethodPost && r.URL.Query().Get("_HttpMethod") == "PATCH" {
		method = http.MethodPatch
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case len(parts) == 1 && (parts[0] == "query" || parts[0] == "queryAll"):
		if method != http.MethodGet {
			writeErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are GET")
			return
		}
		o.handleQuery(w, r, version, parts[0] == "queryAll")
	case len(parts) == 2 && (parts[0] == "query" || parts[0] == "queryAll"):
		if method != http.MethodGet {
			writeErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are GET")
			return
		}
		o.handleQueryMore(w, r, version, parts[1])
	case len(parts) == 3 && parts[0] == "sobjects":
		switch method {
		case http.MethodGet:
			o.handleGetRecord(w, r, version, parts[1], parts[2])
		case http.MethodPatch:
			o.handlePatchRecord(w, r, parts[1], parts[2], sess)
		default:
			writeErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are GET,PATCH")
		}
	case len(parts) == 1 && parts[0] == "limits" && method == http.MethodGet:
		o.handleLimits(w)
	case len(parts) == 2 && parts[0] == "composite" && parts[1] == "sobjects":
		if method != http.MethodPatch {
			writeErr(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are PATCH")
			return
		}
		o.handleCollectionUpdate(w, r, sess)
	default:
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
}

// batchSize reads Sforce-Query-Options: batchSize=N, clamped to 200..2000.
func batchSize(r *http.Request) int {
	for _, part := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "batchSize") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		return min(max(n, MinBatchSize), MaxBatchSize)
	}
	return DefaultBatchSize
}

func writeQueryErr(w http.ResponseWriter, err error) {
	if qe, ok := err.(*QueryError); ok {
		writeErr(w, http.StatusBadRequest, qe.Code, qe.Message)
		return
	}
	writeErr(w, http.StatusBadRequest, "MALFORMED_QUERY", err.Error())
}

func (o *Org) handleQuery(w http.ResponseWriter, r *http.Request, version string, all bool) {
	soql := r.URL.Query().Get("q")
	if strings.TrimSpace(soql) == "" {
		writeErr(w, http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
		return
	}
	q, err := ParseQuery(soql)
	if err != nil {
		writeQueryErr(w, err)
		return
	}
	res, err := o.execute(q, all)
	if err != nil {
		writeQueryErr(w, err)
		return
	}
	o.writePage(w, version, res, 0, batchSize(r), "")
}

func (o *Org) handleQueryMore(w http.ResponseWriter, r *http.Request, version, locator string) {
	id, offText, ok := strings.Cut(locator, "-")
	off, err := strconv.Atoi(offText)
	if !ok || err != nil || off < 0 {
		writeErr(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	now := o.now()
	o.mu.Lock()
	c, found := o.cursors[id]
	if found && now.Sub(c.lastUsed) > cursorIdle {
		delete(o.cursors, id)
		found = false
	}
	if found {
		c.lastUsed = now
	}
	o.mu.Unlock()
	if !found || off > len(c.res.rows) || c.version != version {
		writeErr(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	o.writePage(w, version, c.res, off, batchSize(r), id)
}

// writePage writes rows[off:off+size] as a QueryResult, opening a cursor when more remain.
func (o *Org) writePage(w http.ResponseWriter, version string, res *result, off, size int, cursorID string) {
	rows := res.rows
	end := min(off+size, len(rows))
	done := end >= len(rows)
	var b bytes.Buffer
	b.Grow(256 * (end - off))
	b.WriteString(`{"totalSize":`)
	b.WriteString(strconv.Itoa(len(rows)))
	b.WriteString(`,"done":`)
	b.WriteString(strconv.FormatBool(done))
	if !done {
		if cursorID == "" {
			cursorID = o.openCursor(res, version)
		}
		b.WriteString(`,"nextRecordsUrl":"/services/data/`)
		b.WriteString(version)
		b.WriteString(`/query/`)
		b.WriteString(cursorID)
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(end))
		b.WriteByte('"')
	} else if cursorID != "" {
		o.mu.Lock()
		delete(o.cursors, cursorID)
		o.mu.Unlock()
	}
	b.WriteString(`,"records":[`)
	o.mu.RLock()
	for i, h := range rows[off:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		renderRow(&b, version, res.object, res.fields, h.row, h.id)
	}
	o.mu.RUnlock()
	b.WriteString("]}")
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

func (o *Org) openCursor(res *result, version string) string {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, c := range o.cursors {
		if now.Sub(c.lastUsed) > cursorIdle {
			delete(o.cursors, id)
		}
	}
	id := o.st.newID("01g")
	o.cursors[id] = &cursor{res: res, version: version, lastUsed: now}
	return id
}

// execute evaluates q. The set of matching rows is fixed at query time, as a query locator's is;
// field values are read when each page is served.
func (o *Org) execute(q *Query, all bool) (*result, error) {
	obj, ok := objects[strings.ToLower(q.Object)]
	if !ok {
		return nil, &QueryError{Code: "INVALID_TYPE", Message: fmt.Sprintf("sObject type '%s' is not supported.", q.Object)}
	}
	noColumn := func(f string) error {
		return &QueryError{Code: "INVALID_FIELD", Message: fmt.Sprintf("No such column '%s' on entity '%s'.", f, obj.name)}
	}
	fields := make([]fieldDef, 0, len(q.Fields))
	seen := map[string]bool{}
	for _, name := range q.Fields {
		f, ok := lookupField(obj.fields, name)
		if !ok {
			return nil, noColumn(name)
		}
		if seen[f.name] {
			return nil, malformed("duplicate field selected: %s", f.name)
		}
		seen[f.name] = true
		fields = append(fields, f)
	}
	type cond struct {
		f   fieldDef
		op  string
		lit []Literal
	}
	var conds []cond
	for _, c := range q.Where {
		f, ok := lookupField(obj.fields, c.Field)
		if !ok {
			return nil, noColumn(c.Field)
		}
		for _, l := range c.Values {
			if err := checkLiteral(f, l); err != nil {
				return nil, err
			}
		}
		conds = append(conds, cond{f, c.Op, c.Values})
	}
	var order *fieldDef
	if q.OrderBy != "" {
		f, ok := lookupField(obj.fields, q.OrderBy)
		if !ok {
			return nil, noColumn(q.OrderBy)
		}
		order = &f
	}

	o.mu.RLock()
	defer o.mu.RUnlock()
	var hits []hit
	add := func(row any, id string) {
		for _, c := range conds {
			m := false
			for _, l := range c.lit {
				if matches(c.f, c.f.get(row), l) {
					m = true
					break
				}
			}
			if c.op == "!=" {
				m = !m
			}
			if !m {
				return
			}
		}
		hits = append(hits, hit{row: row, id: id})
	}
	switch obj.name {
	case ObjectUser:
		for _, id := range o.st.userOrder {
			add(o.st.users[id], id)
		}
	case ObjectGroup:
		for _, id := range o.st.queueOrder {
			add(o.st.queues[id], id)
		}
	default:
		for _, id := range o.st.recOrder[obj.name] {
			rec := o.st.records[id]
			if rec.IsDeleted && !all {
				continue
			}
			add(rec, id)
		}
	}
	if order != nil {
		for i := range hits {
			hits[i].key = order.get(hits[i].row)
		}
		sort.SliceStable(hits, func(i, j int) bool {
			c := compareValues(hits[i].key, hits[j].key)
			if q.Desc {
				return c > 0
			}
			return c < 0
		})
	}
	if q.Limit >= 0 && len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	return &result{object: obj.name, fields: fields, rows: hits}, nil
}

func checkLiteral(f fieldDef, l Literal) error {
	if l.Kind == "null" {
		return nil
	}
	switch f.kind {
	case kindID:
		if l.Kind != "string" || norm(l.Text) == "" {
			return &QueryError{Code: "INVALID_QUERY_FILTER_OPERATOR", Message: fmt.Sprintf("invalid ID field: %s", l.Text)}
		}
	case kindBool:
		if l.Kind != "bool" {
			return &QueryError{Code: "INVALID_QUERY_FILTER_OPERATOR", Message: fmt.Sprintf("value of filter criterion for field '%s' must be of type boolean and should not be enclosed in quotes", f.name)}
		}
	case kindString:
		if l.Kind != "string" {
			return &QueryError{Code: "INVALID_QUERY_FILTER_OPERATOR", Message: fmt.Sprintf("value of filter criterion for field '%s' must be of type string and should be enclosed in quotes", f.name)}
		}
	case kindDateTime:
		return malformed("datetime filters are not supported by the sandbox (field %s)", f.name)
	}
	return nil
}

// matches compares like SOQL: text case-insensitively, ids by their 18-character form.
func matches(f fieldDef, v any, l Literal) bool {
	if l.Kind == "null" {
		switch x := v.(type) {
		case string:
			return x == ""
		case time.Time:
			return x.IsZero()
		}
		return false
	}
	switch f.kind {
	case kindID:
		s, _ := v.(string)
		return s != "" && s == norm(l.Text)
	case kindBool:
		b, _ := v.(bool)
		return strconv.FormatBool(b) == l.Text
	default:
		s, _ := v.(string)
		return strings.EqualFold(s, l.Text)
	}
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return strings.Compare(x, y)
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case time.Time:
		y, _ := b.(time.Time)
		return x.Compare(y)
	}
	return 0
}

func (o *Org) handleGetRecord(w http.ResponseWriter, r *http.Request, version, typ, id string) {
	obj, ok := objects[strings.ToLower(typ)]
	if !ok {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	n := norm(id)
	o.mu.RLock()
	defer o.mu.RUnlock()
	var row any
	switch obj.name {
	case ObjectUser:
		if u, ok := o.st.users[n]; ok {
			row = u
		}
	case ObjectGroup:
		if q, ok := o.st.queues[n]; ok {
			row = q
		}
	default:
		if rec, ok := o.st.records[n]; ok && rec.Type == obj.name {
			if rec.IsDeleted {
				writeErr(w, http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
				return
			}
			row = rec
		}
	}
	if row == nil {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	fields := ownFields(obj.fields)
	if sel := r.URL.Query().Get("fields"); sel != "" {
		fields = nil
		for _, name := range strings.Split(sel, ",") {
			f, ok := lookupField(obj.fields, strings.TrimSpace(name))
			if !ok {
				writeErr(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", name, obj.name))
				return
			}
			fields = append(fields, f)
		}
	}
	var b bytes.Buffer
	renderRow(&b, version, obj.name, fields, row, n)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(b.Bytes())
}

// saveError is one element of a SaveResult's errors.
type saveError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
	status     int      // HTTP status when reported by a single-record call
}

func newSaveError(status int, code, msg string, fields ...string) *saveError {
	if fields == nil {
		fields = []string{}
	}
	return &saveError{StatusCode: code, Message: msg, Fields: fields, status: status}
}

// change is a validated update to one record.
type change struct {
	rec    *Record
	values map[string]string
}

var updatable = map[string]map[string]bool{
	ObjectContact: {"OwnerId": true, "Email": true, "FirstName": true, "LastName": true},
	ObjectLead:    {"OwnerId": true, "Email": true, "FirstName": true, "LastName": true, "Company": true},
}

// validate checks an update of record id of type typ; o.mu held.
func (o *Org) validate(method, path, typ, id string, body map[string]json.RawMessage) (*change, *saveError) {
	prefix := prefixFor(typ)
	n := norm(id)
	if n == "" || sfid.Prefix(n) != prefix {
		return nil, newSaveError(http.StatusBadRequest, "MALFORMED_ID", fmt.Sprintf("%s ID: id value of incorrect type: %s", typ, id), "Id")
	}
	rec, ok := o.st.records[n]
	if !ok || rec.Type != typ {
		return nil, newSaveError(http.StatusNotFound, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	if rec.IsDeleted {
		return nil, newSaveError(http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
	}
	if rule, ok := o.faults.Record(method, path, n); ok {
		o.log.CountFault()
		code := cmpOr(rule.Code, "UNABLE_TO_LOCK_ROW")
		msg := rule.Message
		if msg == "" && code == "UNABLE_TO_LOCK_ROW" {
			msg = "unable to obtain exclusive access to this record or 1 records: " + n
		}
		return nil, newSaveError(cmpOr(rule.Status, http.StatusBadRequest), code, cmpOr(msg, "injected failure"))
	}
	ch := &change{rec: rec, values: map[string]string{}}
	allowed := updatable[typ]
	for k, raw := range body {
		canon := ""
		for name := range allowed {
			if strings.EqualFold(name, k) {
				canon = name
			}
		}
		if canon == "" {
			if f, ok := lookupField(objects[strings.ToLower(typ)].fields, k); ok {
				return nil, newSaveError(http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE", fmt.Sprintf("Unable to create/update fields: %s. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", f.name), f.name)
			}
			return nil, newSaveError(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", k, typ), k)
		}
		var v *string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, newSaveError(http.StatusBadRequest, "JSON_PARSER_ERROR", fmt.Sprintf("Cannot deserialize instance of string from %s value", canon), canon)
		}
		val := ""
		if v != nil {
			val = *v
		}
		if canon == "OwnerId" {
			owner, se := o.validateOwner(typ, val)
			if se != nil {
				return nil, se
			}
			val = owner
		}
		ch.values[canon] = val
	}
	return ch, nil
}

// validateOwner applies Salesforce's owner rules (§2.8, §2.10, §5.2); o.mu held.
func (o *Org) validateOwner(typ, owner string) (string, *saveError) {
	if owner == "" {
		return "", newSaveError(http.StatusBadRequest, "INVALID_EMPTY_KEY_OWNER", "Owner ID: owner cannot be blank", "OwnerId")
	}
	n := norm(owner)
	if n == "" {
		return "", newSaveError(http.StatusBadRequest, "MALFORMED_ID", "Owner ID: id value of incorrect type: "+owner, "OwnerId")
	}
	switch sfid.Prefix(n) {
	case sfid.PrefixUser:
		u, ok := o.st.users[n]
		if !ok {
			return "", newSaveError(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", "OwnerId")
		}
		if !u.IsActive {
			return "", newSaveError(http.StatusBadRequest, "INACTIVE_OWNER_OR_USER", "operation performed with inactive user ["+n+"] as owner of "+strings.ToLower(typ))
		}
	case sfid.PrefixQueue:
		q, ok := o.st.queues[n]
		if !ok {
			return "", newSaveError(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", "OwnerId")
		}
		supported := false
		for _, t := range q.SobjectTypes {
			supported = supported || strings.EqualFold(t, typ)
		}
		if typ == ObjectContact || !supported {
			// Assumption (docs/crm-protocols.md#unconfirmed-facts item 8): a queue that cannot own
			// this object is refused with INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD. Contacts cannot
			// be queue-owned.
			return "", newSaveError(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD", "Owner ID: id value of incorrect type: "+n, "OwnerId")
		}
	default:
		if o.st.exists(n) {
			return "", newSaveError(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD", "Owner ID: id value of incorrect type: "+n, "OwnerId")
		}
		return "", newSaveError(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", "OwnerId")
	}
	return n, nil
}

// apply writes a validated change as actor; o.mu held. It queues an Outbound Message when the
// owner changed.
func (o *Org) apply(ch *change, actor string, now time.Time) {
	rec := ch.rec
	ownerChanged := false
	for k, v := range ch.values {
		switch k {
		case "OwnerId":
			ownerChanged = rec.OwnerID != v
			rec.OwnerID = v
		case "Email":
			rec.Email = v
		case "FirstName":
			rec.FirstName = v
		case "LastName":
			rec.LastName = v
		case "Company":
			rec.Company = v
		}
	}
	rec.LastModifiedDate = now
	rec.LastModifiedByID = actor
	if ownerChanged {
		o.om.enqueue(rec.Type, rec.ID, actor, now)
	}
}

func decodeObject(r *http.Request) (map[string]json.RawMessage, error) {
	var body map[string]json.RawMessage
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		return nil, err
	}
	return body, nil
}

func (o *Org) handlePatchRecord(w http.ResponseWriter, r *http.Request, typ, id string, sess *session) {
	obj, ok := objects[strings.ToLower(typ)]
	if !ok || (obj.name != ObjectContact && obj.name != ObjectLead) {
		writeErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	body, err := decodeObject(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character: "+err.Error())
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ch, se := o.validate(r.Method, r.URL.Path, obj.name, id, body)
	if se != nil {
		status := se.status
		if se.StatusCode == "INVALID_CROSS_REFERENCE_KEY" && status == http.StatusNotFound {
			writeErr(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
			return
		}
		writeErr(w, status, se.StatusCode, se.Message, se.Fields...)
		return
	}
	o.apply(ch, sess.userID, o.now())
	w.WriteHeader(http.StatusNoContent)
}

type collectionRecord struct {
	typ  string
	id   string
	body map[string]json.RawMessage
}

type saveResult struct {
	ID      string       `json:"id,omitempty"`
	Success bool         `json:"success"`
	Errors  []*saveError `json:"errors"`
}

func (o *Org) handleCollectionUpdate(w http.ResponseWriter, r *http.Request, sess *session) {
	var req struct {
		AllOrNone bool                         `json:"allOrNone"`
		Records   []map[string]json.RawMessage `json:"records"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character: "+err.Error())
		return
	}
	if req.Records == nil {
		writeErr(w, http.StatusBadRequest, "INVALID_FIELD", "The 'records' field is required", "records")
		return
	}
	if len(req.Records) > CollectionLimit {
		writeErr(w, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", fmt.Sprintf("record limit reached. cannot submit more than %d records into this call", CollectionLimit))
		return
	}
	recs := make([]collectionRecord, len(req.Records))
	for i, raw := range req.Records {
		var attrs struct {
			Type string `json:"type"`
		}
		if a, ok := raw["attributes"]; ok {
			_ = json.Unmarshal(a, &attrs)
		}
		if attrs.Type == "" {
			writeErr(w, http.StatusBadRequest, "INVALID_TYPE", "Must send a concrete entity type.")
			return
		}
		cr := collectionRecord{typ: attrs.Type, body: map[string]json.RawMessage{}}
		if obj, ok := objects[strings.ToLower(attrs.Type)]; ok {
			cr.typ = obj.name
		}
		for k, v := range raw {
			switch {
			case k == "attributes":
			case strings.EqualFold(k, "id"):
				_ = json.Unmarshal(v, &cr.id)
			default:
				cr.body[k] = v
			}
		}
		recs[i] = cr
	}

	chunks := 0
	for i, cr := range recs {
		if i == 0 || cr.typ != recs[i-1].typ {
			chunks++
		}
	}
	if chunks > MaxChunks {
		// Assumption: the errorCode is not documented; the message is Salesforce's.
		writeErr(w, http.StatusBadRequest, "INVALID_OPERATION", "Cannot have more than 10 chunks in a single operation. Please rearrange the data to reduce chunking.")
		return
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	results := make([]saveResult, len(recs))
	changes := make([]*change, len(recs))
	failed := false
	for i, cr := range recs {
		var se *saveError
		switch {
		case cr.typ != ObjectContact && cr.typ != ObjectLead:
			se = newSaveError(0, "INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported by this sandbox", cr.typ))
		case cr.id == "":
			se = newSaveError(0, "MISSING_ARGUMENT", "Id not specified in an update call", "Id")
		default:
			changes[i], se = o.validate(r.Method, r.URL.Path, cr.typ, cr.id, cr.body)
		}
		if se != nil {
			failed = true
			results[i] = saveResult{Success: false, Errors: []*saveError{se}}
			continue
		}
		results[i] = saveResult{ID: changes[i].rec.ID, Success: true, Errors: []*saveError{}}
		if !req.AllOrNone {
			o.apply(changes[i], sess.userID, now)
		}
	}
	if req.AllOrNone {
		for i := range results {
			switch {
			case failed && results[i].Success:
				results[i] = saveResult{ID: results[i].ID, Success: false, Errors: []*saveError{newSaveError(0,
					"ALL_OR_NONE_OPERATION_ROLLED_BACK",
					"Record rolled back because not all records were valid and the request was using AllOrNone header")}}
			case !failed:
				o.apply(changes[i], sess.userID, now)
			}
		}
	}
	writeJSON(w, http.StatusOK, results)
}
