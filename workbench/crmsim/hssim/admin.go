package hssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim"
)

// Seed is the account's initial data. Ids are optional (generated when empty); a contact's owner
// may be given as an owner id or an owner email (active owners first).
type Seed struct {
	PortalID int64         `json:"portalId,omitempty" yaml:"portalId,omitempty"`
	Owners   []Owner       `json:"owners,omitempty" yaml:"owners,omitempty"`
	Contacts []SeedContact `json:"contacts,omitempty" yaml:"contacts,omitempty"`
}

// SeedContact is a contact in a seed.
type SeedContact struct {
	ID         string            `json:"id,omitempty" yaml:"id,omitempty"`
	Email      string            `json:"email,omitempty" yaml:"email,omitempty"`
	FirstName  string            `json:"firstname,omitempty" yaml:"firstname,omitempty"`
	LastName   string            `json:"lastname,omitempty" yaml:"lastname,omitempty"`
	Owner      string            `json:"owner,omitempty" yaml:"owner,omitempty"`
	Properties map[string]string `json:"properties,omitempty" yaml:"properties,omitempty"`
}

// Load adds the seed's data. It sends no webhooks. Seed.PortalID is ignored here (set
// Config.PortalID instead).
func (a *Account) Load(seed Seed) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for _, o := range seed.Owners {
		if _, err := a.st.addOwner(o, now); err != nil {
			return fmt.Errorf("seed owner %s: %w", o.Email, err)
		}
	}
	owners := a.st.ownerIndex()
	for _, sc := range seed.Contacts {
		props := map[string]string{}
		for k, v := range sc.Properties {
			props[k] = v
		}
		for k, v := range map[string]string{"email": sc.Email, "firstname": sc.FirstName, "lastname": sc.LastName} {
			if v != "" {
				props[k] = v
			}
		}
		owner, err := owners.resolve(sc.Owner)
		if err != nil {
			return fmt.Errorf("seed contact %s: %w", sc.Email, err)
		}
		if owner != "" {
			props[OwnerProperty] = owner
		}
		if _, err := a.st.addContact(Contact{ID: sc.ID, Properties: props}, now); err != nil {
			return fmt.Errorf("seed contact %s: %w", sc.Email, err)
		}
	}
	return nil
}

// CreateOwner adds an owner (a user added to the account, or a queue).
func (a *Account) CreateOwner(o Owner) (Owner, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := a.st.addOwner(o, a.now())
	if err != nil {
		return Owner{}, err
	}
	return *p, nil
}

// UpdateOwner changes an owner with fn (id and userId stay). Setting Archived is how a user's
// deactivation shows up; records keep their owner (§5.3).
func (a *Account) UpdateOwner(id string, fn func(o *Owner)) (Owner, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.st.owners[id]
	if !ok {
		return Owner{}, fmt.Errorf("%w: owner %s", ErrNotFound, id)
	}
	o := *p
	o.Teams = append([]Team(nil), p.Teams...)
	fn(&o)
	o.ID, o.UserID, o.CreatedAt = p.ID, p.UserID, p.CreatedAt
	o.UpdatedAt = a.now()
	*p = o
	return o, nil
}

// ArchiveOwner archives an owner, as deactivating its user does.
func (a *Account) ArchiveOwner(id string) (Owner, error) {
	return a.UpdateOwner(id, func(o *Owner) { o.Archived = true })
}

// CreateContact adds a contact (no webhook; the subscription watches owner changes).
func (a *Account) CreateContact(c Contact) (Contact, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := a.st.addContact(c, a.now())
	if err != nil {
		return Contact{}, err
	}
	return cloneContact(p), nil
}

// SetContactOwner changes a contact's owner as HubSpot user actorUserID would in the UI
// (changeSource CRM_UI, sourceId userId:<actorUserID>), with the API's owner validation. An
// actual change fires a webhook.
func (a *Account) SetContactOwner(contactID, ownerID string, actorUserID int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	raw, _ := json.Marshal(ownerID)
	c, props, se := a.validateInput("ADMIN", "/_crmsim/contacts", updateInput{ID: contactID, Properties: map[string]json.RawMessage{OwnerProperty: raw}})
	if se != nil {
		if se.Category == "OBJECT_NOT_FOUND" {
			return fmt.Errorf("%w: contact %s", ErrNotFound, contactID)
		}
		return fmt.Errorf("%w: %s: %s", ErrInvalid, se.Category, se.Message)
	}
	a.applyProps(c, props, "CRM_UI", "userId:"+strconv.FormatInt(actorUserID, 10), a.now())
	return nil
}

// ArchiveContact archives (deletes) a contact.
func (a *Account) ArchiveContact(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.st.contacts[id]
	if !ok {
		return fmt.Errorf("%w: contact %s", ErrNotFound, id)
	}
	c.Archived = true
	c.UpdatedAt = a.now()
	return nil
}

func cloneContact(c *Contact) Contact {
	out := *c
	out.Properties = map[string]string{}
	for k, v := range c.Properties {
		out.Properties[k] = v
	}
	return out
}

// Owner returns an owner by id.
func (a *Account) Owner(id string) (Owner, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	o, ok := a.st.owners[id]
	if !ok {
		return Owner{}, false
	}
	return *o, true
}

// Owners returns every owner, archived included, in id order.
func (a *Account) Owners() []Owner {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]Owner, 0, len(a.st.ownerOrder))
	for _, id := range a.st.ownerOrder {
		out = append(out, *a.st.owners[id])
	}
	return out
}

// Contact returns a contact by id.
func (a *Account) Contact(id string) (Contact, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	c, ok := a.st.contacts[id]
	if !ok {
		return Contact{}, false
	}
	return cloneContact(c), true
}

// ContactByEmail returns a contact by email (case-insensitive).
func (a *Account) ContactByEmail(email string) (Contact, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	id, ok := a.st.emails[strings.ToLower(email)]
	if !ok {
		return Contact{}, false
	}
	return cloneContact(a.st.contacts[id]), true
}

// Contacts returns every contact in id order.
func (a *Account) Contacts() []Contact {
	a.mu.RLock()
	defer a.mu.RUnlock()
	ids := make([]string, 0, len(a.st.contacts))
	for id := range a.st.contacts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return lessID(ids[i], ids[j]) })
	out := make([]Contact, 0, len(ids))
	for _, id := range ids {
		out = append(out, cloneContact(a.st.contacts[id]))
	}
	return out
}

// adminRoutes is the sandbox control API (no auth; loopback use only):
//
//	GET    /_crmsim/state                          owners and contacts
//	POST   /_crmsim/owners                         create an owner (Owner JSON)
//	PATCH  /_crmsim/owners/{id}                    update (Owner JSON keys sent), e.g. {"archived": true}
//	POST   /_crmsim/contacts                       create a contact (Contact JSON)
//	PATCH  /_crmsim/contacts/{id}                  {"ownerId": "…", "actorUserId": n}: owner change as in the UI
//	DELETE /_crmsim/contacts/{id}                  archive a contact
//	GET|DELETE /_crmsim/requests, GET /_crmsim/counters, GET|POST|DELETE /_crmsim/faults[/{id}]
//	POST   /_crmsim/tokens/expire                  expire OAuth tokens
//	POST   /_crmsim/limits                         {"dailyLimit": n, "dailyUsed": n, "resetBurst": true,
//	                                               "burstLimit": n, "burstIntervalMs": n}
//	GET    /_crmsim/webhooks                       deliveries and stats
//	POST   /_crmsim/webhooks/flush                 send pending events and retry now
func (a *Account) adminRoutes() http.Handler {
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
		writeJSON(w, http.StatusOK, map[string]any{"portalId": a.cfg.PortalID, "appId": a.cfg.AppID, "owners": a.Owners(), "contacts": a.Contacts()})
	})
	mux.HandleFunc("POST /_crmsim/owners", func(w http.ResponseWriter, r *http.Request) {
		var o Owner
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			fail(w, err)
			return
		}
		created, err := a.CreateOwner(o)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, created)
	})
	mux.HandleFunc("PATCH /_crmsim/owners/{id}", func(w http.ResponseWriter, r *http.Request) {
		var patch map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
			fail(w, err)
			return
		}
		var perr error
		o, err := a.UpdateOwner(r.PathValue("id"), func(o *Owner) {
			b, _ := json.Marshal(o)
			var cur map[string]json.RawMessage
			_ = json.Unmarshal(b, &cur)
			for k, v := range patch {
				cur[k] = v
			}
			b, _ = json.Marshal(cur)
			var next Owner
			if perr = json.Unmarshal(b, &next); perr == nil {
				*o = next
			}
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	mux.HandleFunc("POST /_crmsim/contacts", func(w http.ResponseWriter, r *http.Request) {
		var c Contact
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			fail(w, err)
			return
		}
		created, err := a.CreateContact(c)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, created)
	})
	mux.HandleFunc("PATCH /_crmsim/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			OwnerID     string `json:"ownerId"`
			ActorUserID int64  `json:"actorUserId"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, err)
			return
		}
		if err := a.SetContactOwner(r.PathValue("id"), req.OwnerID, req.ActorUserID); err != nil {
			fail(w, err)
			return
		}
		c, _ := a.Contact(r.PathValue("id"))
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("DELETE /_crmsim/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.ArchiveContact(r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	crmsim.AdminLogRoutes(mux, a.log, a.faults)
	mux.HandleFunc("POST /_crmsim/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		a.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_crmsim/limits", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			DailyLimit *int64 `json:"dailyLimit"`
			DailyUsed  *int64 `json:"dailyUsed"`
			ResetBurst bool   `json:"resetBurst"`
			BurstLimit *int   `json:"burstLimit"`
			// BurstIntervalMs goes with BurstLimit (default 10 000).
			BurstIntervalMs int64 `json:"burstIntervalMs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(w, err)
			return
		}
		if req.DailyLimit != nil {
			a.SetDailyLimit(*req.DailyLimit)
		}
		if req.DailyUsed != nil {
			a.SetDailyUsage(*req.DailyUsed)
		}
		if req.ResetBurst {
			a.ResetBurst()
		}
		if req.BurstLimit != nil {
			a.SetBurstLimit(*req.BurstLimit, time.Duration(req.BurstIntervalMs)*time.Millisecond)
		}
		used, limit := a.quota.Usage(a.now())
		writeJSON(w, http.StatusOK, map[string]int64{"dailyUsed": used, "dailyLimit": limit})
	})
	mux.HandleFunc("GET /_crmsim/webhooks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"stats": a.WebhookStats(), "deliveries": a.WebhookDeliveries()})
	})
	mux.HandleFunc("POST /_crmsim/webhooks/flush", func(w http.ResponseWriter, r *http.Request) {
		a.FlushWebhooks()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
