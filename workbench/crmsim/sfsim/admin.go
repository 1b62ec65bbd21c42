package sfsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/workbench/crmsim"
)

// Seed is the org's initial data. Ids are optional (generated deterministically when empty);
// record owners may be given as an id, a username, a user email (active users first) or a queue
// name.
type Seed struct {
	OrgID    string       `json:"orgId,omitempty" yaml:"orgId,omitempty"`
	Users    []SeedUser   `json:"users,omitempty" yaml:"users,omitempty"`
	Queues   []Queue      `json:"queues,omitempty" yaml:"queues,omitempty"`
	Contacts []SeedRecord `json:"contacts,omitempty" yaml:"contacts,omitempty"`
	Leads    []SeedRecord `json:"leads,omitempty" yaml:"leads,omitempty"`
}

// SeedUser is a user in a seed; IsActive defaults to true.
type SeedUser struct {
	ID        string `json:"id,omitempty" yaml:"id,omitempty"`
	Username  string `json:"username,omitempty" yaml:"username,omitempty"`
	Email     string `json:"email,omitempty" yaml:"email,omitempty"`
	FirstName string `json:"firstName,omitempty" yaml:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty" yaml:"lastName,omitempty"`
	IsActive  *bool  `json:"isActive,omitempty" yaml:"isActive,omitempty"`
	UserType  string `json:"userType,omitempty" yaml:"userType,omitempty"`
	// License is the profile's user licence (User.License).
	License              string `json:"license,omitempty" yaml:"license,omitempty"`
	FederationIdentifier string `json:"federationIdentifier,omitempty" yaml:"federationIdentifier,omitempty"`
}

// SeedRecord is a contact or lead in a seed.
type SeedRecord struct {
	ID        string `json:"id,omitempty" yaml:"id,omitempty"`
	Email     string `json:"email,omitempty" yaml:"email,omitempty"`
	FirstName string `json:"firstName,omitempty" yaml:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty" yaml:"lastName,omitempty"`
	Company   string `json:"company,omitempty" yaml:"company,omitempty"`
	Owner     string `json:"owner,omitempty" yaml:"owner,omitempty"`
	Deleted   bool   `json:"deleted,omitempty" yaml:"deleted,omitempty"`
}

// Load adds the seed's data to the org. It fires no Outbound Messages. Seed.OrgID is ignored
// here (set Config.OrgID instead).
func (o *Org) Load(seed Seed) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	for _, su := range seed.Users {
		u := User{ID: su.ID, Username: su.Username, Email: su.Email, FirstName: su.FirstName, LastName: su.LastName,
			IsActive: su.IsActive == nil || *su.IsActive, UserType: su.UserType, License: su.License, FederationIdentifier: su.FederationIdentifier}
		if _, err := o.st.addUser(u, now); err != nil {
			return fmt.Errorf("seed user %s: %w", cmpOr(su.Username, su.Email), err)
		}
	}
	for _, q := range seed.Queues {
		if _, err := o.st.addQueue(q); err != nil {
			return fmt.Errorf("seed queue %s: %w", q.Name, err)
		}
	}
	owners := o.st.ownerIndex()
	for _, set := range []struct {
		typ  string
		recs []SeedRecord
	}{{ObjectContact, seed.Contacts}, {ObjectLead, seed.Leads}} {
		for _, sr := range set.recs {
			owner, err := owners.resolve(sr.Owner)
			if err != nil {
				return fmt.Errorf("seed %s %s: %w", set.typ, sr.Email, err)
			}
			if owner == "" {
				owner = o.runAsLocked()
			}
			rec := Record{Type: set.typ, ID: sr.ID, Email: sr.Email, FirstName: sr.FirstName, LastName: sr.LastName,
				Company: sr.Company, OwnerID: owner, IsDeleted: sr.Deleted}
			if _, err := o.st.addRecord(rec, now); err != nil {
				return fmt.Errorf("seed %s %s: %w", set.typ, sr.Email, err)
			}
		}
	}
	return nil
}

// CreateUser adds a user (IsActive as given) and fires a User Outbound Message.
func (o *Org) CreateUser(u User) (User, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	p, err := o.st.addUser(u, now)
	if err != nil {
		return User{}, err
	}
	o.om.enqueue(ObjectUser, p.ID, "", now)
	return *p, nil
}

// UpdateUser changes a user with fn (the id cannot change) and fires a User Outbound Message
// when anything changed. Deactivate with UpdateUser(id, func(u *User) { u.IsActive = false }).
func (o *Org) UpdateUser(id string, fn func(u *User)) (User, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.st.users[norm(id)]
	if !ok {
		return User{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	u := *p
	fn(&u)
	u.ID = p.ID
	if !strings.EqualFold(u.Username, p.Username) {
		if _, dup := o.st.usernames[strings.ToLower(u.Username)]; dup || u.Username == "" {
			return User{}, fmt.Errorf("%w: username %q", ErrDuplicate, u.Username)
		}
		delete(o.st.usernames, strings.ToLower(p.Username))
		o.st.usernames[strings.ToLower(u.Username)] = u.ID
	}
	if u == *p {
		return u, nil
	}
	now := o.now()
	u.LastModifiedDate = now
	*p = u
	o.om.enqueue(ObjectUser, p.ID, "", now)
	return u, nil
}

// CreateQueue adds a queue (Group of type Queue).
func (o *Org) CreateQueue(q Queue) (Queue, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, err := o.st.addQueue(q)
	if err != nil {
		return Queue{}, err
	}
	return *p, nil
}

// CreateRecord adds a Contact or Lead (r.Type). The owner is not validated, so tests can build
// records owned by inactive users. It fires no Outbound Message (the messages watch owner
// changes).
func (o *Org) CreateRecord(r Record) (Record, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.OwnerID == "" {
		r.OwnerID = o.runAsLocked()
	}
	p, err := o.st.addRecord(r, o.now())
	if err != nil {
		return Record{}, err
	}
	return *p, nil
}

// SetOwner changes a record's owner as actor would in the UI (actor "" = the integration user),
// with the REST API's owner validation; the error wraps ErrInvalid and names the statusCode. An
// actual change fires an Outbound Message.
func (o *Org) SetOwner(recordID, ownerID, actor string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	typ := ""
	switch sfid.Prefix(norm(recordID)) {
	case sfid.PrefixContact:
		typ = ObjectContact
	case sfid.PrefixLead:
		typ = ObjectLead
	default:
		return fmt.Errorf("%w: record %s", ErrNotFound, recordID)
	}
	raw, _ := json.Marshal(ownerID)
	ch, se := o.validate("ADMIN", "/_crmsim/owner", typ, recordID, map[string]json.RawMessage{"OwnerId": raw})
	if se != nil {
		if se.StatusCode == "INVALID_CROSS_REFERENCE_KEY" && se.status == http.StatusNotFound {
			return fmt.Errorf("%w: record %s", ErrNotFound, recordID)
		}
		return fmt.Errorf("%w: %s: %s", ErrInvalid, se.StatusCode, se.Message)
	}
	if actor == "" {
		actor = o.runAsLocked()
	} else {
		actor = cmpOr(norm(actor), actor)
	}
	o.apply(ch, actor, o.now())
	return nil
}

// DeleteRecord moves a record to the recycle bin: queries skip it and writes get ENTITY_IS_DELETED.
func (o *Org) DeleteRecord(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.st.records[norm(id)]
	if !ok {
		return fmt.Errorf("%w: record %s", ErrNotFound, id)
	}
	r.IsDeleted = true
	r.LastModifiedDate = o.now()
	return nil
}

// User returns a user by id (15 or 18 characters).
func (o *Org) User(id string) (User, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	u, ok := o.st.users[norm(id)]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// UserByUsername returns a user by username.
func (o *Org) UserByUsername(username string) (User, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	id, ok := o.st.usernames[strings.ToLower(username)]
	if !ok {
		return User{}, false
	}
	return *o.st.users[id], true
}

// Record returns a contact or lead by id.
func (o *Org) Record(id string) (Record, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	r, ok := o.st.records[norm(id)]
	if !ok {
		return Record{}, false
	}
	return *r, true
}

// Users returns every user in creation order.
func (o *Org) Users() []User {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]User, 0, len(o.st.userOrder))
	for _, id := range o.st.userOrder {
		out = append(out, *o.st.users[id])
	}
	return out
}

// Queues returns every queue in creation order.
func (o *Org) Queues() []Queue {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]Queue, 0, len(o.st.queueOrder))
	for _, id := range o.st.queueOrder {
		out = append(out, *o.st.queues[id])
	}
	return out
}

// Records returns every record of the type (Contact or Lead), deleted ones included, in creation
// order.
func (o *Org) Records(typ string) []Record {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []Record
	for _, id := range o.st.recOrder[typ] {
		out = append(out, *o.st.records[id])
	}
	return out
}

// State is everything the org holds, as the admin API's GET /_crmsim/state returns it.
type State struct {
	OrgID    string   `json:"orgId"`
	Users    []User   `json:"users"`
	Queues   []Queue  `json:"queues"`
	Contacts []Record `json:"contacts"`
	Leads    []Record `json:"leads"`
}

// adminRoutes is the sandbox control API (no auth; loopback use only):
//
//	GET    /_crmsim/state                         everything
//	POST   /_crmsim/users                         create a user (User JSON)
//	PATCH  /_crmsim/users/{id}                    update fields (User JSON, only the keys sent)
//	POST   /_crmsim/queues                        create a queue
//	POST   /_crmsim/contacts | /_crmsim/leads     create a record (Record JSON)
//	PATCH  /_crmsim/records/{id}                  {"ownerId": "…", "actor": "005…"}: owner change as in the UI
//	DELETE /_crmsim/records/{id}                  delete a record
//	GET|DELETE /_crmsim/requests                  request log / reset it
//	GET    /_crmsim/counters                      request counters
//	GET|POST|DELETE /_crmsim/faults[/{id}]        list / add (crmsim.Rule JSON) / remove fault rules
//	POST   /_crmsim/tokens/expire                 expire every token
//	POST   /_crmsim/limits                        {"dailyLimit": n, "dailyUsed": n}
//	GET    /_crmsim/outbound                      Outbound Message deliveries and stats
//	POST   /_crmsim/outbound/flush                send pending and retry waiting messages now
func (o *Org) adminRoutes() http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		status := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		} else if errors.Is(err, ErrDuplicate) {
			status = http.StatusConflict
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
	mux.HandleFunc("GET /_crmsim/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, State{OrgID: o.cfg.OrgID, Users: o.Users(), Queues: o.Queues(),
			Contacts: o.Records(ObjectContact), Leads: o.Records(ObjectLead)})
	})
	mux.HandleFunc("POST /_crmsim/users", func(w http.ResponseWriter, r *http.Request) {
		var u SeedUser
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
			fail(w, err)
			return
		}
		created, err := o.CreateUser(User{ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName,
			LastName: u.LastName, IsActive: u.IsActive == nil || *u.IsActive, UserType: u.UserType, License: u.License, FederationIdentifier: u.FederationIdentifier})
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, created)
	})
	mux.HandleFunc("PATCH /_crmsim/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		var patch map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
			fail(w, err)
			return
		}
		var perr error
		u, err := o.UpdateUser(r.PathValue("id"), func(u *User) {
			b, _ := json.Marshal(u)
			var cur map[string]json.RawMessage
			_ = json.Unmarshal(b, &cur)
			for k, v := range patch {
				cur[k] = v
			}
			b, _ = json.Marshal(cur)
			var next User
			if perr = json.Unmarshal(b, &next); perr == nil {
				*u = next
			}
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	mux.HandleFunc("POST /_crmsim/queues", func(w http.ResponseWriter, r *http.Request) {
		var q Queue
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			fail(w, err)
			return
		}
		created, err := o.CreateQueue(q)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, created)
	})
	for path, typ := range map[string]string{"/_crmsim/contacts": ObjectContact, "/_crmsim/leads": ObjectLead} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			var rec Record
			if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
				fail(w, err)
				return
			}
			rec.Type = typ
			created, err := o.CreateRecord(rec)
			if err != nil {
				fail(w, err)
				return
			}
			writeJSON(w, http.StatusCreated, created)
		})
	}
	mux.HandleFunc("PATCH /_crmsim/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			OwnerID string `json:"ownerId"`
			Actor   string `json:"actor"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, err)
			return
		}
		if err := o.SetOwner(r.PathValue("id"), req.OwnerID, req.Actor); err != nil {
			fail(w, err)
			return
		}
		rec, _ := o.Record(r.PathValue("id"))
		writeJSON(w, http.StatusOK, rec)
	})
	mux.HandleFunc("DELETE /_crmsim/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := o.DeleteRecord(r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	crmsim.AdminLogRoutes(mux, o.log, o.faults)
	mux.HandleFunc("POST /_crmsim/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		o.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_crmsim/limits", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			DailyLimit *int64 `json:"dailyLimit"`
			DailyUsed  *int64 `json:"dailyUsed"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, err)
			return
		}
		if req.DailyLimit != nil {
			o.SetDailyLimit(*req.DailyLimit)
		}
		if req.DailyUsed != nil {
			o.SetDailyUsage(*req.DailyUsed)
		}
		used, limit := o.DailyUsage()
		writeJSON(w, http.StatusOK, map[string]string{"api-usage": strconv.FormatInt(used, 10) + "/" + strconv.FormatInt(limit, 10)})
	})
	mux.HandleFunc("GET /_crmsim/outbound", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"stats": o.OutboundStats(), "deliveries": o.Deliveries()})
	})
	mux.HandleFunc("POST /_crmsim/outbound/flush", func(w http.ResponseWriter, r *http.Request) {
		o.FlushOutbound()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
