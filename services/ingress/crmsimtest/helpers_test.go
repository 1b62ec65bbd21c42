package crmsimtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

const (
	sfClientID     = "3MVG9-crmsimtest"
	sfClientSecret = "crmsimtest-secret"
	sfIntegration  = "integration@acme.example"
	hsToken        = "pat-na1-crmsimtest"
	hsAppSecret    = "crmsimtest-app-secret"
)

func id18(id15 string) string {
	id, err := sfid.To18(id15)
	if err != nil {
		panic(err)
	}
	return id
}

var (
	sfAda     = id18("0055g00000AsDfG")
	sfBob     = id18("0055g00000BoBbY")
	sfLinus   = id18("0055g00000HjKlM")
	sfQueue   = id18("00G5g000003LkJh")
	sfContact = id18("0035g00000QwErT")
	sfNoEmail = id18("0035g00000NoMaL")
	sfLead    = id18("00Q5g00000ZxCvB")
)

// sfSeed: the integration user, three active users, a Lead queue, two contacts (one without an
// email) and a lead.
func sfSeed() sfsim.Seed {
	return sfsim.Seed{
		Users: []sfsim.SeedUser{
			{Username: sfIntegration, Email: sfIntegration, LastName: "Integration"},
			{ID: sfAda, Username: "ada@acme.example", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"},
			{ID: sfBob, Username: "bob@acme.example", Email: "bob@example.com", FirstName: "Bob", LastName: "Builder"},
			{ID: sfLinus, Username: "linus@acme.example", Email: "linus@example.com", FirstName: "Linus", LastName: "Pauling"},
		},
		Queues: []sfsim.Queue{{ID: sfQueue, Name: "Inbound Leads", SobjectTypes: []string{"Lead"}}},
		Contacts: []sfsim.SeedRecord{
			{ID: sfContact, Email: "grace@example.org", FirstName: "Grace", LastName: "Hopper", Owner: sfAda},
			{ID: sfNoEmail, LastName: "Nomail", Owner: sfAda},
		},
		Leads: []sfsim.SeedRecord{{ID: sfLead, Email: "lead@example.org", LastName: "Lead", Company: "Acme", Owner: sfAda}},
	}
}

// newOrg serves a sandbox org on httptest with outbound messages going to outboundURL (with the
// shared key, when set).
func newOrg(t *testing.T, outboundURL, key string) (*sfsim.Org, *salesforce.Client) {
	t.Helper()
	o, err := sfsim.New(sfsim.Config{ClientID: sfClientID, ClientSecret: sfClientSecret, RunAsUsername: sfIntegration,
		Outbound: sfsim.OutboundConfig{URL: outboundURL, Key: key, BaseDelay: 5 * time.Millisecond, BatchDelay: 5 * time.Millisecond, Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Load(sfSeed()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	o.SetInstanceURL(srv.URL)
	t.Cleanup(func() {
		srv.Close()
		_ = o.Close()
	})
	c, err := salesforce.New(salesforce.Config{TokenURL: srv.URL + "/services/oauth2/token", APIVersion: "62.0", Timeout: 5 * time.Second,
		ClientCredentials: &salesforce.ClientCredentials{ClientID: sfClientID, ClientSecret: sfClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	return o, c
}

// hsSeed: two active owners, an archived one, and four contacts.
func hsSeed() hssim.Seed {
	return hssim.Seed{
		Owners: []hssim.Owner{
			{ID: "7001", Email: "ada@example.com", FirstName: "Ada", UserID: 9001},
			{ID: "7002", Email: "bob@example.com", FirstName: "Bob", UserID: 9002},
			{ID: "7003", Email: "old@example.com", FirstName: "Old", UserID: 9003, Archived: true},
		},
		Contacts: []hssim.SeedContact{
			{ID: "101", Email: "grace@example.org", Owner: "7001"},
			{ID: "102", Email: "linus@example.org", Owner: "7002"},
			{ID: "103", Email: "nobody@example.org"},
			{ID: "104", Email: "four@example.org", Owner: "7001"},
		},
	}
}

// newAccount serves a sandbox account on httptest whose webhooks go to target.
func newAccount(t *testing.T, target string) (*hssim.Account, *hubspot.Client) {
	t.Helper()
	a, err := hssim.New(hssim.Config{AccessTokens: []string{hsToken}, ClientSecret: hsAppSecret,
		Webhooks: hssim.WebhookConfig{TargetURL: target, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, BatchDelay: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Load(hsSeed()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		_ = a.Close()
	})
	c, err := hubspot.New(hubspot.Config{BaseURL: srv.URL, AccessToken: hsToken, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// received is one request a recorder got.
type received struct {
	Method string
	// URI is the URI as the sandbox called it: scheme, host, path and raw query.
	URI    string
	Header http.Header
	Body   []byte
}

// recorder is an HTTP endpoint that keeps every request and answers with respond.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []received
	respond func(n int, w http.ResponseWriter) // n counts requests from 0
}

func newRecorder(t *testing.T, respond func(n int, w http.ResponseWriter)) *recorder {
	t.Helper()
	r := &recorder{respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs = append(r.reqs, received{Method: req.Method, URI: "http://" + req.Host + req.RequestURI, Header: req.Header.Clone(), Body: b})
		r.mu.Unlock()
		r.respond(n, w)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

func hssimContact(id, email string) hssim.Contact {
	return hssim.Contact{ID: id, Properties: map[string]string{"email": email}}
}
