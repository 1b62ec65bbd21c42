package sfsim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/sfid"
)

// Object API names the org knows.
const (
	ObjectUser    = "User"
	ObjectContact = "Contact"
	ObjectLead    = "Lead"
	ObjectGroup   = "Group"
)

// defaultLicenses is the user licence a user of a UserType gets when the seed names none.
var defaultLicenses = map[string]string{
	"Standard":             "Salesforce",
	"CsnOnly":              "Chatter Free",
	"Guest":                "Guest User License",
	"PowerPartner":         "Partner Community",
	"PowerCustomerSuccess": "Customer Community Plus",
	"CustomerSuccess":      "Customer Community",
	"CspLitePortal":        "Customer Community",
}

// User is a Salesforce User row.
type User struct {
	ID        string `json:"id,omitempty" yaml:"id,omitempty"`
	Username  string `json:"username,omitempty" yaml:"username,omitempty"`
	Email     string `json:"email,omitempty" yaml:"email,omitempty"`
	FirstName string `json:"firstName,omitempty" yaml:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty" yaml:"lastName,omitempty"`
	IsActive  bool   `json:"isActive" yaml:"isActive"`
	UserType  string `json:"userType,omitempty" yaml:"userType,omitempty"`
	// License is the name of the profile's user licence (Profile.UserLicense.Name): Salesforce,
	// Salesforce Platform, Salesforce Integration, Chatter Free, …; empty for the Automated Process
	// user, who has no profile. It defaults from UserType (see addUser).
	License              string    `json:"license,omitempty" yaml:"license,omitempty"`
	FederationIdentifier string    `json:"federationIdentifier,omitempty" yaml:"federationIdentifier,omitempty"`
	CreatedDate          time.Time `json:"createdDate,omitzero" yaml:"createdDate,omitempty"`
	LastModifiedDate     time.Time `json:"lastModifiedDate,omitzero" yaml:"lastModifiedDate,omitempty"`
	LastModifiedByID     string    `json:"lastModifiedById,omitempty" yaml:"lastModifiedById,omitempty"`
}

// Queue is a Group row with Type = 'Queue'. SobjectTypes lists the objects it may own (QueueSobject).
type Queue struct {
	ID           string   `json:"id,omitempty" yaml:"id,omitempty"`
	Name         string   `json:"name" yaml:"name"`
	Email        string   `json:"email,omitempty" yaml:"email,omitempty"`
	SobjectTypes []string `json:"sobjectTypes,omitempty" yaml:"sobjectTypes,omitempty"`
}

// Record is a Contact or Lead row.
type Record struct {
	Type             string    `json:"type,omitempty" yaml:"-"`
	ID               string    `json:"id,omitempty" yaml:"id,omitempty"`
	Email            string    `json:"email,omitempty" yaml:"email,omitempty"`
	FirstName        string    `json:"firstName,omitempty" yaml:"firstName,omitempty"`
	LastName         string    `json:"lastName,omitempty" yaml:"lastName,omitempty"`
	Company          string    `json:"company,omitempty" yaml:"company,omitempty"`
	OwnerID          string    `json:"ownerId,omitempty" yaml:"ownerId,omitempty"`
	IsDeleted        bool      `json:"isDeleted,omitempty" yaml:"isDeleted,omitempty"`
	CreatedDate      time.Time `json:"createdDate,omitzero" yaml:"createdDate,omitempty"`
	LastModifiedDate time.Time `json:"lastModifiedDate,omitzero" yaml:"lastModifiedDate,omitempty"`
	LastModifiedByID string    `json:"lastModifiedById,omitempty" yaml:"lastModifiedById,omitempty"`
}

// Errors returned by the Go admin API.
var (
	ErrNotFound  = errors.New("sfsim: no such record")
	ErrDuplicate = errors.New("sfsim: duplicate")
	ErrInvalid   = errors.New("sfsim: invalid")
)

// store is the org's data; Org.mu guards it.
type store struct {
	users      map[string]*User
	userOrder  []string
	usernames  map[string]string // lower(username) → id
	queues     map[string]*Queue
	queueOrder []string
	records    map[string]*Record
	recOrder   map[string][]string // type → ids in insertion order
	counters   map[string]int      // prefix → last generated
	pod        string
}

func newStore(orgID string) *store {
	pod := "5g0"
	if len(orgID) >= 6 {
		pod = orgID[3:6]
	}
	return &store{
		users: map[string]*User{}, usernames: map[string]string{}, queues: map[string]*Queue{},
		records: map[string]*Record{}, recOrder: map[string][]string{}, counters: map[string]int{}, pod: pod,
	}
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID mints the next 18-character id with the given key prefix.
func (s *store) newID(prefix string) string {
	for {
		s.counters[prefix]++
		id := makeID(prefix, s.pod, s.counters[prefix])
		if s.exists(id) {
			continue
		}
		return id
	}
}

// makeID builds the 18-character id prefix+pod+base62(n).
func makeID(prefix, pod string, n int) string {
	var tail [9]byte
	for i := len(tail) - 1; i >= 0; i-- {
		tail[i] = base62[n%62]
		n /= 62
	}
	id, _ := sfid.To18(prefix + pod + string(tail[:]))
	return id
}

func (s *store) exists(id string) bool {
	_, u := s.users[id]
	_, q := s.queues[id]
	_, r := s.records[id]
	return u || q || r
}

// norm returns the canonical 18-character id or "" when id is malformed.
func norm(id string) string {
	n, err := sfid.To18(id)
	if err != nil {
		return ""
	}
	return n
}

func (s *store) addUser(u User, now time.Time) (*User, error) {
	if u.ID == "" {
		u.ID = s.newID(sfid.PrefixUser)
	} else if n := norm(u.ID); n == "" || sfid.Prefix(n) != sfid.PrefixUser {
		return nil, fmt.Errorf("%w: user id %q", ErrInvalid, u.ID)
	} else {
		u.ID = n
	}
	if s.exists(u.ID) {
		return nil, fmt.Errorf("%w: id %s", ErrDuplicate, u.ID)
	}
	if u.Username == "" {
		u.Username = strings.ToLower(u.ID) + "@crmsim.invalid"
	}
	if _, dup := s.usernames[strings.ToLower(u.Username)]; dup {
		return nil, fmt.Errorf("%w: username %s", ErrDuplicate, u.Username)
	}
	if u.UserType == "" {
		u.UserType = "Standard"
	}
	if u.License == "" {
		u.License = defaultLicenses[u.UserType]
	}
	if u.CreatedDate.IsZero() {
		u.CreatedDate = now
	}
	if u.LastModifiedDate.IsZero() {
		u.LastModifiedDate = u.CreatedDate
	}
	p := &u
	s.users[u.ID] = p
	s.userOrder = append(s.userOrder, u.ID)
	s.usernames[strings.ToLower(u.Username)] = u.ID
	return p, nil
}

func (s *store) addQueue(q Queue) (*Queue, error) {
	if q.ID == "" {
		q.ID = s.newID(sfid.PrefixQueue)
	} else if n := norm(q.ID); n == "" || sfid.Prefix(n) != sfid.PrefixQueue {
		return nil, fmt.Errorf("%w: queue id %q", ErrInvalid, q.ID)
	} else {
		q.ID = n
	}
	if s.exists(q.ID) {
		return nil, fmt.Errorf("%w: id %s", ErrDuplicate, q.ID)
	}
	if len(q.SobjectTypes) == 0 {
		q.SobjectTypes = []string{ObjectLead}
	}
	p := &q
	s.queues[q.ID] = p
	s.queueOrder = append(s.queueOrder, q.ID)
	return p, nil
}

func prefixFor(typ string) string {
	switch typ {
	case ObjectContact:
		return sfid.PrefixContact
	case ObjectLead:
		return sfid.PrefixLead
	}
	return ""
}

func (s *store) addRecord(r Record, now time.Time) (*Record, error) {
	prefix := prefixFor(r.Type)
	if prefix == "" {
		return nil, fmt.Errorf("%w: object %q", ErrInvalid, r.Type)
	}
	if r.ID == "" {
		r.ID = s.newID(prefix)
	} else if n := norm(r.ID); n == "" || sfid.Prefix(n) != prefix {
		return nil, fmt.Errorf("%w: %s id %q", ErrInvalid, r.Type, r.ID)
	} else {
		r.ID = n
	}
	if s.exists(r.ID) {
		return nil, fmt.Errorf("%w: id %s", ErrDuplicate, r.ID)
	}
	if r.OwnerID != "" {
		r.OwnerID = norm(r.OwnerID)
	}
	if r.CreatedDate.IsZero() {
		r.CreatedDate = now
	}
	if r.LastModifiedDate.IsZero() {
		r.LastModifiedDate = r.CreatedDate
	}
	p := &r
	s.records[r.ID] = p
	s.recOrder[r.Type] = append(s.recOrder[r.Type], r.ID)
	return p, nil
}

// ownerIndex resolves seed owner references (id, username, email or queue name) to ids.
type ownerIndex struct {
	s      *store
	emails map[string]string // lower(email) → first active user, else first user
	queues map[string]string // lower(name) → queue id
}

func (s *store) ownerIndex() *ownerIndex {
	ix := &ownerIndex{s: s, emails: map[string]string{}, queues: map[string]string{}}
	for _, active := range []bool{true, false} {
		for _, id := range s.userOrder {
			u := s.users[id]
			k := strings.ToLower(u.Email)
			if _, seen := ix.emails[k]; u.IsActive == active && !seen && k != "" {
				ix.emails[k] = id
			}
		}
	}
	for _, id := range s.queueOrder {
		k := strings.ToLower(s.queues[id].Name)
		if _, seen := ix.queues[k]; !seen {
			ix.queues[k] = id
		}
	}
	return ix
}

func (ix *ownerIndex) resolve(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	if n := norm(ref); n != "" && (sfid.Prefix(n) == sfid.PrefixUser || sfid.Prefix(n) == sfid.PrefixQueue) {
		return n, nil
	}
	k := strings.ToLower(ref)
	if id, ok := ix.s.usernames[k]; ok {
		return id, nil
	}
	if id, ok := ix.emails[k]; ok {
		return id, nil
	}
	if id, ok := ix.queues[k]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%w: owner %q", ErrNotFound, ref)
}
