package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// User is a row of the User object, as the reconciliation reads it
// (docs/crm-protocols.md#soql-queries and docs/crm-protocols.md#identity-edge-cases).
type User struct {
	ID        string `json:"Id"`
	Email     string `json:"Email"`
	IsActive  bool   `json:"IsActive"`
	FirstName string `json:"FirstName"`
	LastName  string `json:"LastName"`
	// UserType is Standard, PowerPartner, CspLitePortal, CustomerSuccess, PowerCustomerSuccess,
	// CsnOnly, Guest, ….
	UserType string `json:"UserType"`
	// Username is globally unique, unlike Email.
	Username string `json:"Username"`
	// License is the name of the user licence of the user's profile (Profile.UserLicense.Name):
	// Salesforce, Salesforce Platform, Salesforce Integration, Chatter Free, …; empty when the user
	// has no profile (the Automated Process user). With UserType it tells a person from an
	// integration or automated user.
	License string `json:"-"`
}

// UnmarshalJSON reads a User row, taking License from the nested Profile.UserLicense lookup.
func (u *User) UnmarshalJSON(b []byte) error {
	type row User // no methods: no recursion
	var r struct {
		row
		Profile *struct {
			UserLicense *struct {
				Name string `json:"Name"`
			} `json:"UserLicense"`
		} `json:"Profile"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*u = User(r.row)
	if r.Profile != nil && r.Profile.UserLicense != nil {
		u.License = r.Profile.UserLicense.Name
	}
	return nil
}

// Record is a Contact or Lead found by email.
type Record struct {
	Type    string `json:"-"` // "Contact" or "Lead"
	ID      string `json:"Id"`
	Email   string `json:"Email"`
	OwnerID string `json:"OwnerId"`
}

// Object types whose owners ownersync reads and writes.
const (
	Contact = "Contact"
	Lead    = "Lead"
)

// userFields are the User columns selected, in this order.
const userFields = "Id, Email, IsActive, FirstName, LastName, UserType, Username, Profile.UserLicense.Name"

// queryResponse is one page of a SOQL query (docs/crm-protocols.md#soql-queries); each record's
// attributes object is ignored.
type queryResponse[T any] struct {
	TotalSize      int    `json:"totalSize"`
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl"`
	Records        []T    `json:"records"`
}

// QueryUsers calls fn with every User of the org, page by page (up to 2,000 a page), following
// nextRecordsUrl until done. Inactive users are included: the query has no filter, so that
// deactivations are seen. An error from fn stops the query and is returned as is.
func (c *Client) QueryUsers(ctx context.Context, fn func(page []User) error) error {
	soql := "SELECT " + userFields + " FROM User ORDER BY Id"
	return query(ctx, c, soql, fn)
}

// GetUser returns the User with id (15 or 18 characters); errors.Is(err, ErrNotFound) when there
// is none.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	soql := "SELECT " + userFields + " FROM User WHERE Id = " + Quote(id)
	var found []User
	err := query(ctx, c, soql, func(recs []User) error {
		found = append(found, recs...)
		return nil
	})
	if err != nil {
		return User{}, err
	}
	if len(found) == 0 {
		return User{}, fmt.Errorf("salesforce user %s: %w", id, ErrNotFound)
	}
	return found[0], nil
}

// Salesforce refuses a request whose URI and headers exceed 16,384 bytes (414 URI Too Long, 431);
// a query's SOQL travels URL-encoded in the URI. MaxQueryURI keeps the query part of one lookup
// under 12,000 bytes, leaving room for the path and headers (authorization, trace context);
// MaxQueryEmails bounds the values of one IN (…) list, one sObject Collections batch's worth. SOQL's
// own limits (100,000 characters a statement, 4,000 a string) are far above these.
const (
	MaxQueryURI    = 12000
	MaxQueryEmails = 200
)

// emailQuery is the SOQL that finds the objectType records with one of the quoted emails.
func emailQuery(objectType string, quoted []string) string {
	return "SELECT Id, Email, OwnerId FROM " + objectType + " WHERE Email IN (" + strings.Join(quoted, ", ") + ") ORDER BY Id"
}

// SplitEmails groups emails (duplicates, ignoring case as SOQL compares, and empty values
// dropped) so that each group is one FindRecordsByEmail query within MaxQueryEmails values and
// MaxQueryURI bytes; a caller that paces its calls queries group by group.
func SplitEmails(emails []string) [][]string {
	fixed := len(url.QueryEscape(emailQuery(Contact, nil))) // Lead is no longer than Contact
	sep := len(url.QueryEscape(", "))
	var out [][]string
	var cur []string
	size := fixed
	for _, e := range uniqueFold(emails) {
		n := len(url.QueryEscape(Quote(e)))
		if len(cur) > 0 && (len(cur) == MaxQueryEmails || size+sep+n > MaxQueryURI) {
			out = append(out, cur)
			cur, size = nil, fixed
		}
		if len(cur) > 0 {
			size += sep
		}
		cur = append(cur, e)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// FindRecordsByEmail returns the Contacts or Leads (objectType Contact or Lead) whose Email is one
// of emails, ordered by Id within each query. Lists longer than one query takes (SplitEmails) are
// split over several queries; duplicate emails are queried once. Several records may share an
// email.
func (c *Client) FindRecordsByEmail(ctx context.Context, objectType string, emails []string) ([]Record, error) {
	if objectType != Contact && objectType != Lead {
		return nil, fmt.Errorf("find records by email: object type %q: want Contact or Lead", objectType)
	}
	var out []Record
	for _, group := range SplitEmails(emails) {
		quoted := make([]string, len(group))
		for i, e := range group {
			quoted[i] = Quote(e)
		}
		err := query(ctx, c, emailQuery(objectType, quoted), func(recs []Record) error {
			for _, r := range recs {
				r.Type = objectType
				out = append(out, r)
			}
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("find %s records by email: %w", objectType, err)
		}
	}
	return out, nil
}

// query runs soql and calls fn with each page decoded as T.
func query[T any](ctx context.Context, c *Client, soql string, fn func([]T) error) error {
	var hdr http.Header
	if c.batchSize > 0 {
		hdr = http.Header{"Sforce-Query-Options": {"batchSize=" + strconv.Itoa(c.batchSize)}}
	}
	r := request{method: http.MethodGet, path: c.dataPath("/query"), query: url.Values{"q": {soql}}, header: hdr}
	seen := map[string]bool{}
	for {
		var page queryResponse[T]
		if _, err := c.do(ctx, r, &page); err != nil {
			return err
		}
		c.metrics.Records(ctx, "salesforce", c.tenant, "query", len(page.Records))
		if len(page.Records) > 0 {
			if err := fn(page.Records); err != nil {
				return err
			}
		}
		if page.Done || page.NextRecordsURL == "" {
			return nil
		}
		next, err := url.Parse(page.NextRecordsURL)
		if err != nil || next.IsAbs() || !strings.HasPrefix(next.Path, "/services/data/") {
			return fmt.Errorf("salesforce query: unexpected nextRecordsUrl %q", page.NextRecordsURL)
		}
		if seen[next.Path] {
			return fmt.Errorf("salesforce query: nextRecordsUrl %q repeated", page.NextRecordsURL)
		}
		seen[next.Path] = true
		r = request{method: http.MethodGet, path: next.Path, query: next.Query(), header: hdr}
		if len(r.query) == 0 {
			r.query = nil
		}
	}
}

// Quote returns s as a SOQL string literal: in single quotes, with backslash, quote and control
// characters escaped as SOQL requires.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// uniqueFold drops empty values and repeats that differ only in case, keeping first spellings.
func uniqueFold(vs []string) []string {
	seen := make(map[string]bool, len(vs))
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		k := strings.ToLower(strings.TrimSpace(v))
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, strings.TrimSpace(v))
	}
	return out
}
