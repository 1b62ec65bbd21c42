package salesforce_test

// Round trips of the real client against the real Salesforce sandbox (workbench/crmsim/sfsim) served
// over HTTP: every call of the client, with the sandbox's validation, faults, limits and
// Outbound Messages (issue 4, "Tests").

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/retry"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

var updateRoundtrip = flag.Bool("roundtrip.update", false, "rewrite testdata/roundtrip golden files")

const (
	rtAPIVersion   = "62.0"
	rtClientID     = "3MVG9-roundtrip-consumer-key"
	rtClientSecret = "roundtrip-s3cr3t"
	rtIntegration  = "integration@acme.example"
	rtQueryPath    = "/services/data/v62.0/query"
	rtTokenPath    = "/services/oauth2/token"
)

// rtID returns the 18-character form of a 15-character id.
func rtID(id15 string) string {
	id, err := sfid.To18(id15)
	if err != nil {
		panic(err)
	}
	return id
}

var (
	rtAda      = rtID("0055g00000AsDfG") // active
	rtBob      = rtID("0055g00000BoBbY") // active
	rtLinus    = rtID("0055g00000HjKlM") // inactive
	rtNobody   = rtID("0055g00000NoOnE") // no such user
	rtQueue    = rtID("00G5g000003LkJh") // Lead queue
	rtContact1 = rtID("0035g00000QwErT")
	rtContact2 = rtID("0035g00000AbCdE")
	rtContact3 = rtID("0035g00000FgHiJ")
	rtContact4 = rtID("0035g00000KlMnO")
	rtDeleted  = rtID("0035g00000DeLeT")
	rtLead1    = rtID("00Q5g00000ZxCvB")
	rtLead2    = rtID("00Q5g00000NmLkJ")
)

func rtActive(b bool) *bool { return &b }

// rtSeed is a small org: three users (one inactive) and the integration user, a Lead queue,
// contacts (one deleted) and leads, with a duplicate email across objects and within Contact.
func rtSeed() sfsim.Seed {
	return sfsim.Seed{
		Users: []sfsim.SeedUser{
			{Username: rtIntegration, Email: rtIntegration, LastName: "Integration"},
			{ID: rtAda, Username: "ada@acme.example", Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"},
			{ID: rtBob, Username: "bob@acme.example", Email: "bob@example.com", FirstName: "Bob", LastName: "Builder"},
			{ID: rtLinus, Username: "linus@acme.example", Email: "linus@example.com", FirstName: "Linus", LastName: "Pauling", IsActive: rtActive(false)},
		},
		Queues: []sfsim.Queue{{ID: rtQueue, Name: "Inbound Leads", SobjectTypes: []string{"Lead"}}},
		Contacts: []sfsim.SeedRecord{
			{ID: rtContact1, Email: "grace@example.org", FirstName: "Grace", LastName: "Hopper", Owner: rtAda},
			{ID: rtContact2, Email: "Twice@Example.org", LastName: "Two", Owner: rtAda},
			{ID: rtContact3, Email: "twice@example.org", LastName: "Three", Owner: rtLinus},
			{ID: rtContact4, Email: "four@example.org", LastName: "Four", Owner: rtBob},
			{ID: rtDeleted, Email: "gone@example.org", LastName: "Gone", Owner: rtAda, Deleted: true},
		},
		Leads: []sfsim.SeedRecord{
			{ID: rtLead1, Email: "grace@example.org", LastName: "Hopper", Company: "Navy", Owner: "Inbound Leads"},
			{ID: rtLead2, Email: "lead@example.org", LastName: "Lead", Company: "Acme", Owner: rtBob},
		},
	}
}

// rtSandbox serves a sandbox org over httptest; the org's instance URL is the server's.
func rtSandbox(t *testing.T, cfg sfsim.Config, seed sfsim.Seed) (*sfsim.Org, string) {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = rtClientID, rtClientSecret
	}
	if cfg.RunAsUsername == "" {
		cfg.RunAsUsername = rtIntegration
	}
	o, err := sfsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Load(seed); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	o.SetInstanceURL(srv.URL)
	t.Cleanup(func() {
		srv.Close()
		_ = o.Close()
	})
	return o, srv.URL
}

// rtClient is a client-credentials client of the sandbox at base; the API host comes from the
// token response.
func rtClient(t *testing.T, base string, mod ...func(*salesforce.Config)) *salesforce.Client {
	t.Helper()
	cfg := salesforce.Config{
		TokenURL:          base + rtTokenPath,
		APIVersion:        rtAPIVersion,
		ClientCredentials: &salesforce.ClientCredentials{ClientID: rtClientID, ClientSecret: rtClientSecret},
		Timeout:           5 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := salesforce.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rtAPIError returns err's *salesforce.APIError or fails the test.
func rtAPIError(t *testing.T, err error) *salesforce.APIError {
	t.Helper()
	var ae *salesforce.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return ae
}

// rtGolden compares got (JSON) with testdata/roundtrip/name as JSON values, rewriting the file
// (indented) under -roundtrip.update.
func rtGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "roundtrip", name)
	if *updateRoundtrip {
		var buf bytes.Buffer
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('\n')
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -roundtrip.update to create): %v", err)
	}
	sameJSON(t, want, got)
}

func rtTokenRequests(o *sfsim.Org) []crmsim.Entry {
	return o.Log().Matching(http.MethodPost, rtTokenPath)
}

func TestRoundTripClientCredentials(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	u, err := c.GetUser(ctx, rtAda)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "ada@acme.example" {
		t.Errorf("GetUser = %+v", u)
	}
	if _, err := c.GetUser(ctx, rtBob); err != nil {
		t.Fatal(err)
	}
	toks := rtTokenRequests(o)
	if len(toks) != 1 || toks[0].Status != http.StatusOK {
		t.Fatalf("token requests = %+v, want one 200", toks)
	}
	form, err := url.ParseQuery(string(toks[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("grant_type") != sfsim.GrantClientCredentials {
		t.Errorf("grant_type = %q", form.Get("grant_type"))
	}
	// The token the endpoint answered is the one every API call carried.
	api := o.Log().Matching(http.MethodGet, "/services/data/")
	if len(api) != 2 {
		t.Fatalf("%d API requests, want 2", len(api))
	}
	auth := api[0].Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || api[1].Header.Get("Authorization") != auth {
		t.Errorf("Authorization headers %q, %q", auth, api[1].Header.Get("Authorization"))
	}

	// A wrong secret is refused at the token endpoint; that will not change on a retry.
	bad := rtClient(t, base, func(cfg *salesforce.Config) {
		cfg.ClientCredentials = &salesforce.ClientCredentials{ClientID: rtClientID, ClientSecret: "wrong"}
	})
	_, err = bad.GetUser(ctx, rtAda)
	if err == nil || salesforce.Transient(err) {
		t.Errorf("wrong secret: err = %v, transient %v; want a permanent error", err, salesforce.Transient(err))
	}
	if !strings.Contains(fmt.Sprint(err), "invalid_client") {
		t.Errorf("wrong secret: %v, want the invalid_client error", err)
	}
	if strings.Contains(fmt.Sprint(err), "wrong") {
		t.Errorf("error %q shows the secret", err)
	}
}

func TestRoundTripJWTBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o, base := rtSandbox(t, sfsim.Config{JWTPublicKey: &key.PublicKey}, rtSeed())
	jwtClient := func(username string, k *rsa.PrivateKey) *salesforce.Client {
		return rtClient(t, base, func(cfg *salesforce.Config) {
			cfg.ClientCredentials = nil
			cfg.JWTBearer = &salesforce.JWTBearer{ClientID: rtClientID, Username: username, PrivateKey: k}
		})
	}
	ctx := context.Background()
	start := time.Now()
	if _, err := jwtClient(rtIntegration, key).GetUser(ctx, rtAda); err != nil {
		t.Fatalf("GetUser with JWT bearer: %v", err)
	}
	toks := rtTokenRequests(o)
	if len(toks) != 1 || toks[0].Status != http.StatusOK {
		t.Fatalf("token requests = %+v, want one 200", toks)
	}
	form, err := url.ParseQuery(string(toks[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("grant_type") != sfsim.GrantJWTBearer {
		t.Errorf("grant_type = %q", form.Get("grant_type"))
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(form.Get("assertion"), claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"})); err != nil {
		t.Fatalf("assertion: %v", err)
	}
	exp, _ := claims.GetExpirationTime()
	if exp == nil || exp.Sub(start) > salesforce.MaxAssertionTTL+time.Second {
		t.Errorf("exp %v is more than 3 minutes after %v", exp, start)
	}
	if iss, _ := claims.GetIssuer(); iss != rtClientID {
		t.Errorf("iss = %q", iss)
	}
	if sub, _ := claims.GetSubject(); sub != rtIntegration {
		t.Errorf("sub = %q", sub)
	}

	// An assertion signed with another key, or for an inactive user, gets no token: permanent.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*salesforce.Client{
		"other key":     jwtClient(rtIntegration, other),
		"inactive user": jwtClient("linus@acme.example", key),
	} {
		_, err := c.GetUser(ctx, rtAda)
		if err == nil || salesforce.Transient(err) || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("%s: err = %v (transient %v), want a permanent invalid_grant", name, err, salesforce.Transient(err))
		}
	}
}

func TestRoundTripQueryUsersPastTwoThousand(t *testing.T) {
	seed := sfsim.Seed{Users: []sfsim.SeedUser{{Username: rtIntegration, Email: rtIntegration, LastName: "Integration"}}}
	for i := range 4499 {
		seed.Users = append(seed.Users, sfsim.SeedUser{
			Username: fmt.Sprintf("u%04d@acme.example", i), Email: fmt.Sprintf("u%04d@example.com", i),
			FirstName: fmt.Sprintf("First%d", i), LastName: "Last", IsActive: rtActive(i%9 != 0),
		})
	}
	o, base := rtSandbox(t, sfsim.Config{}, seed)
	var want []salesforce.User
	inactive := 0
	for _, u := range o.Users() {
		want = append(want, salesforce.User{ID: u.ID, Email: u.Email, IsActive: u.IsActive, FirstName: u.FirstName,
			LastName: u.LastName, UserType: u.UserType, Username: u.Username, License: u.License})
		if !u.IsActive {
			inactive++
		}
	}
	if len(want) != 4500 || inactive != 500 {
		t.Fatalf("sandbox has %d users, %d inactive", len(want), inactive)
	}
	sortUsers := func(us []salesforce.User) {
		slices.SortFunc(us, func(a, b salesforce.User) int { return strings.Compare(a.ID, b.ID) })
	}
	sortUsers(want)

	for _, tt := range []struct {
		name      string
		batchSize int
		pages     []int
	}{
		{"default", 0, []int{2000, 2000, 500}},
		{"batch1000", 1000, []int{1000, 1000, 1000, 1000, 500}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o.Log().Reset()
			c := rtClient(t, base, func(cfg *salesforce.Config) { cfg.QueryBatchSize = tt.batchSize })
			var got []salesforce.User
			var pages []int
			err := c.QueryUsers(context.Background(), func(page []salesforce.User) error {
				pages = append(pages, len(page))
				got = append(got, page...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.pages, pages); diff != "" {
				t.Errorf("page sizes (-want +got):\n%s", diff)
			}
			sortUsers(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			reqs := o.Log().Matching(http.MethodGet, rtQueryPath)
			if len(reqs) != len(tt.pages) {
				t.Fatalf("%d query requests, want %d", len(reqs), len(tt.pages))
			}
			q, _ := url.ParseQuery(reqs[0].Query)
			if !strings.HasPrefix(q.Get("q"), "SELECT Id, Email, IsActive, FirstName, LastName, UserType, Username, Profile.UserLicense.Name FROM User") ||
				strings.Contains(q.Get("q"), "WHERE") {
				t.Errorf("first request q = %q, want every User without a filter", q.Get("q"))
			}
			for i, r := range reqs[1:] {
				if !strings.HasPrefix(r.Path, rtQueryPath+"/01g") || r.Query != "" {
					t.Errorf("page %d: GET %s?%s, want the nextRecordsUrl", i+2, r.Path, r.Query)
				}
			}
			for _, r := range reqs {
				opt := r.Header.Get("Sforce-Query-Options")
				if (tt.batchSize == 0 && opt != "") || (tt.batchSize != 0 && opt != fmt.Sprintf("batchSize=%d", tt.batchSize)) {
					t.Errorf("Sforce-Query-Options = %q", opt)
				}
			}
		})
	}
}

func TestRoundTripGetUser(t *testing.T) {
	_, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	tests := []struct {
		name string
		id   string
		want salesforce.User
		err  error
	}{
		{"18 chars", rtAda, salesforce.User{ID: rtAda, Email: "ada@example.com", IsActive: true, FirstName: "Ada", LastName: "Lovelace", UserType: "Standard", Username: "ada@acme.example", License: "Salesforce"}, nil},
		{"15 chars", rtLinus[:15], salesforce.User{ID: rtLinus, Email: "linus@example.com", IsActive: false, FirstName: "Linus", LastName: "Pauling", UserType: "Standard", Username: "linus@acme.example", License: "Salesforce"}, nil},
		{"unknown", rtNobody, salesforce.User{}, salesforce.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.GetUser(ctx, tt.id)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripFindRecordsByEmail(t *testing.T) {
	_, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	tests := []struct {
		name   string
		object string
		emails []string
		want   []salesforce.Record
	}{
		{"contacts, duplicates and case", salesforce.Contact, []string{"GRACE@example.org", "twice@example.org", "gone@example.org", "nobody@example.org"}, []salesforce.Record{
			{Type: "Contact", ID: rtContact2, Email: "Twice@Example.org", OwnerID: rtAda},
			{Type: "Contact", ID: rtContact3, Email: "twice@example.org", OwnerID: rtLinus},
			{Type: "Contact", ID: rtContact1, Email: "grace@example.org", OwnerID: rtAda},
		}},
		{"leads, one owned by a queue", salesforce.Lead, []string{"grace@example.org", "lead@example.org", "o'brien@example.org"}, []salesforce.Record{
			{Type: "Lead", ID: rtLead2, Email: "lead@example.org", OwnerID: rtBob},
			{Type: "Lead", ID: rtLead1, Email: "grace@example.org", OwnerID: rtQueue},
		}},
		{"none", salesforce.Contact, []string{"nobody@example.org"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.FindRecordsByEmail(ctx, tt.object, tt.emails)
			if err != nil {
				t.Fatal(err)
			}
			byID := func(a, b salesforce.Record) int { return strings.Compare(a.ID, b.ID) }
			slices.SortFunc(got, byID)
			want := slices.Clone(tt.want)
			slices.SortFunc(want, byID)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

// omRecorder is an Outbound Message endpoint that keeps every body and acknowledges it.
type omRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

// rtAck is the notificationsResponse with Ack true of
// docs/crm-protocols.md#outbound-message-acknowledgement.
const rtAck = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
	`<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>` +
	`</soapenv:Body></soapenv:Envelope>`

func newOMRecorder(t *testing.T) *omRecorder {
	r := &omRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, rtAck)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *omRecorder) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

func TestRoundTripUpdateOwnerFiresOutboundMessage(t *testing.T) {
	rec := newOMRecorder(t)
	o, base := rtSandbox(t, sfsim.Config{Outbound: sfsim.OutboundConfig{URL: rec.srv.URL, BaseDelay: time.Millisecond, BatchDelay: time.Millisecond}}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	if err := c.UpdateOwner(ctx, salesforce.Contact, rtContact1, rtBob); err != nil {
		t.Fatal(err)
	}
	patches := o.Log().Matching(http.MethodPatch, "/services/data/v62.0/sobjects/Contact/")
	if len(patches) != 1 || patches[0].Status != http.StatusNoContent {
		t.Fatalf("PATCH requests = %+v, want one 204", patches)
	}
	sameJSON(t, []byte(`{"OwnerId":"`+rtBob+`"}`), patches[0].Body)
	r, _ := o.Record(rtContact1)
	if r.OwnerID != rtBob || r.LastModifiedByID != o.IntegrationUserID() {
		t.Errorf("contact after the PATCH: owner %s by %s", r.OwnerID, r.LastModifiedByID)
	}

	// The write fires the Contact Outbound Message, as a real org does (the echo of §1.1).
	harness.Eventually(t, 5*time.Second, "the outbound message", func() bool { return o.OutboundStats().Acked == 1 })
	bodies := rec.received()
	if len(bodies) != 1 {
		t.Fatalf("%d outbound messages, want 1", len(bodies))
	}
	var env struct {
		Body struct {
			Notifications struct {
				OrganizationID string `xml:"OrganizationId"`
				Notification   []struct {
					SObject struct {
						Type    string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
						ID      string `xml:"urn:sobject.enterprise.soap.sforce.com Id"`
						OwnerID string `xml:"urn:sobject.enterprise.soap.sforce.com OwnerId"`
						ModBy   string `xml:"urn:sobject.enterprise.soap.sforce.com LastModifiedById"`
					} `xml:"sObject"`
				} `xml:"Notification"`
			} `xml:"http://soap.sforce.com/2005/09/outbound notifications"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(bodies[0], &env); err != nil {
		t.Fatalf("outbound message: %v\n%s", err, bodies[0])
	}
	n := env.Body.Notifications
	if n.OrganizationID != o.OrgID() || len(n.Notification) != 1 {
		t.Fatalf("message from %s with %d notifications", n.OrganizationID, len(n.Notification))
	}
	so := n.Notification[0].SObject
	if so.Type != "sf:Contact" || so.ID != rtContact1 || so.OwnerID != rtBob || so.ModBy != o.IntegrationUserID() {
		t.Errorf("notification sObject = %+v", so)
	}

	// Owner validation of the single-record PATCH: the codes reach the caller, all permanent.
	tests := []struct {
		name, object, id, owner string
		status                  int
		code                    string
		notFound                bool
	}{
		{"inactive owner", salesforce.Contact, rtContact1, rtLinus, 400, salesforce.CodeInactiveOwnerOrUser, false},
		{"unknown owner", salesforce.Contact, rtContact1, rtNobody, 400, salesforce.CodeInvalidCrossReferenceKey, false},
		{"queue on a contact", salesforce.Contact, rtContact1, rtQueue, 400, salesforce.CodeInvalidCrossReferenceTypeForField, false},
		{"deleted record", salesforce.Contact, rtDeleted, rtAda, 404, salesforce.CodeEntityIsDeleted, true},
		{"no such record", salesforce.Lead, rtID("00Q5g00000NoNeX"), rtAda, 404, salesforce.CodeNotFound, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.UpdateOwner(ctx, tt.object, tt.id, tt.owner)
			ae := rtAPIError(t, err)
			if ae.HTTPStatus != tt.status || ae.Code != tt.code {
				t.Errorf("error = %d %s, want %d %s", ae.HTTPStatus, ae.Code, tt.status, tt.code)
			}
			if salesforce.Transient(err) {
				t.Errorf("%v classified transient", err)
			}
			if errors.Is(err, salesforce.ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(ErrNotFound) = %v", !tt.notFound)
			}
		})
	}
	if r, _ := o.Record(rtContact1); r.OwnerID != rtBob {
		t.Errorf("a refused PATCH changed the owner to %s", r.OwnerID)
	}
}

func TestRoundTripUpdateOwnersPartialFailure(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	// Types interleaved: the client groups them into one chunk per type but answers in input order.
	updates := []salesforce.OwnerUpdate{
		{ObjectType: salesforce.Contact, ID: rtContact1, OwnerID: rtBob},
		{ObjectType: salesforce.Lead, ID: rtLead2, OwnerID: rtQueue},
		{ObjectType: salesforce.Contact, ID: rtContact2, OwnerID: rtLinus},
		{ObjectType: salesforce.Lead, ID: rtLead1, OwnerID: rtAda},
		{ObjectType: salesforce.Contact, ID: rtContact3, OwnerID: rtNobody},
		{ObjectType: salesforce.Contact, ID: rtDeleted, OwnerID: rtBob},
		{ObjectType: salesforce.Contact, ID: rtContact4[:15], OwnerID: rtQueue},
	}
	results, err := c.UpdateOwners(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		ID      string
		Success bool
		Code    string
	}
	var got []outcome
	for _, r := range results {
		oc := outcome{ID: r.ID, Success: r.Success}
		if err := r.Err(); err != nil {
			oc.Code = rtAPIError(t, err).Code
			if salesforce.Transient(err) {
				t.Errorf("%s: %v classified transient", r.ID, err)
			}
		}
		got = append(got, oc)
	}
	want := []outcome{
		{ID: rtContact1, Success: true},
		{ID: rtLead2, Success: true},
		{Code: salesforce.CodeInactiveOwnerOrUser},
		{ID: rtLead1, Success: true},
		{Code: salesforce.CodeInvalidCrossReferenceKey},
		{Code: salesforce.CodeEntityIsDeleted},
		{Code: salesforce.CodeInvalidCrossReferenceTypeForField},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results by position (-want +got):\n%s", diff)
	}
	owners := map[string]string{}
	for _, id := range []string{rtContact1, rtContact2, rtContact3, rtContact4, rtLead1, rtLead2} {
		r, _ := o.Record(id)
		owners[id] = r.OwnerID
	}
	wantOwners := map[string]string{rtContact1: rtBob, rtContact2: rtAda, rtContact3: rtLinus, rtContact4: rtBob, rtLead1: rtAda, rtLead2: rtQueue}
	if diff := cmp.Diff(wantOwners, owners); diff != "" {
		t.Errorf("owners in the sandbox (-want +got):\n%s", diff)
	}
	reqs := o.Log().Matching(http.MethodPatch, "/services/data/v62.0/composite/sobjects")
	if len(reqs) != 1 || reqs[0].Status != http.StatusOK {
		t.Fatalf("collections requests = %+v, want one 200", reqs)
	}
	rtGolden(t, "collections_mixed_request.json", reqs[0].Body)
}

func TestRoundTripLimitInfo(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{DailyLimit: 15000}, rtSeed())
	o.SetDailyUsage(10017)
	var mu sync.Mutex
	var seen []salesforce.LimitInfo
	c := rtClient(t, base, func(cfg *salesforce.Config) {
		cfg.OnLimitInfo = func(l salesforce.LimitInfo) {
			mu.Lock()
			seen = append(seen, l)
			mu.Unlock()
		}
	})
	if _, ok := c.LimitInfo(); ok {
		t.Error("LimitInfo before any call reports usage")
	}
	ctx := context.Background()
	if _, err := c.GetUser(ctx, rtAda); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindRecordsByEmail(ctx, salesforce.Lead, []string{"lead@example.org"}); err != nil {
		t.Fatal(err)
	}
	used, limit := o.DailyUsage()
	got, ok := c.LimitInfo()
	if !ok || got != (salesforce.LimitInfo{Used: used, Max: limit}) || got.Used != 10019 || got.Remaining() != 15000-10019 {
		t.Errorf("LimitInfo = %+v, %v; the sandbox counts %d/%d", got, ok, used, limit)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []salesforce.LimitInfo{{Used: 10018, Max: 15000}, {Used: 10019, Max: 15000}}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("OnLimitInfo calls (-want +got):\n%s", diff)
	}
}

func TestRoundTripTokenExpiry(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	if _, err := c.GetUser(ctx, rtAda); err != nil {
		t.Fatal(err)
	}
	o.ExpireTokens()
	o.Log().Reset()
	if _, err := c.GetUser(ctx, rtBob); err != nil {
		t.Fatalf("GetUser after the tokens expired: %v", err)
	}
	var got []string
	for _, e := range o.Log().Entries() {
		got = append(got, fmt.Sprintf("%s %s %d", e.Method, strings.TrimPrefix(e.Path, "/services/"), e.Status))
	}
	want := []string{
		"GET data/v62.0/query 401",
		"POST oauth2/token 200",
		"GET data/v62.0/query 200",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	entries := o.Log().Entries()
	if entries[0].Header.Get("Authorization") == entries[2].Header.Get("Authorization") {
		t.Error("the retry carried the expired token")
	}

	// A 401 that persists after the new token is returned, once, as permanent.
	o.Faults().Add(crmsim.Rule{Method: http.MethodGet, Path: rtQueryPath, Action: crmsim.ActionStatus, Status: 401, Code: salesforce.CodeInvalidSessionID, Count: 2})
	o.Log().Reset()
	_, err := c.GetUser(ctx, rtAda)
	if ae := rtAPIError(t, err); ae.HTTPStatus != 401 || ae.Code != salesforce.CodeInvalidSessionID || salesforce.Transient(err) {
		t.Errorf("persistent 401: %v (transient %v)", err, salesforce.Transient(err))
	}
	if n := len(o.Log().Matching(http.MethodGet, "/services/data/")); n != 2 {
		t.Errorf("%d API requests for a persistent 401, want 2 (one retry)", n)
	}
	if n := len(rtTokenRequests(o)); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// rtRetry is a fast retry policy with the client's classification.
func rtRetry(onRetry func(error, time.Duration)) retry.Policy {
	return retry.Policy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxAttempts: 5,
		MaxElapsed: 5 * time.Second, Retryable: salesforce.Transient, OnRetry: onRetry}
}

func TestRoundTripServiceUnavailableThenRecovery(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	o.Faults().Add(crmsim.Rule{Method: http.MethodGet, Path: rtQueryPath, Action: crmsim.ActionStatus, Status: 503, Count: 2})
	var retried []error
	var recs []salesforce.Record
	attempts := 0
	err := retry.Do(context.Background(), rtRetry(func(err error, _ time.Duration) { retried = append(retried, err) }), func(ctx context.Context) error {
		attempts++
		var err error
		recs, err = c.FindRecordsByEmail(ctx, salesforce.Contact, []string{"grace@example.org"})
		return err
	})
	if err != nil {
		t.Fatalf("after retries: %v", err)
	}
	if attempts != 3 || len(recs) != 1 || recs[0].ID != rtContact1 {
		t.Errorf("%d attempts, records %+v", attempts, recs)
	}
	for _, err := range retried {
		if ae := rtAPIError(t, err); ae.HTTPStatus != 503 || ae.Code != "SERVER_UNAVAILABLE" || !salesforce.Transient(err) {
			t.Errorf("retried error %v", err)
		}
	}
	if got := o.Log().Counters().Faulted; got != 2 {
		t.Errorf("sandbox faulted %d requests, want 2", got)
	}

	// Without a rule limit the policy gives up after MaxAttempts and returns the 503.
	o.Faults().Add(crmsim.Rule{Method: http.MethodGet, Path: rtQueryPath, Action: crmsim.ActionStatus, Status: 503})
	attempts = 0
	err = retry.Do(context.Background(), rtRetry(nil), func(ctx context.Context) error {
		attempts++
		_, err := c.GetUser(ctx, rtAda)
		return err
	})
	if ae := rtAPIError(t, err); ae.HTTPStatus != 503 || attempts != 5 {
		t.Errorf("after %d attempts: %v", attempts, err)
	}
}

func TestRoundTripUnableToLockRow(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	o.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: rtContact1, Count: 1})
	updates := []salesforce.OwnerUpdate{
		{ObjectType: salesforce.Contact, ID: rtContact1, OwnerID: rtBob},
		{ObjectType: salesforce.Contact, ID: rtContact2, OwnerID: rtBob},
	}
	results, err := c.UpdateOwners(ctx, updates)
	if err != nil {
		t.Fatal(err)
	}
	lockErr := results[0].Err()
	if ae := rtAPIError(t, lockErr); ae.Code != salesforce.CodeUnableToLockRow || !salesforce.Transient(lockErr) {
		t.Errorf("locked record: %v (transient %v), want a transient UNABLE_TO_LOCK_ROW", lockErr, salesforce.Transient(lockErr))
	}
	if results[1].Err() != nil {
		t.Errorf("second record: %v", results[1].Err())
	}
	// Retrying the locked record alone succeeds once the lock is gone.
	err = retry.Do(ctx, rtRetry(nil), func(ctx context.Context) error {
		res, err := c.UpdateOwners(ctx, updates[:1])
		if err != nil {
			return err
		}
		return res[0].Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := o.Record(rtContact1); r.OwnerID != rtBob {
		t.Errorf("owner after the retry = %s", r.OwnerID)
	}

	// The single-record PATCH reports the lock as a whole-request error, also transient.
	o.Faults().Add(crmsim.Rule{Action: crmsim.ActionRecordError, RecordID: rtLead2, Count: 1})
	err = c.UpdateOwner(ctx, salesforce.Lead, rtLead2, rtAda)
	if ae := rtAPIError(t, err); ae.Code != salesforce.CodeUnableToLockRow || !salesforce.Transient(err) {
		t.Errorf("PATCH of a locked record: %v", err)
	}
}

func TestRoundTripDailyLimitExhausted(t *testing.T) {
	o, base := rtSandbox(t, sfsim.Config{DailyLimit: 1000}, rtSeed())
	c := rtClient(t, base)
	ctx := context.Background()
	if _, err := c.GetUser(ctx, rtAda); err != nil {
		t.Fatal(err)
	}
	o.SetDailyUsage(1000)
	_, err := c.GetUser(ctx, rtBob)
	ae := rtAPIError(t, err)
	if ae.HTTPStatus != http.StatusForbidden || ae.Code != salesforce.CodeRequestLimitExceeded {
		t.Errorf("error = %d %s, want 403 REQUEST_LIMIT_EXCEEDED", ae.HTTPStatus, ae.Code)
	}
	// docs/crm-protocols.md#salesforce-errors lists REQUEST_LIMIT_EXCEEDED as transient (with
	// backoff).
	if !salesforce.Transient(err) {
		t.Errorf("REQUEST_LIMIT_EXCEEDED classified permanent")
	}
	if got, _ := c.LimitInfo(); got != (salesforce.LimitInfo{Used: 1000, Max: 1000}) || got.Remaining() != 0 {
		t.Errorf("LimitInfo = %+v, want the exhausted quota", got)
	}
	if n := o.Log().Counters().RateLimited; n != 1 {
		t.Errorf("sandbox counted %d rate-limited answers", n)
	}
	// Writes are refused too, and nothing is written.
	_, err = c.UpdateOwners(ctx, []salesforce.OwnerUpdate{{ObjectType: salesforce.Contact, ID: rtContact1, OwnerID: rtBob}})
	if ae := rtAPIError(t, err); ae.Code != salesforce.CodeRequestLimitExceeded {
		t.Errorf("UpdateOwners: %v", err)
	}
	if r, _ := o.Record(rtContact1); r.OwnerID != rtAda {
		t.Errorf("owner changed to %s over the limit", r.OwnerID)
	}
}
