package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/sfid"
)

// makeUsers returns n users with valid 18-character ids; every 7th is inactive.
func makeUsers(t testing.TB, n int) []salesforce.User {
	t.Helper()
	users := make([]salesforce.User, n)
	for i := range users {
		id, err := sfid.To18(fmt.Sprintf("0055g%010d", i))
		if err != nil {
			t.Fatal(err)
		}
		users[i] = salesforce.User{
			ID: id, Email: fmt.Sprintf("user%d@example.com", i), IsActive: i%7 != 0,
			FirstName: "First" + strconv.Itoa(i), LastName: "Last", UserType: "Standard",
			Username: fmt.Sprintf("user%d@acme.example.com", i), License: "Salesforce",
		}
		if i%11 == 5 { // the Automated Process user has no profile
			users[i].UserType, users[i].License = "AutomatedProcess", ""
		}
	}
	return users
}

// serveUserQuery answers the User query and its nextRecordsUrl pages in pages of pageSize (or the
// batchSize the client asked for), as docs/crm-protocols.md#soql-queries shows.
func serveUserQuery(t *testing.T, o *org, users []salesforce.User, pageSize int) {
	page := func(w http.ResponseWriter, r *http.Request, offset int) {
		size := pageSize
		if opt := r.Header.Get("Sforce-Query-Options"); opt != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(opt, "batchSize="))
			if err != nil {
				t.Errorf("Sforce-Query-Options = %q", opt)
			}
			size = n
		}
		end := min(offset+size, len(users))
		resp := map[string]any{"totalSize": len(users), "done": end == len(users)}
		recs := []map[string]any{}
		for _, u := range users[offset:end] {
			var profile any // null: no profile
			if u.License != "" {
				profile = map[string]any{"attributes": map[string]string{"type": "Profile"},
					"UserLicense": map[string]any{"attributes": map[string]string{"type": "UserLicense"}, "Name": u.License}}
			}
			recs = append(recs, map[string]any{
				"attributes": map[string]string{"type": "User", "url": "/services/data/" + version + "/sobjects/User/" + u.ID},
				"Id":         u.ID, "Email": u.Email, "IsActive": u.IsActive, "FirstName": u.FirstName,
				"LastName": u.LastName, "UserType": u.UserType, "Username": u.Username, "Profile": profile,
			})
		}
		resp["records"] = recs
		if end < len(users) {
			resp["nextRecordsUrl"] = fmt.Sprintf("/services/data/%s/query/01g5g00000XyZabAAB-%d", version, end)
		}
		b, _ := json.Marshal(resp)
		writeJSON(w, http.StatusOK, b)
	}
	o.mux.HandleFunc("GET /services/data/"+version+"/query", func(w http.ResponseWriter, r *http.Request) {
		want := "SELECT Id, Email, IsActive, FirstName, LastName, UserType, Username, Profile.UserLicense.Name FROM User ORDER BY Id"
		if got := r.URL.Query().Get("q"); got != want {
			writeJSON(w, http.StatusBadRequest, []byte(`[{"message":"unexpected query","errorCode":"MALFORMED_QUERY"}]`))
			return
		}
		page(w, r, 0)
	})
	o.mux.HandleFunc("GET /services/data/"+version+"/query/{locator}", func(w http.ResponseWriter, r *http.Request) {
		_, off, ok := strings.Cut(r.PathValue("locator"), "-")
		n, err := strconv.Atoi(off)
		if !ok || err != nil || n <= 0 || n >= len(users) {
			writeJSON(w, http.StatusBadRequest, []byte(`[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]`))
			return
		}
		page(w, r, n)
	})
}

func TestQueryUsersPaging(t *testing.T) {
	tests := []struct {
		name      string
		users     int
		batchSize int // client's QueryBatchSize
		wantPages []int
	}{
		{name: "4,500 users in pages of 2,000", users: 4500, wantPages: []int{2000, 2000, 500}},
		{name: "exactly one page", users: 2000, wantPages: []int{2000}},
		{name: "batchSize header honoured", users: 1000, batchSize: 400, wantPages: []int{400, 400, 200}},
		{name: "empty org", users: 0, wantPages: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrg(t)
			users := makeUsers(t, tt.users)
			serveUserQuery(t, o, users, 2000)
			var limits []salesforce.LimitInfo
			c := o.client(t, func(cfg *salesforce.Config) {
				cfg.QueryBatchSize = tt.batchSize
				cfg.OnLimitInfo = func(l salesforce.LimitInfo) { limits = append(limits, l) }
			})

			var got []salesforce.User
			var pages []int
			err := c.QueryUsers(context.Background(), func(page []salesforce.User) error {
				pages = append(pages, len(page))
				got = append(got, page...)
				return nil
			})
			if err != nil {
				t.Fatalf("QueryUsers: %v", err)
			}
			if diff := cmp.Diff(tt.wantPages, pages); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(users, got); diff != "" && len(users) > 0 {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			reqs := o.apiRequests()
			wantReqs := max(len(tt.wantPages), 1)
			if len(reqs) != wantReqs || len(limits) != wantReqs {
				t.Fatalf("%d requests and %d limit reports, want %d of each", len(reqs), len(limits), wantReqs)
			}
			for i, r := range reqs {
				if r.Auth != "Bearer "+tokenN(1) {
					t.Errorf("request %d Authorization = %q", i, r.Auth)
				}
				if i > 0 && !strings.HasPrefix(r.Path, "/services/data/"+version+"/query/01g5g00000XyZabAAB-") {
					t.Errorf("request %d path = %q, want the nextRecordsUrl", i, r.Path)
				}
				wantOpt := ""
				if tt.batchSize > 0 {
					wantOpt = "batchSize=" + strconv.Itoa(tt.batchSize)
				}
				if got := r.Header.Get("Sforce-Query-Options"); got != wantOpt {
					t.Errorf("request %d Sforce-Query-Options = %q, want %q", i, got, wantOpt)
				}
			}
			if got, ok := c.LimitInfo(); !ok || got != (salesforce.LimitInfo{Used: 18, Max: 15000}) {
				t.Errorf("LimitInfo() = %v, %v", got, ok)
			}
			if o.tokenCount() != 1 {
				t.Errorf("fetched %d tokens, want 1", o.tokenCount())
			}
		})
	}
}

func TestQueryUsersCallbackErrorStops(t *testing.T) {
	o := newOrg(t)
	serveUserQuery(t, o, makeUsers(t, 4500), 2000)
	stop := errors.New("stop")
	calls := 0
	err := o.client(t).QueryUsers(context.Background(), func([]salesforce.User) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 || len(o.apiRequests()) != 1 {
		t.Fatalf("QueryUsers = %v after %d calls and %d requests, want stop after 1 and 1", err, calls, len(o.apiRequests()))
	}
}

func TestGetUser(t *testing.T) {
	o := newOrg(t)
	o.mux.HandleFunc("GET /services/data/"+version+"/query", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("q") {
		case "SELECT Id, Email, IsActive, FirstName, LastName, UserType, Username, Profile.UserLicense.Name FROM User WHERE Id = '0055g00000AsDfGAAV'":
			writeJSON(w, http.StatusOK, golden(t, "query_user_response.json"))
		default:
			writeJSON(w, http.StatusOK, []byte(`{"totalSize":0,"done":true,"records":[]}`))
		}
	})
	c := o.client(t)
	got, err := c.GetUser(context.Background(), "0055g00000AsDfGAAV")
	if err != nil {
		t.Fatal(err)
	}
	want := salesforce.User{ID: "0055g00000AsDfGAAV", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace", UserType: "Standard",
		Username: "ada@acme.example.com", License: "Salesforce Integration"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetUser (-want +got):\n%s", diff)
	}
	if _, err := c.GetUser(context.Background(), "0055g00000ZZZZZAAA"); !errors.Is(err, salesforce.ErrNotFound) {
		t.Errorf("GetUser(unknown) = %v, want ErrNotFound", err)
	}
}

func TestFindRecordsByEmail(t *testing.T) {
	o := newOrg(t)
	var queries []string
	o.mux.HandleFunc("GET /services/data/"+version+"/query", func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Query().Get("q"))
		writeJSON(w, http.StatusOK, golden(t, "query_contacts_response.json"))
	})
	c := o.client(t)
	got, err := c.FindRecordsByEmail(context.Background(), salesforce.Contact, []string{"o'brien@example.com", "ada@example.com", "ADA@example.com", `back\slash@example.com`})
	if err != nil {
		t.Fatal(err)
	}
	wantQ := []string{`SELECT Id, Email, OwnerId FROM Contact WHERE Email IN ('o\'brien@example.com', 'ada@example.com', 'back\\slash@example.com') ORDER BY Id`}
	if diff := cmp.Diff(wantQ, queries); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
	want := []salesforce.Record{
		{Type: "Contact", ID: "0035g00000QwErTAAV", Email: "o'brien@example.com", OwnerID: "0055g00000HjKlMAAV"},
		{Type: "Contact", ID: "0035g00000QwErUAAV", Email: "Ada@Example.com", OwnerID: "0055g00000AsDfGAAV"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	// The raw query string is form-encoded: spaces as +.
	if rq := o.apiRequests()[0].RawQuery; !strings.HasPrefix(rq, "q=SELECT+Id%2C+Email%2C+OwnerId+FROM+Contact+WHERE+Email+IN+%28%27o%5C%27brien") {
		t.Errorf("raw query = %q", rq)
	}
}

func TestFindRecordsByEmailChunks(t *testing.T) {
	o := newOrg(t)
	var inLists [][]string
	o.mux.HandleFunc("GET /services/data/"+version+"/query", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("q")
		const pre, post = "SELECT Id, Email, OwnerId FROM Lead WHERE Email IN (", ") ORDER BY Id"
		if !strings.HasPrefix(q, pre) || !strings.HasSuffix(q, post) {
			t.Errorf("query = %q", q)
		}
		list := strings.Split(strings.TrimSuffix(strings.TrimPrefix(q, pre), post), ", ")
		inLists = append(inLists, list)
		recs := []map[string]any{}
		for i, v := range list {
			recs = append(recs, map[string]any{"attributes": map[string]string{"type": "Lead"}, "Id": fmt.Sprintf("00Q%d", i), "Email": strings.Trim(v, "'"), "OwnerId": "00G5g000003LkJhEAK"})
		}
		b, _ := json.Marshal(map[string]any{"totalSize": len(recs), "done": true, "records": recs})
		writeJSON(w, http.StatusOK, b)
	})
	var emails []string
	for i := range 450 {
		emails = append(emails, fmt.Sprintf("lead%03d@example.com", i))
	}
	got, err := o.client(t).FindRecordsByEmail(context.Background(), salesforce.Lead, emails)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 450 {
		t.Errorf("got %d records, want 450", len(got))
	}
	var sizes []int
	for _, l := range inLists {
		sizes = append(sizes, len(l))
	}
	if diff := cmp.Diff([]int{200, 200, 50}, sizes); diff != "" {
		t.Errorf("values per query (-want +got):\n%s", diff)
	}
}

// Long emails split a query before 200 values, so the URI stays under Salesforce's 16,384-byte
// limit of URI and headers (414 URI Too Long otherwise).
func TestSplitEmailsKeepsTheQueryURIShort(t *testing.T) {
	var emails []string
	for i := range 200 {
		emails = append(emails, fmt.Sprintf("%s.%03d@sales-department.example-corporation.com", strings.Repeat("very.long.name", 2), i))
	}
	emails = append(emails, "DUP@example.com", "dup@example.com", "")
	groups := salesforce.SplitEmails(emails)
	total := 0
	for _, g := range groups {
		quoted := make([]string, len(g))
		for i, e := range g {
			quoted[i] = salesforce.Quote(e)
		}
		soql := "SELECT Id, Email, OwnerId FROM Contact WHERE Email IN (" + strings.Join(quoted, ", ") + ") ORDER BY Id"
		if n := len(url.QueryEscape(soql)); n > salesforce.MaxQueryURI || len(g) > salesforce.MaxQueryEmails {
			t.Errorf("group of %d emails: query %d bytes encoded, over the limits", len(g), n)
		}
		total += len(g)
	}
	if total != 201 || len(groups) < 2 {
		t.Errorf("%d emails in %d groups, want 201 (duplicates and empties dropped) in ≥ 2", total, len(groups))
	}
}

func TestFindRecordsByEmailRejectsOtherObjects(t *testing.T) {
	o := newOrg(t)
	if _, err := o.client(t).FindRecordsByEmail(context.Background(), "Account", []string{"a@b.c"}); err == nil {
		t.Fatal("want an error for Account")
	}
	if n := len(o.apiRequests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ada@example.com", `'ada@example.com'`},
		{"o'brien@example.com", `'o\'brien@example.com'`},
		{`a\b`, `'a\\b'`},
		{"x\ny\tz\r", `'x\ny\tz\r'`},
		{`' OR Id != '`, `'\' OR Id != \''`},
	}
	for _, tt := range tests {
		if got := salesforce.Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// unquote reverses Quote the way a SOQL parser reads a string literal.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", false
	}
	var b strings.Builder
	body := s[1 : len(s)-1]
	for i := 0; i < len(body); i++ {
		ch := body[i]
		if ch == '\'' {
			return "", false // an unescaped quote would end the literal early
		}
		if ch != '\\' {
			b.WriteByte(ch)
			continue
		}
		i++
		if i == len(body) {
			return "", false
		}
		switch body[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		default:
			b.WriteByte(body[i])
		}
	}
	return b.String(), true
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"ada@example.com", "o'brien@x.com", `a\'b`, "'", `\`, "x\ny"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // Quote works on text; invalid bytes become U+FFFD
		}
		got, ok := unquote(salesforce.Quote(s))
		if !ok || got != s {
			t.Fatalf("unquote(Quote(%q)) = %q, %v", s, got, ok)
		}
	})
}
