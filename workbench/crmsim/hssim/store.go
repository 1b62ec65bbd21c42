package hssim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Owner types.
const (
	OwnerPerson = "PERSON"
	OwnerQueue  = "QUEUE"
)

// Team is an owner's team membership.
type Team struct {
	ID      string `json:"id" yaml:"id"`
	Name    string `json:"name" yaml:"name"`
	Primary bool   `json:"primary" yaml:"primary"`
}

// Owner is a HubSpot owner. UserID is the (possibly deactivated) user behind it; the API shows
// it as userId only while the owner is not archived.
type Owner struct {
	ID        string    `json:"id,omitempty" yaml:"id,omitempty"`
	Email     string    `json:"email,omitempty" yaml:"email,omitempty"`
	Type      string    `json:"type,omitempty" yaml:"type,omitempty"`
	FirstName string    `json:"firstName,omitempty" yaml:"firstName,omitempty"`
	LastName  string    `json:"lastName,omitempty" yaml:"lastName,omitempty"`
	UserID    int64     `json:"userId,omitempty" yaml:"userId,omitempty"`
	Archived  bool      `json:"archived,omitempty" yaml:"archived,omitempty"`
	Teams     []Team    `json:"teams,omitempty" yaml:"teams,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero" yaml:"createdAt,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero" yaml:"updatedAt,omitempty"`
}

// Contact is a HubSpot contact: a numeric id and string properties (email, firstname, lastname,
// hubspot_owner_id, …).
type Contact struct {
	ID         string            `json:"id,omitempty" yaml:"id,omitempty"`
	Properties map[string]string `json:"properties,omitempty" yaml:"properties,omitempty"`
	Archived   bool              `json:"archived,omitempty" yaml:"archived,omitempty"`
	CreatedAt  time.Time         `json:"createdAt,omitzero" yaml:"createdAt,omitempty"`
	UpdatedAt  time.Time         `json:"updatedAt,omitzero" yaml:"updatedAt,omitempty"`
}

// Errors returned by the Go admin API.
var (
	ErrNotFound  = errors.New("hssim: not found")
	ErrDuplicate = errors.New("hssim: duplicate")
	ErrInvalid   = errors.New("hssim: invalid")
)

// Properties the sandbox knows. Writable ones can be set through the API; read-only ones are
// computed.
var (
	writableProps = map[string]bool{"email": true, "firstname": true, "lastname": true, "hubspot_owner_id": true,
		"phone": true, "company": true, "jobtitle": true, "lifecyclestage": true}
	readOnlyProps = map[string]bool{"hs_object_id": true, "createdate": true, "lastmodifieddate": true}
	defaultProps  = []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}
)

type store struct {
	owners      map[string]*Owner
	ownerOrder  []string // sorted numerically
	contacts    map[string]*Contact
	emails      map[string]string // lower(email) → contact id
	nextOwner   int64
	nextUser    int64
	nextContact int64
}

func newStore() *store {
	return &store{owners: map[string]*Owner{}, contacts: map[string]*Contact{}, emails: map[string]string{},
		nextOwner: 71000000, nextUser: 9900000, nextContact: 51000}
}

func numericID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

func (s *store) addOwner(o Owner, now time.Time) (*Owner, error) {
	if o.ID == "" {
		s.nextOwner++
		for s.owners[strconv.FormatInt(s.nextOwner, 10)] != nil {
			s.nextOwner++
		}
		o.ID = strconv.FormatInt(s.nextOwner, 10)
	} else if _, ok := numericID(o.ID); !ok {
		return nil, fmt.Errorf("%w: owner id %q is not numeric", ErrInvalid, o.ID)
	}
	if _, dup := s.owners[o.ID]; dup {
		return nil, fmt.Errorf("%w: owner %s", ErrDuplicate, o.ID)
	}
	if o.Type == "" {
		o.Type = OwnerPerson
	}
	if o.Type != OwnerPerson && o.Type != OwnerQueue {
		return nil, fmt.Errorf("%w: owner type %q", ErrInvalid, o.Type)
	}
	if o.Type == OwnerPerson && o.UserID == 0 {
		s.nextUser++
		o.UserID = s.nextUser
	}
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = o.CreatedAt
	}
	p := &o
	s.owners[o.ID] = p
	i := sort.Search(len(s.ownerOrder), func(i int) bool { return lessID(o.ID, s.ownerOrder[i]) })
	s.ownerOrder = append(s.ownerOrder, "")
	copy(s.ownerOrder[i+1:], s.ownerOrder[i:])
	s.ownerOrder[i] = o.ID
	return p, nil
}

// lessID orders numeric ids numerically.
func lessID(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func (s *store) addContact(c Contact, now time.Time) (*Contact, error) {
	if c.ID == "" {
		s.nextContact++
		for s.contacts[strconv.FormatInt(s.nextContact, 10)] != nil {
			s.nextContact++
		}
		c.ID = strconv.FormatInt(s.nextContact, 10)
	} else if _, ok := numericID(c.ID); !ok {
		return nil, fmt.Errorf("%w: contact id %q is not numeric", ErrInvalid, c.ID)
	}
	if _, dup := s.contacts[c.ID]; dup {
		return nil, fmt.Errorf("%w: contact %s", ErrDuplicate, c.ID)
	}
	props := map[string]string{}
	for k, v := range c.Properties {
		props[strings.ToLower(k)] = v
	}
	c.Properties = props
	if email := strings.ToLower(props["email"]); email != "" {
		if _, dup := s.emails[email]; dup {
			return nil, fmt.Errorf("%w: contact email %s", ErrDuplicate, email)
		}
		s.emails[email] = c.ID
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	p := &c
	s.contacts[c.ID] = p
	return p, nil
}

// ownerIndex resolves seed owner references (owner id or email, active owners first) to ids.
type ownerIndex struct {
	s      *store
	emails map[string]string
}

func (s *store) ownerIndex() *ownerIndex {
	ix := &ownerIndex{s: s, emails: map[string]string{}}
	for _, archived := range []bool{false, true} {
		for _, id := range s.ownerOrder {
			o := s.owners[id]
			k := strings.ToLower(o.Email)
			if _, seen := ix.emails[k]; o.Archived == archived && !seen && k != "" {
				ix.emails[k] = id
			}
		}
	}
	return ix
}

func (ix *ownerIndex) resolve(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	if _, ok := ix.s.owners[ref]; ok {
		return ref, nil
	}
	if id, ok := ix.emails[strings.ToLower(ref)]; ok {
		return id, nil
	}
	return "", fmt.Errorf("%w: owner %q", ErrNotFound, ref)
}

// peekBody returns the request body and leaves it readable for the handler.
func peekBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// hsTime is HubSpot's timestamp format.
const hsTime = "2006-01-02T15:04:05.000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(hsTime) }
