package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/crmsim"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// The hostile suite's tokens and secrets.
const (
	hostileOperator     = "hostile-operator-token-0123456789"
	hostileOldOperator  = "hostile-previous-operator-0123456789"
	hostileInitechToken = "initech-tenant-token-0123456789"
	hostileAcmeToken    = "acme-tenant-token-0123456789"
	umbrellaHSSecret    = "umbrella-client-secret-0123456789"
	// initechOrg is a production-shaped tenant's Salesforce org (no sandbox behind it: nothing
	// accepted for it is ever processed).
	initechOrg = "00D5g00000InItCEAV"
	// rssRatio bounds every service's resident set after the hostile cases over before them. The
	// attacks of issue 13 grew a process 10× (212 MB → 2 GB) or without bound (35 MB/s).
	rssRatio = 3.0
)

// hostile is the running system the hostile suite attacks: the four services as processes
// (plus "mapper-prod", a mapper with the production CRM host policy and no trusted proxies) on
// embedded NATS and FerretDB, the CRM sandboxes, the SMTP sink.
type hostile struct {
	t    *testing.T
	st   *soakStack
	ctx  context.Context
	db   *mongodb.Conn
	bus  *natsbus.Conn
	pub  *natsbus.Publisher
	sink *smtpsink.Sink
	// acmeKey and initechKey are the tenants' Outbound Message keys.
	acmeKey, initechKey string
	acmeOrg             string
	// rss is each process's VmRSS (kB) once the stack is up, before the first case.
	rss map[string]int64
}

// TestHostileInputsAgainstRunningServices is issue 13's hostile-input suite: every numbered item
// run against the running services (child processes, so each one's resident set is read from
// /proc/<pid>/status), asserting the answer, that nothing was published (stream message counts)
// or written (MongoDB documents), and that no process's RSS grew past rssRatio of where it
// started. Each subtest is one item of the issue; docs/security.md maps them to their controls.
func TestHostileInputsAgainstRunningServices(t *testing.T) {
	h := startHostile(t)
	for _, item := range []struct {
		name string
		run  func(*hostile)
	}{
		{"item01_connection_fields_are_the_operators", (*hostile).connectionFields},
		{"item02_one_tenant_per_source", (*hostile).oneTenantPerSource},
		{"item03_outbound_messages_need_the_key", (*hostile).sharedKey},
		{"item04_future_source_time_clamped", (*hostile).futureTime},
		{"item05_idle_bodies_and_inflight_cap", (*hostile).idleBodies},
		{"item06_quadratic_soap", (*hostile).quadraticSOAP},
		{"item07_endless_sync_users", (*hostile).endlessSync},
		{"item08_console_lockout_and_csrf", (*hostile).consoleLockout},
		{"item09_platform_bridge", (*hostile).platformBridge},
		{"item10_mail_abuse", (*hostile).mailAbuse},
		{"item11_credentials_in_startup_errors", (*hostile).startupErrors},
		{"item12_junk_state", (*hostile).junkState},
		{"item13_tokens", (*hostile).tokens},
		{"item14_proxies_disabled_providers_host", (*hostile).smallerOnes},
	} {
		if !t.Run(item.name, func(t *testing.T) { h.t = t; item.run(h) }) {
			t.Logf("%s failed; the later items still run", item.name)
		}
	}
	h.t = t
	h.checkRSS()
}

func startHostile(t *testing.T) *hostile {
	t.Helper()
	began := time.Now()
	env := map[string]string{
		"OWNERSYNC_OPERATOR_TOKEN":                "hostile-operator-token-0123456789",
		"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS":       hostileOldOperator,
		"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"OWNERSYNC_TENANT_TOKENS":                 "initech=" + hostileInitechToken + ",acme=" + hostileAcmeToken,
		"OWNERSYNC_REQUIRE_SHARED_KEY":            "true",
		"OWNERSYNC_LOG_LEVEL":                     "info",
		"OWNERSYNC_TENANT_REFRESH_INTERVAL":       "300ms",
		"OWNERSYNC_MAX_INFLIGHT_BODY_BYTES":       strconv.Itoa(3 << 19), // 1.5 MB
		"OWNERSYNC_SYNC_MAX_USERS":                "3000",
		"OWNERSYNC_SYNC_MAX_PAGES":                "60",
		"OWNERSYNC_TRUSTED_PROXIES":               "127.0.0.1/32",
		"OWNERSYNC_MAX_RECIPIENTS":                "25",
		"OWNERSYNC_ALERT_SETTLE":                  "1s",
		"OWNERSYNC_ALERT_DIGEST_INTERVAL":         "2s",
		"OWNERSYNC_DIGEST_TICK":                   "200ms",
		"OWNERSYNC_ALERT_DIGEST_MAX_ATTEMPTS":     "1",
		"OWNERSYNC_SECRET_UMBRELLA_HS":            umbrellaHSSecret,
	}
	st := startSoakWith(t, soakOptions{processes: true, env: env})
	// A second mapper as production runs it: CRM hosts allowlisted, no trusted proxy, the
	// previous operator token past its time.
	st.startInstance("mapper-prod", map[string]string{
		"OWNERSYNC_CRM_ANY_HOST":                  "false",
		"OWNERSYNC_TRUSTED_PROXIES":               "",
		"OWNERSYNC_TENANTS_FILE":                  "",
		"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db, err := mongodb.Connect(ctx, mongodb.Options{URI: st.mongo.URI(), Database: "ownersync"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: st.env["NATS_URL"], Name: "hostile"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	h := &hostile{t: t, st: st, ctx: ctx, db: db, bus: bus, pub: natsbus.NewPublisher(bus.JS, nil, 5*time.Second), sink: st.sink,
		acmeOrg: st.sb.Salesforce.OrgID()}

	// Tenants: initech (Salesforce) and globex (HubSpot) shaped as production has them; hooli and
	// pied with no CRM (platform events only); umbrella with HubSpot turned off.
	var created struct {
		Key struct {
			WebhookURL string `json:"webhook_url"`
		} `json:"salesforce_shared_key"`
	}
	h.operatorPut("initech", `{"id":"initech","name":"Initech","salesforce":{"enabled":true,"org_id":"`+initechOrg+`",
		"instance_url":"https://initech.my.salesforce.com","auth":{"flow":"client_credentials","client_id":"c","client_secret_ref":"env:OWNERSYNC_SECRET_INITECH_SF"}}}`, &created)
	if u, err := url.Parse(created.Key.WebhookURL); err == nil {
		h.initechKey = u.Query().Get("key")
	}
	if h.initechKey == "" {
		t.Fatal("creating initech's Salesforce connection answered no shared key")
	}
	h.operatorPut("globex", `{"id":"globex","name":"Globex","hubspot":{"enabled":true,"portal_id":7700001,"app_id":3100991,
		"client_secret_ref":"env:OWNERSYNC_SECRET_GLOBEX_HS","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_GLOBEX_HS_TOKEN"}}}`, nil)
	h.operatorPut("umbrella", `{"id":"umbrella","name":"Umbrella","hubspot":{"enabled":false,"portal_id":7700002,"app_id":3100992,
		"client_secret_ref":"env:OWNERSYNC_SECRET_UMBRELLA_HS","auth":{"kind":"private_app","token_ref":"env:OWNERSYNC_SECRET_UMBRELLA_HS_TOKEN"}}}`, nil)
	h.operatorPut("hooli", `{"id":"hooli","name":"Hooli"}`, nil)
	h.operatorPut("pied", `{"id":"pied","name":"Pied Piper"}`, nil)
	// The demo tenant's Outbound Message key: rotated once (it was seeded without one), and
	// given to the sandbox org so its own deliveries keep working.
	h.acmeKey = h.rotateKey(tenantID, hostileOperator)
	st.sb.Salesforce.SetOutboundURL(st.env["OWNERSYNC_PUBLIC_URL"]+"/webhooks/salesforce", h.acmeKey)
	// ingress holds the new tenants and keys once a keyless message for initech is refused for
	// its key rather than as an unknown org, and acme's key is accepted (an empty message).
	harness.EventuallyState(t, 20*time.Second, "ingress loaded the hostile suite's tenants", func() (bool, string) {
		s1, b1 := h.webhook("/webhooks/salesforce", "text/xml", outbound(initechOrg), nil)
		s2, b2 := h.webhook("/webhooks/salesforce?key="+h.acmeKey, "text/xml", outbound(h.acmeOrg), nil)
		return s1 == 403 && !strings.Contains(b1, "unknown_org") && s2 == 200, fmt.Sprintf("initech %d %s; acme %d %s", s1, b1, s2, b2)
	})
	h.rss = h.readRSS()
	t.Logf("hostile stack ready in %s; RSS (kB) before the cases: %v", time.Since(began).Round(time.Millisecond), h.rss)
	return h
}

// ---- item 1 -------------------------------------------------------------------------------

// tenantConfigCases are the tenant-configuration attacks of items 1 and 2 against the admin API,
// on initech (Salesforce) and globex (HubSpot); every one is refused and changes nothing.
var tenantConfigCases = []struct {
	name, method, path, token, body string
	status                          int
	mention                         string
}{
	{"tenant token: the operator's token as a client secret", "PATCH", "/v1/tenants/initech", hostileInitechToken,
		`{"salesforce":{"auth":{"client_secret_ref":"env:OWNERSYNC_OPERATOR_TOKEN"}}}`, 403, "salesforce.auth.client_secret_ref"},
	{"tenant token: a collector as instance", "PATCH", "/v1/tenants/initech", hostileInitechToken,
		`{"salesforce":{"instance_url":"https://collector.example"}}`, 403, "salesforce.instance_url"},
	{"tenant token: PUT {}", "PUT", "/v1/tenants/initech", hostileInitechToken, `{}`, 403, "salesforce"},
	{"tenant token: another tenant", "PATCH", "/v1/tenants/globex", hostileInitechToken, `{"name":"x"}`, 403, ""},
	{"operator: PUT {}", "PUT", "/v1/tenants/initech", hostileOperator, `{}`, 409, "connection_removal"},
	{"operator: a reference outside the namespace", "PATCH", "/v1/tenants/initech", hostileOperator,
		`{"salesforce":{"auth":{"client_secret_ref":"file:/proc/self/environ"}}}`, 400, "outside the operator's secret namespace"},
	{"operator: a host that is not Salesforce's", "PATCH", "/v1/tenants/initech", hostileOperator,
		`{"salesforce":{"instance_url":"http://127.0.0.1:9"}}`, 400, "salesforce.instance_url"},
	{"operator: a token URL that is not Salesforce's", "PATCH", "/v1/tenants/initech", hostileOperator,
		`{"salesforce":{"auth":{"token_url":"https://collector.example/token"}}}`, 400, "salesforce.auth.token_url"},
	{"operator: another tenant's org (item 2)", "PATCH", "/v1/tenants/globex", hostileOperator,
		`{"salesforce":{"enabled":true,"org_id":"00D5g00000InItC","instance_url":"https://globex.my.salesforce.com","auth":{"flow":"client_credentials","client_id":"g","client_secret_ref":"env:OWNERSYNC_SECRET_G"}}}`,
		409, "source_claimed"},
	{"no token: an 8 MiB body", "PATCH", "/v1/tenants/initech", "", bigJSON, 401, ""},
	{"operator: an 8 MiB body", "PATCH", "/v1/tenants/initech", hostileOperator, bigJSON, 413, ""},
	{"unknown token", "PUT", "/v1/tenants/initech", "not-a-token-of-anyone", `{}`, 401, ""},
	{"tenant token: the operator's tenant list", "GET", "/v1/tenants", hostileInitechToken, "", 403, ""},
	{"tenant token: a shared key of its choosing", "PATCH", "/v1/tenants/initech", hostileInitechToken,
		`{"salesforce":{"shared_key_ref":"env:OWNERSYNC_SECRET_INITECH_SF"}}`, 403, "salesforce.shared_key_ref"},
}

var bigJSON = `{"name":"` + strings.Repeat("A", 8<<20) + `"}`

// connectionFields runs tenantConfigCases against the production-policy mapper, five times
// each; both tenants and every stream stay as they were. The tenant's own key rotation is the
// accepted control.
func (h *hostile) connectionFields() {
	t := h.t
	prod := h.url("mapper-prod")
	before, streams0 := h.snapshot(), h.streams()
	for _, tc := range tenantConfigCases {
		for range 5 {
			status, _, body := h.call(tc.method, prod+tc.path, tc.token, "application/json", []byte(tc.body))
			if status != tc.status || !strings.Contains(body, tc.mention) {
				t.Fatalf("%s: %d %.300s, want %d mentioning %q", tc.name, status, body, tc.status, tc.mention)
			}
		}
		h.unchanged(tc.name, before, streams0)
	}
	key := h.rotateKeyAt(prod, "initech", hostileInitechToken)
	if key == h.initechKey {
		t.Error("the tenant's key rotation answered the old key")
	}
	h.initechKey = key
	h.crmAnswersSanitised()
}

// crmAnswersSanitised has the demo org answer every API query with a 2,000-character error
// message holding markup and control characters: Sync Users fails naming the CRM's error code,
// and its error (what reports and emails show) carries no more than a short, printable part of the
// answer; no mapping changes.
func (h *hostile) crmAnswersSanitised() {
	t := h.t
	long := "LEAK<script>\x1b[31m" + strings.Repeat("x", 2000)
	id := h.st.sb.Salesforce.Faults().Add(crmsim.Rule{Name: "hostile answer", Method: "GET", Path: "/services/data/",
		Action: crmsim.ActionStatus, Status: 400, Code: "MALFORMED_QUERY", Message: long})
	defer h.st.sb.Salesforce.Faults().Remove(id)
	before, streams0 := h.snapshot(), h.streams()
	r := h.runSync(tenantID, "")
	if r.State != "failed" {
		t.Fatalf("Sync Users against a Salesforce answering errors: %s", r.State)
	}
	text := r.Error
	for _, p := range r.Providers {
		text += "\n" + p.Error
	}
	if !strings.Contains(text, "MALFORMED_QUERY") {
		t.Errorf("the run's error does not name the CRM's error code: %.500s", text)
	}
	// The run's stored problem (crm_api_error) is the one document it may add.
	text += "\n" + lineDiff(h.snapshot()["problems"], before["problems"])
	if strings.Contains(text, strings.Repeat("x", 201)) || strings.Contains(text, "\x1b") {
		t.Errorf("a CRM's error answer reached the run or its stored problem unsanitised:\n%.1500s", text)
	}
	h.unchangedExcept("a Salesforce answering errors", before, streams0, streams.Sync, "problems")
}

// ---- item 2 -------------------------------------------------------------------------------

// oneTenantPerSource writes, around the API, a second tenant with initech's org into MongoDB:
// ingress then holds the org for neither (503 source_conflict, even with initech's key) and
// publishes nothing; once the twin is gone the org is initech's again.
func (h *hostile) oneTenantPerSource() {
	t := h.t
	tenants := h.db.DB.Collection("tenants")
	var doc bson.M
	if err := tenants.FindOne(h.ctx, bson.M{"_id": "initech"}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	doc["_id"], doc["source_salesforce"], doc["source_hubspot"] = "initech-twin", "none:initech-twin", "none:initech-twin"
	if _, err := tenants.InsertOne(h.ctx, doc); err != nil {
		t.Fatal(err)
	}
	streams0 := h.streams()
	// Probed with a wrong key until the twin is seen (before that the org is initech's alone);
	// then even initech's own key is refused.
	harness.EventuallyState(t, 20*time.Second, "ingress refuses the shared org", func() (bool, string) {
		s, b := h.webhook("/webhooks/salesforce?key=wrong", "text/xml", outbound(initechOrg), nil)
		return s == 503, fmt.Sprintf("%d %s", s, b)
	})
	h.refused("initech's own message while another tenant claims its org", 5, []request{{
		path: "/webhooks/salesforce?key=" + url.QueryEscape(h.initechKey), ct: "text/xml", status: 503,
		body: outbound(initechOrg, note{typ: "Contact", id: "0035g00000QwErTAAV", owner: "0055g00000AsDfGAAV"})}})
	h.sameStreams("a shared org", streams0)
	if !strings.Contains(h.metricsText("ingress"), `reason="source_conflict"`) {
		t.Error("ingress's metrics do not count the refusals as source_conflict")
	}
	if _, err := tenants.DeleteOne(h.ctx, bson.M{"_id": "initech-twin"}); err != nil {
		t.Fatal(err)
	}
	harness.EventuallyState(t, 20*time.Second, "the org is initech's again", func() (bool, string) {
		s, b := h.webhook("/webhooks/salesforce?key=wrong", "text/xml", outbound(initechOrg), nil)
		return s == 403, fmt.Sprintf("%d %s", s, b)
	})
	h.sameStreams("a shared org, after", streams0)
}

// ---- item 3 -------------------------------------------------------------------------------

// sharedKey sends the demo org's message without a key, with a wrong key and with initech's
// key: 403 each, nothing published or written.
func (h *hostile) sharedKey() {
	msg := h.acmeMessage("")
	h.refused("keyless, wrong-key and other tenant's key Outbound Messages", 20, []request{
		{path: "/webhooks/salesforce", ct: "text/xml", body: msg, status: 403},
		{path: "/webhooks/salesforce?key=guess", ct: "text/xml", body: msg, status: 403},
		{path: "/webhooks/salesforce?key=" + url.QueryEscape(h.initechKey), ct: "text/xml", body: msg, status: 403},
		{path: "/webhooks/salesforce?key=" + url.QueryEscape(h.acmeKey) + "x", ct: "text/xml", body: msg, status: 403},
	})
}

// ---- item 4 -------------------------------------------------------------------------------

// futureTime sends the demo org's real contact with LastModifiedDate 2099 and its key: stored,
// with the source time clamped to receipt + 5 minutes.
func (h *hostile) futureTime() {
	t := h.t
	s, err := h.bus.JS.Stream(h.ctx, streams.CRM)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := info.State.LastSeq + 1
	start := time.Now()
	if st, b := h.webhook("/webhooks/salesforce?key="+url.QueryEscape(h.acmeKey), "text/xml", h.acmeMessage("2099-01-01T00:00:00Z"), nil); st != 200 {
		t.Fatalf("the keyed message: %d %s", st, b)
	}
	if info, err = s.Info(h.ctx); err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq < first {
		t.Fatal("the keyed message stored nothing")
	}
	for seq := first; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(h.ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ev ownersyncv1.CrmOwnerChanged
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		at := ev.GetMeta().GetOccurredAt().AsTime()
		if at.After(time.Now().Add(6*time.Minute)) || at.Before(start.Add(4*time.Minute)) {
			t.Errorf("occurred_at %s: not clamped to receipt + 5 min (received %s)", at, start)
		}
	}
	h.settle("the clamped message")
}

// ---- item 5 -------------------------------------------------------------------------------

// idleBodies opens 300 sockets that each declare a 1 MB body and send one byte: ingress's RSS
// stays within rssRatio; bytes in flight past the 1.5 MB cap get 503 and Retry-After.
func (h *hostile) idleBodies() {
	t := h.t
	addr := h.st.addrs["ingress"]
	streams0 := h.streams()
	const sockets = 300
	before := h.rssOf("ingress")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range sockets {
		conns = append(conns, openBody(t, addr, 1<<20, []byte("[")))
	}
	harness.EventuallyState(t, 20*time.Second, "every idle body is being read", func() (bool, string) {
		n := h.metric("ingress", "ownersync_ingress_body_inflight")
		return n >= sockets, fmt.Sprintf("%d bytes in flight", n)
	})
	during := h.rssOf("ingress")
	t.Logf("ingress RSS %d kB before, %d kB with %d idle sockets declaring 1 MB each (%.2f×)", before, during, sockets, float64(during)/float64(before))
	if float64(during) > rssRatio*float64(before) {
		t.Errorf("%d idle sockets declaring 1 MB took ingress's RSS from %d kB to %d kB", sockets, before, during)
	}
	held := openBody(t, addr, 1<<20, append([]byte("["), bytes.Repeat([]byte(" "), 1<<20-2)...))
	conns = append(conns, held)
	harness.EventuallyState(t, 20*time.Second, "the held body is read", func() (bool, string) {
		n := h.metric("ingress", "ownersync_ingress_body_inflight")
		return n >= sockets+1<<20-2, fmt.Sprintf("%d bytes in flight", n)
	})
	body := append(append([]byte("["), bytes.Repeat([]byte(" "), 1<<20-2)...), ']')
	status, hdr, b := h.call("POST", "http://"+addr+"/webhooks/hubspot", "", "application/json", body)
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("a body past the in-flight cap: %d, Retry-After %q: %.200s", status, hdr.Get("Retry-After"), b)
	}
	h.sameStreams("idle bodies", streams0)
}

// openBody starts a POST to ingress's HubSpot endpoint that declares length bytes, sends first and
// leaves the connection open.
func openBody(t *testing.T, addr string, length int, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /webhooks/hubspot HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, length)
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	return c
}

// ---- item 6 -------------------------------------------------------------------------------

// quadraticSOAP sends a keyed message whose header holds 20,000 namespace declarations and
// prefixed attributes, 20 times: 400, nothing published, and ingress's CPU time for them within a
// small multiple of the same number of ordinary messages of the same size (measured in this run).
func (h *hostile) quadraticSOAP() {
	t := h.t
	var wide, plain strings.Builder
	for i := range 20_000 {
		fmt.Fprintf(&wide, ` xmlns:p%d="urn:x:%d" p%d:a="v"`, i, i, i)
	}
	for i := 0; plain.Len() < wide.Len(); i++ {
		fmt.Fprintf(&plain, `<h%d a="v" b="%d"/>`, i%10, i)
	}
	msg := h.acmeMessage("")
	hostileBody := bytes.Replace(msg, []byte("<soapenv:Body>"), []byte("<soapenv:Header><h"+wide.String()+"/></soapenv:Header><soapenv:Body>"), 1)
	ordinary := bytes.Replace(msg, []byte("<soapenv:Body>"), []byte("<soapenv:Header>"+plain.String()+"</soapenv:Header><soapenv:Body>"), 1)
	keyed := "/webhooks/salesforce?key=" + url.QueryEscape(h.acmeKey)
	cpu0 := h.cpuOf("ingress")
	h.refused("ordinary large messages with a wrong key", 20, []request{{path: "/webhooks/salesforce?key=wrong", ct: "text/xml", body: ordinary, status: 403}})
	cpu1 := h.cpuOf("ingress")
	h.refused("quadratic SOAP", 20, []request{{path: keyed, ct: "text/xml", body: hostileBody, status: 400}})
	cpu2 := h.cpuOf("ingress")
	ord, hos := cpu1-cpu0, cpu2-cpu1
	t.Logf("ingress CPU: %s for 20 ordinary %d kB messages, %s for 20 hostile %d kB ones", ord, len(ordinary)>>10, hos, len(hostileBody)>>10)
	if hos > 5*ord+500*time.Millisecond {
		t.Errorf("hostile SOAP cost %s of CPU, ordinary messages of its size %s", hos, ord)
	}
}

// ---- item 7 -------------------------------------------------------------------------------

// endlessSync turns the demo tenant's HubSpot into an API that pages forever: Sync Users fails
// with an error naming the limit, the mappings stay as they were, and the mapper's RSS stays
// within rssRatio.
func (h *hostile) endlessSync() {
	t := h.t
	hs := h.st.sb.HubSpot
	hs.SetEndlessOwners(true)
	defer hs.SetEndlessOwners(false)
	before, streams0 := h.snapshot(), h.streams()
	rss0 := h.rssOf("mapper")
	r := h.runSync(tenantID, "")
	if r.State != "failed" {
		t.Fatalf("Sync Users against an endless HubSpot: %s (%s)", r.State, r.Error)
	}
	msg := strings.ToLower(r.Error)
	for _, p := range r.Providers {
		msg += " " + strings.ToLower(p.Error)
	}
	if !strings.Contains(msg, "hubspot") || !(strings.Contains(msg, "limit") || strings.Contains(msg, "more than")) {
		t.Errorf("the failed run's error does not name HubSpot and the limit: %q", msg)
	}
	h.unchangedExcept("Sync Users against an endless HubSpot", before, streams0, streams.Sync)
	rss1 := h.rssOf("mapper")
	t.Logf("mapper RSS %d kB before the endless run, %d kB after (%.2f×); error %q", rss0, rss1, float64(rss1)/float64(rss0), r.Error)
	if float64(rss1) > rssRatio*float64(rss0) {
		t.Errorf("the endless run took mapper's RSS from %d kB to %d kB", rss0, rss1)
	}
}

// runSync starts Sync Users on the main mapper with query q and waits for its end.
func (h *hostile) runSync(tenantID, q string) run {
	t := h.t
	var r run
	status, _, body := h.call("POST", h.url("mapper")+"/v1/tenants/"+tenantID+"/sync-users"+q, hostileOperator, "", nil)
	if status != 202 && status != 200 {
		t.Fatalf("sync-users%s: %d %s", q, status, body)
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	id := r.ID
	harness.EventuallyState(t, 45*time.Second, "Sync Users run "+id+" finished", func() (bool, string) {
		_, _, b := h.call("GET", h.url("mapper")+"/v1/tenants/"+tenantID+"/sync-runs/"+id, hostileOperator, "", nil)
		r = run{}
		_ = json.Unmarshal([]byte(b), &r)
		return r.State == "succeeded" || r.State == "failed", r.State
	})
	return r
}

// ---- item 8 -------------------------------------------------------------------------------

// consoleLockout signs in from an attacker's address (through the trusted proxy) with wrong
// tokens until it is limited; an admin at another address signs in; one failing token tried from
// many addresses is refused; a form whose CSRF token is in the query is refused and starts nothing.
func (h *hostile) consoleLockout() {
	t := h.t
	base := h.url("mapper")
	attacker := newConsoleClient(t, base, "203.0.113.7")
	limited := 0
	for i := range 30 {
		status, hdr := attacker.signIn(fmt.Sprintf("wrong-token-0123456789-%02d", i))
		switch status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited++
			if hdr.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("attempt %d: status %d", i, status)
		}
	}
	if limited == 0 {
		t.Fatal("30 failed sign-ins from one address were never limited")
	}
	if status, _ := attacker.signIn(hostileOperator); status != http.StatusTooManyRequests {
		t.Errorf("the limited address signed in: %d", status)
	}
	admin := newConsoleClient(t, base, "198.51.100.20")
	if status, _ := admin.signIn(hostileOperator); status != http.StatusSeeOther {
		t.Fatalf("an admin at another address could not sign in: %d", status)
	}
	refused := 0
	for i := range 12 {
		if status, _ := newConsoleClient(t, base, "192.0.2."+strconv.Itoa(i+1)).signIn("stale-token-0123456789abcdef"); status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Error("one failing token tried from 12 addresses was never refused")
	}

	runs := func() int64 {
		n, err := h.db.DB.Collection("sync_runs").CountDocuments(h.ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	runs0 := runs()
	if status := admin.post("/admin/t/"+tenantID+"/sync?csrf="+url.QueryEscape(admin.csrf), url.Values{"dry_run": {"1"}}); status != http.StatusForbidden {
		t.Errorf("a form with its CSRF token in the query: %d, want 403", status)
	}
	if status := admin.post("/admin/t/"+tenantID+"/sync", url.Values{"dry_run": {"1"}, "csrf": {"forged"}}); status != http.StatusForbidden {
		t.Errorf("a form with a forged CSRF token: %d, want 403", status)
	}
	if n := runs(); n != runs0 {
		t.Errorf("refused forms started %d Sync Users runs", n-runs0)
	}
}

// newConsoleClient is a console client that does not follow redirects, behind the trusted
// proxy at address client.
func newConsoleClient(t *testing.T, base, client string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: base, client: client,
		hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn posts token on the sign-in form (with the form's CSRF token) and, when signed in, reads
// a page for the session's CSRF token.
func (c *consoleClient) signIn(token string) (int, http.Header) {
	c.t.Helper()
	c.do("GET", "/admin/signin", nil)
	status, _ := c.do("POST", "/admin/signin", url.Values{"csrf": {c.csrf}, "token": {token}})
	hdr := c.header
	if status == http.StatusSeeOther {
		c.do("GET", "/admin/t/"+tenantID+"/", nil)
	}
	return status, hdr
}

func (c *consoleClient) post(path string, form url.Values) int {
	status, _ := c.do("POST", path, form)
	return status
}

// ---- item 9 -------------------------------------------------------------------------------

// platformBridge sends one event id for two tenants (both stored: the message ids are
// tenant-scoped) and events for a tenant that does not exist (refused per event, nothing
// published).
func (h *hostile) platformBridge() {
	t := h.t
	event := func(tenantID, eventID string) string {
		return `{"meta":{"eventId":"` + eventID + `","tenantId":"` + tenantID + `"},"user":{"id":"u-` + tenantID + `","email":"ops@` + tenantID +
			`.example","status":"PLATFORM_USER_STATUS_ACTIVE","kind":"PLATFORM_USER_KIND_USER"}}`
	}
	auth := []string{"Authorization", "Bearer " + h.st.env["OWNERSYNC_PLATFORM_TOKEN"]}
	h.refused("platform events for a tenant that does not exist", 20, []request{
		{path: "/v1/platform/events", ct: "application/json", body: []byte(`{"userChanges":[` + event("nosuch", "e1") + `]}`), header: auth, status: 422, mention: "nosuch"},
		{path: "/v1/platform/events", ct: "application/json", body: []byte(`{"userChanges":[` + event("hooli", "e1") + `]}`), status: 401},
	})
	s, err := h.bus.JS.Stream(h.ctx, streams.Platform)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(h.ctx)
	before := info.State.Msgs
	status, b := h.webhook("/v1/platform/events", "application/json", []byte(`{"userChanges":[`+event("hooli", "same-id")+`,`+event("pied", "same-id")+`]}`), auth)
	if status/100 != 2 {
		t.Fatalf("events of two tenants with one id: %d %s", status, b)
	}
	if info, _ = s.Info(h.ctx); info.State.Msgs != before+2 {
		t.Errorf("two tenants' events with one id stored %d messages, want 2", info.State.Msgs-before)
	}
	// Both reach the mapper (the later cases' snapshots must not see them arrive).
	harness.EventuallyState(t, 20*time.Second, "both tenants' platform users stored", func() (bool, string) {
		n, _ := h.db.DB.Collection("platform_users").CountDocuments(h.ctx, bson.M{"tenant": bson.M{"$in": bson.A{"hooli", "pied"}}})
		if n == 0 {
			n, _ = h.db.DB.Collection("platform_users").CountDocuments(h.ctx, bson.M{"tenant_id": bson.M{"$in": bson.A{"hooli", "pied"}}})
		}
		return n == 2, fmt.Sprintf("%d stored", n)
	})
	h.settle("the two tenants' events")
}

// ---- item 10 ------------------------------------------------------------------------------

// mailAbuse gives the demo tenant 60 report recipients: a dry run emails nothing unless asked, an
// asked one goes to the first 25 (OWNERSYNC_MAX_RECIPIENTS); an SMTP 550 dead-letters the report
// at once and repeated 452s dead-letter an alert digest after its attempts, never retried forever.
func (h *hostile) mailAbuse() {
	t := h.t
	var rcpts []string
	for i := range 60 {
		rcpts = append(rcpts, fmt.Sprintf(`"r%02d@acme.example"`, i))
	}
	if status, _, b := h.call("PATCH", h.url("mapper")+"/v1/tenants/"+tenantID, hostileOperator, "application/json",
		[]byte(`{"report_recipients":[`+strings.Join(rcpts, ",")+`],"reports_enabled":true}`)); status != 200 {
		t.Fatalf("60 recipients: %d %s", status, b)
	}
	defer h.call("PATCH", h.url("mapper")+"/v1/tenants/"+tenantID, hostileOperator, "application/json", []byte(`{"report_recipients":["sales-ops@acme.example"]}`))
	notification := func(runID string) string {
		var n struct{ Status, Reason string }
		if err := h.db.DB.Collection("notifications").FindOne(h.ctx, bson.M{"_id": "report:" + runID}).Decode(&n); err != nil {
			return ""
		}
		return n.Status + ": " + n.Reason
	}
	waitNotified := func(runID string) string {
		var got string
		harness.EventuallyState(t, 30*time.Second, "the notifier handled run "+runID, func() (bool, string) {
			got = notification(runID)
			return got != "", "no notification record"
		})
		return got
	}
	mailsFor := func(runID string) []smtpsink.Message {
		var out []smtpsink.Message
		for _, m := range h.sink.Messages() {
			if bytes.Contains(m.Data, []byte(runID)) {
				out = append(out, m)
			}
		}
		return out
	}

	unasked := h.runSync(tenantID, "?dry_run=true")
	if got := waitNotified(unasked.ID); !strings.HasPrefix(got, "skipped") {
		t.Errorf("a dry run that did not ask: %q, want skipped", got)
	}
	asked := h.runSync(tenantID, "?dry_run=true&email_report=true")
	waitNotified(asked.ID)
	harness.Eventually(t, 20*time.Second, "the asked dry run's email", func() bool { return len(mailsFor(asked.ID)) == 1 })
	if m := mailsFor(asked.ID)[0]; len(m.To) != 25 {
		t.Errorf("the report went to %d recipients, want the first 25", len(m.To))
	}
	if n := len(mailsFor(unasked.ID)); n != 0 {
		t.Errorf("the unasked dry run was emailed %d times", n)
	}

	dlq := func() uint64 { return h.streams()[streams.DLQ] }
	dlq0 := dlq()
	h.sink.SetFault(smtpsink.Fault{Code: 550, Message: "5.1.1 mailbox unavailable", Stage: smtpsink.StageMail})
	permanent := h.runSync(tenantID, "?dry_run=true&email_report=true")
	harness.EventuallyState(t, 30*time.Second, "the report refused with 550 dead-lettered", func() (bool, string) {
		return dlq() == dlq0+1, fmt.Sprintf("DLQ %d → %d; notification %q", dlq0, dlq(), notification(permanent.ID))
	})
	if n := h.sink.FaultsAnswered(); n > 2 {
		t.Errorf("a 550 was met %d times: the report was retried", n)
	}
	h.sink.ClearFault()

	h.sink.SetFault(smtpsink.Fault{Code: 452, Message: "4.5.3 too many recipients", Stage: smtpsink.StageMail})
	faults0 := h.sink.FaultsAnswered()
	a := &ownersyncv1.Alert{Meta: &ownersyncv1.EventMeta{EventId: "hostile-alert-1", TenantId: tenantID, Source: "writer"},
		Severity: ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING, Kind: ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED, Summary: "write refused"}
	data, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(streams.Alert(tenantID))
	msg.Data = data
	msg.Header.Set(streams.HeaderContentType, streams.ContentTypeProto)
	msg.Header.Set(streams.HeaderEventType, string(a.ProtoReflect().Descriptor().FullName()))
	if _, err := h.pub.PublishMsg(h.ctx, msg, a.Meta.EventId); err != nil {
		t.Fatal(err)
	}
	// One digest attempt (OWNERSYNC_ALERT_DIGEST_MAX_ATTEMPTS=1) is the mailer's five tries with
	// backoff (about 15 s), then the DLQ.
	harness.EventuallyState(t, 60*time.Second, "the alert digest refused with 452 dead-lettered", func() (bool, string) {
		return dlq() == dlq0+2, fmt.Sprintf("DLQ %d → %d; 452 answered %d times", dlq0, dlq(), h.sink.FaultsAnswered()-faults0)
	})
	tries := h.sink.FaultsAnswered() - faults0
	h.sink.ClearFault()
	if tries > 5 {
		t.Errorf("a digest refused with 452 was tried %d times, want at most the mailer's 5 tries of its one attempt", tries)
	}
	if !h.logHas("notifier", "dead-lettered") {
		t.Error("the notifier logged no dead-letter alert")
	}
}

// ---- item 11 ------------------------------------------------------------------------------

// startupErrors starts the notifier and ingress binaries with credentials in every URL and an
// unparseable SMTP_URL: each exits with an error that names the variable and holds no password.
func (h *hostile) startupErrors() {
	t := h.t
	env := []string{
		"SMTP_URL=smtp://mailer:hunter2%zz@smtp.example.com:587",
		"NATS_URL=nats://ops:natspw@127.0.0.1:1",
		"MONGODB_URI=mongodb://root:mongopw@127.0.0.1:1/",
		"OWNERSYNC_ADMIN_URL=ftp://admin:adminpw@console.example.com",
		"OWNERSYNC_PUBLIC_URL=ftp://pub:publicpw@hooks.example.com",
		"OWNERSYNC_PLATFORM_TOKEN=platform-token-0123456789",
		"OWNERSYNC_HTTP_ADDR=127.0.0.1:0", "OWNERSYNC_INTERNAL_ADDR=127.0.0.1:0",
		"PATH=" + os.Getenv("PATH"),
	}
	for _, svc := range []string{"notifier", "ingress"} {
		ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
		cmd := exec.CommandContext(ctx, filepath.Join(h.st.bins, svc))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("%s started with an unparseable configuration", svc)
		}
		for _, secret := range []string{"hunter2", "natspw", "mongopw", "adminpw", "publicpw"} {
			if bytes.Contains(out, []byte(secret)) {
				t.Errorf("%s printed %q at start-up:\n%s", svc, secret, out)
			}
		}
		if !bytes.Contains(out, []byte("_URL")) {
			t.Errorf("%s's start-up error names no variable:\n%s", svc, out)
		}
	}
}

// ---- item 12 ------------------------------------------------------------------------------

// junkState floods ingress with 400 Outbound Messages from made-up orgs, 100 keyed ones of
// made-up object types and 20 unsigned HubSpot bodies: refused or ignored, nothing published or written, the metrics hold none
// of the attacker's type names, the log grows by a bounded number of lines, the RSS stays within
// rssRatio.
func (h *hostile) junkState() {
	t := h.t
	lines0 := h.logLines("ingress")
	var reqs []request
	for i := range 400 {
		reqs = append(reqs, request{path: "/webhooks/salesforce?key=x", ct: "text/xml", body: outbound(fmt.Sprintf("00D%012dAAA", i)), status: 403})
	}
	for i := range 100 {
		reqs = append(reqs, request{path: "/webhooks/salesforce?key=" + url.QueryEscape(h.acmeKey), ct: "text/xml",
			body: outbound(h.acmeOrg, note{typ: fmt.Sprintf("Junk%03dX", i), id: "a0B5g00000AbCdEAAV", owner: "0055g00000AsDfGAAV"}), status: 200})
	}
	for range 20 {
		reqs = append(reqs, request{path: "/webhooks/hubspot", ct: "application/json", body: []byte(`[{"portalId":1}]`), status: 400})
	}
	h.refused("junk from made-up orgs and object types, unsigned HubSpot junk", 1, reqs)
	metrics := h.metricsText("ingress")
	if strings.Contains(metrics, "Junk") {
		t.Error("an attacker's xsi:type reached a metric label")
	}
	lines := h.logLines("ingress") - lines0
	t.Logf("ingress logged %d lines for 520 junk requests", lines)
	if lines > 60 {
		t.Errorf("520 junk requests wrote %d log lines", lines)
	}
}

// ---- item 13 ------------------------------------------------------------------------------

// tokens mints, lists, revokes and expires tenant tokens on one mapper and checks them on the
// other; the previous operator token is accepted until its time (main mapper) and refused after
// it (mapper-prod).
func (h *hostile) tokens() {
	t := h.t
	main, prod := h.url("mapper"), h.url("mapper-prod")
	type minted struct {
		ID, Token string
	}
	mint := func(body string) minted {
		status, _, b := h.call("POST", main+"/v1/tenants/hooli/tokens", hostileOperator, "application/json", []byte(body))
		if status != http.StatusCreated && status != http.StatusOK {
			t.Fatalf("mint %s: %d %s", body, status, b)
		}
		var m minted
		if err := json.Unmarshal([]byte(b), &m); err != nil || m.Token == "" || m.ID == "" {
			t.Fatalf("mint answered %s", b)
		}
		return m
	}
	keep, revoke, expire := mint(`{"name":"keep"}`), mint(`{"name":"revoke"}`), mint(`{"name":"expire","expires_in":"3s"}`)
	for _, m := range []minted{keep, revoke} {
		for _, base := range []string{main, prod} {
			if status, _, b := h.call("GET", base+"/v1/tenants/hooli", m.Token, "", nil); status != 200 {
				t.Fatalf("a minted token on %s: %d %s", base, status, b)
			}
		}
	}
	status, _, list := h.call("GET", prod+"/v1/tenants/hooli/tokens", hostileOperator, "", nil)
	if status != 200 || !strings.Contains(list, keep.ID) || !strings.Contains(list, revoke.ID) {
		t.Errorf("token list: %d %s", status, list)
	}
	for _, m := range []minted{keep, revoke, expire} {
		if strings.Contains(list, m.Token) {
			t.Error("the token list shows a token's secret")
		}
	}
	if status, _, _ := h.call("GET", main+"/v1/tenants/hooli/tokens", keep.Token, "", nil); status != http.StatusForbidden {
		t.Errorf("a tenant token listed its tenant's tokens: %d", status)
	}
	if status, _, b := h.call("DELETE", prod+"/v1/tenants/hooli/tokens/"+revoke.ID, hostileOperator, "", nil); status/100 != 2 {
		t.Fatalf("revoke: %d %s", status, b)
	}
	for _, base := range []string{main, prod} {
		if status, _, _ := h.call("GET", base+"/v1/tenants/hooli", revoke.Token, "", nil); status != http.StatusUnauthorized {
			t.Errorf("a revoked token on %s: %d, want 401", base, status)
		}
	}
	harness.Eventually(t, 20*time.Second, "the 3-second token expired", func() bool {
		status, _, _ := h.call("GET", main+"/v1/tenants/hooli", expire.Token, "", nil)
		return status == http.StatusUnauthorized
	})
	if status, _, _ := h.call("GET", main+"/v1/tenants/hooli", keep.Token, "", nil); status != 200 {
		t.Errorf("the kept token after the others were revoked and expired: %d", status)
	}
	if status, _, _ := h.call("GET", main+"/v1/tenants", hostileOldOperator, "", nil); status != 200 {
		t.Errorf("the previous operator token before its time: %d, want 200", status)
	}
	if status, _, _ := h.call("GET", prod+"/v1/tenants", hostileOldOperator, "", nil); status != http.StatusUnauthorized {
		t.Errorf("the previous operator token after its time: %d, want 401", status)
	}
}

// ---- item 14 ------------------------------------------------------------------------------

// smallerOnes: X-Forwarded-For is a client address only from a trusted proxy (audit lines); a
// signed HubSpot webhook for a tenant whose HubSpot is off is acknowledged and publishes nothing;
// the dev stack refuses a non-loopback host (docker-compose.yml's loopback ports are
// deploytest's TestComposeBindsLoopback).
func (h *hostile) smallerOnes() {
	t := h.t
	for _, c := range []struct {
		instance, want, notWant string
	}{{"mapper-prod", `"client":"127.0.0.1"`, "203.0.113.66"}, {"mapper", `"client":"203.0.113.66"`, ""}} {
		lines0 := h.logLines(c.instance)
		req, _ := http.NewRequest("GET", h.url(c.instance)+"/v1/tenants/hooli?audit-probe=1", nil)
		req.Header.Set("Authorization", "Bearer "+hostileOperator)
		req.Header.Set("X-Forwarded-For", "203.0.113.66")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var audit string
		harness.EventuallyState(t, 10*time.Second, c.instance+" wrote the audit line", func() (bool, string) {
			for _, l := range h.logTail(c.instance, lines0) {
				if strings.Contains(l, "audit-probe") || (strings.Contains(l, "admin request") && strings.Contains(l, "hooli")) {
					audit = l
					return true, ""
				}
			}
			return false, "no audit line yet"
		})
		if !strings.Contains(audit, c.want) || (c.notWant != "" && strings.Contains(audit, c.notWant)) {
			t.Errorf("%s audit line %q: want %q without %q", c.instance, audit, c.want, c.notWant)
		}
	}

	body := []byte(`[{"eventId":101,"subscriptionId":1,"portalId":7700002,"appId":3100992,"occurredAt":` + strconv.FormatInt(time.Now().UnixMilli(), 10) +
		`,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":51,"propertyName":"hubspot_owner_id","propertyValue":"42","changeSource":"CRM"}]`)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	uri := h.st.env["OWNERSYNC_PUBLIC_URL"] + "/webhooks/hubspot"
	sig := hssim.SignV3(umbrellaHSSecret, "POST", uri, body, ts)
	h.refused("a signed webhook for a tenant whose HubSpot is off", 5, []request{{path: "/webhooks/hubspot", ct: "application/json", body: body,
		header: []string{"X-HubSpot-Signature-v3", sig, "X-HubSpot-Request-Timestamp", ts}, status: 200}})
	if !strings.Contains(h.metricsText("ingress"), "provider_disabled") {
		t.Error("the disabled provider's webhooks were not counted")
	}

	_, err := devstack.Start(h.ctx, devstack.Options{DataDir: t.TempDir(), Host: "0.0.0.0", OperatorToken: hostileOperator, PlatformToken: "p-0123456789abcdef"}, nil)
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0") {
		t.Errorf("devstack --host 0.0.0.0: %v, want a refusal", err)
	}
}

// ---- shared helpers -----------------------------------------------------------------------

// request is one hostile request to ingress and its expected answer.
type request struct {
	path, ct string
	body     []byte
	header   []string
	status   int
	mention  string
}

// refused sends each request n times, checks every answer, and checks that no stream got a
// message and no document changed.
func (h *hostile) refused(what string, n int, reqs []request) {
	t := h.t
	t.Helper()
	before, streams0 := h.snapshot(), h.streams()
	for _, r := range reqs {
		for range n {
			status, body := h.webhook(r.path, r.ct, r.body, r.header)
			if status != r.status || !strings.Contains(body, r.mention) {
				t.Fatalf("%s: %s: %d %.300s, want %d mentioning %q", what, r.path, status, body, r.status, r.mention)
			}
		}
	}
	h.unchanged(what, before, streams0)
}

// webhook posts to ingress.
func (h *hostile) webhook(path, ct string, body []byte, header []string) (int, string) {
	status, _, b := h.call("POST", "http://"+h.st.addrs["ingress"]+path, "", ct, body, header...)
	return status, b
}

// call sends one request (token as a bearer token when set, header as name/value pairs).
func (h *hostile) call(method, u, token, ct string, body []byte, header ...string) (int, http.Header, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (h *hostile) url(instance string) string { return "http://" + h.st.addrs[instance] }

func (h *hostile) operatorPut(id, body string, out any) {
	h.t.Helper()
	status, _, b := h.call("PUT", h.url("mapper")+"/v1/tenants/"+id, hostileOperator, "application/json", []byte(body))
	if status/100 != 2 {
		h.t.Fatalf("PUT tenant %s: %d %s", id, status, b)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *hostile) rotateKey(tenantID, token string) string {
	return h.rotateKeyAt(h.url("mapper"), tenantID, token)
}

// rotateKeyAt rotates a tenant's Outbound Message key and returns the new key, read from the
// webhook URL the answer shows once.
func (h *hostile) rotateKeyAt(base, tenantID, token string) string {
	h.t.Helper()
	status, _, b := h.call("POST", base+"/v1/tenants/"+tenantID+"/salesforce/shared-key", token, "", nil)
	var ans struct {
		WebhookURL string `json:"webhook_url"`
	}
	_ = json.Unmarshal([]byte(b), &ans)
	u, err := url.Parse(ans.WebhookURL)
	if status != http.StatusCreated || err != nil || u.Query().Get("key") == "" {
		h.t.Fatalf("rotate %s's key: %d %s", tenantID, status, b)
	}
	return u.Query().Get("key")
}

// note is one notification of an Outbound Message.
type note struct{ typ, id, email, owner, extra string }

// outbound renders a Salesforce Outbound Message for org; without notes it holds one notification
// of an object ownersync does not sync (acknowledged and ignored).
func outbound(org string, notes ...note) []byte {
	if len(notes) == 0 {
		notes = []note{{typ: "Probe__c", id: "a0B5g00000AbCdEAAV", owner: "0055g00000AsDfGAAV"}}
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>` + org + `</OrganizationId>
<ActionId>04k5g000000AbCdAAK</ActionId><SessionId xsi:nil="true"/>
<EnterpriseUrl>https://x.my.salesforce.com/services/Soap/c/62.0/` + org + `</EnterpriseUrl>
<PartnerUrl>https://x.my.salesforce.com/services/Soap/u/62.0/` + org + `</PartnerUrl>`)
	for i, n := range notes {
		fmt.Fprintf(&b, `<Notification><Id>04l5g00000AbC%02dAAV</Id><sObject xsi:type="sf:%s" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>%s</sf:Id>`, i, n.typ, n.id)
		if n.email != "" {
			fmt.Fprintf(&b, `<sf:Email>%s</sf:Email>`, n.email)
		}
		b.WriteString(n.extra)
		fmt.Fprintf(&b, `<sf:OwnerId>%s</sf:OwnerId></sObject></Notification>`, n.owner)
	}
	b.WriteString(`</notifications></soapenv:Body></soapenv:Envelope>`)
	return []byte(b.String())
}

// acmeMessage is an Outbound Message for one of the demo org's contacts, owned as it is, with
// LastModifiedDate modified when not empty.
func (h *hostile) acmeMessage(modified string) []byte {
	var c *note
	for _, r := range h.st.sb.Salesforce.Records("Contact") {
		if r.Email != "" && r.OwnerID != "" {
			c = &note{typ: "Contact", id: r.ID, email: r.Email, owner: r.OwnerID}
			break
		}
	}
	if c == nil {
		h.t.Fatal("the demo org has no owned contact")
	}
	if modified != "" {
		c.extra = "<sf:LastModifiedDate>" + modified + "</sf:LastModifiedDate>"
	}
	return outbound(h.acmeOrg, *c)
}

// snapshotCollections hold what an attacker must not change; sessions, locks, runs, notifications
// and the like change with legitimate use.
var snapshotCollections = []string{"tenants", "mappings", "crm_users", "platform_users", "problems", "provisions",
	"failures", "admin_tokens", "ownership_history", "stored_secrets", "connect_flows"}

// snapshot is every document of snapshotCollections, as canonical extended JSON.
func (h *hostile) snapshot() map[string]string {
	out := map[string]string{}
	for _, c := range snapshotCollections {
		cur, err := h.db.DB.Collection(c).Find(h.ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			h.t.Fatal(err)
		}
		var b strings.Builder
		for cur.Next(h.ctx) {
			j, err := bson.MarshalExtJSON(cur.Current, true, false)
			if err != nil {
				h.t.Fatal(err)
			}
			b.Write(j)
			b.WriteByte('\n')
		}
		if err := cur.Err(); err != nil {
			h.t.Fatal(err)
		}
		cur.Close(h.ctx)
		out[c] = b.String()
	}
	return out
}

// streams is the message count of every stream.
func (h *hostile) streams() map[string]uint64 {
	out := map[string]uint64{}
	for _, name := range []string{streams.CRM, streams.Platform, streams.Sync, streams.DLQ} {
		s, err := h.bus.JS.Stream(h.ctx, name)
		if err != nil {
			h.t.Fatal(err)
		}
		info, err := s.Info(h.ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		out[name] = info.State.Msgs
	}
	return out
}

// lineDiff is the lines of a that b does not have.
func lineDiff(a, b string) string {
	in := map[string]bool{}
	for _, l := range strings.Split(b, "\n") {
		in[l] = true
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !in[l] {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// settle waits until every consumer of the CRM, PLATFORM and SYNC streams has handled every
// message, so that an accepted case's writes land before the next case's snapshot.
func (h *hostile) settle(what string) {
	h.t.Helper()
	harness.EventuallyState(h.t, 30*time.Second, what+" handled by every consumer", func() (bool, string) {
		for _, name := range []string{streams.CRM, streams.Platform, streams.Sync} {
			s, err := h.bus.JS.Stream(h.ctx, name)
			if err != nil {
				return false, err.Error()
			}
			l := s.ListConsumers(h.ctx)
			for ci := range l.Info() {
				if ci.NumPending > 0 || ci.NumAckPending > 0 {
					return false, fmt.Sprintf("%s/%s: %d pending, %d unacknowledged", name, ci.Name, ci.NumPending, ci.NumAckPending)
				}
			}
			if err := l.Err(); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
}

// unchanged checks that no document of the snapshot and no stream changed.
func (h *hostile) unchanged(what string, before map[string]string, streams0 map[string]uint64) {
	h.t.Helper()
	h.unchangedExcept(what, before, streams0)
}

// unchangedExcept is unchanged but for the streams that may grow (a failed run's report) and the
// collections that may change, named in mayChange.
func (h *hostile) unchangedExcept(what string, before map[string]string, streams0 map[string]uint64, mayChange ...string) {
	h.t.Helper()
	after := h.snapshot()
	for _, c := range snapshotCollections {
		if after[c] != before[c] && !slices.Contains(mayChange, c) {
			h.t.Errorf("%s changed collection %s:\ngone: %.2000s\nnew:  %.2000s", what, c, lineDiff(before[c], after[c]), lineDiff(after[c], before[c]))
		}
	}
	h.sameStreams(what, streams0, mayChange...)
}

func (h *hostile) sameStreams(what string, streams0 map[string]uint64, mayGrow ...string) {
	h.t.Helper()
	for name, n := range h.streams() {
		if n != streams0[name] && !slices.Contains(mayGrow, name) {
			h.t.Errorf("%s published %d messages on stream %s", what, int64(n)-int64(streams0[name]), name)
		}
	}
}

// instances are the stack's service processes.
func (h *hostile) instances() []string {
	return []string{"ingress", "mapper", "mapper-prod", "writer", "notifier"}
}

func (h *hostile) pid(instance string) int {
	cmd := h.st.procs[instance]
	if cmd == nil || cmd.Process == nil {
		h.t.Fatalf("no process %s", instance)
	}
	return cmd.Process.Pid
}

// rssOf is a process's VmRSS in kB.
func (h *hostile) rssOf(instance string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.pid(instance)))
	if err != nil {
		h.t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				h.t.Fatal(err)
			}
			return n
		}
	}
	h.t.Fatalf("no VmRSS for %s", instance)
	return 0
}

func (h *hostile) readRSS() map[string]int64 {
	out := map[string]int64{}
	for _, in := range h.instances() {
		out[in] = h.rssOf(in)
	}
	return out
}

// checkRSS compares every process's resident set with where it was before the first case.
func (h *hostile) checkRSS() {
	for in, after := range h.readRSS() {
		before := h.rss[in]
		ratio := float64(after) / float64(before)
		h.t.Logf("%s RSS %d kB before the hostile cases, %d kB after (%.2f×)", in, before, after, ratio)
		if ratio > rssRatio {
			h.t.Errorf("%s's RSS grew %.2f× under the hostile cases (%d kB → %d kB), want at most %.1f×", in, ratio, before, after, rssRatio)
		}
	}
}

// cpuOf is a process's user + system CPU time (/proc/<pid>/stat).
func (h *hostile) cpuOf(instance string) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.pid(instance)))
	if err != nil {
		h.t.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start at ") ".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (h *hostile) metricsText(instance string) string {
	status, _, b := h.call("GET", h.url(instance)+"/metrics", "", "", nil)
	if status != 200 {
		h.t.Fatalf("%s /metrics: %d", instance, status)
	}
	return b
}

// metric is the value of the first sample of a metric (-1 when absent).
func (h *hostile) metric(instance, name string) int64 {
	for _, line := range strings.Split(h.metricsText(instance), "\n") {
		if strings.HasPrefix(line, name) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int64(v)
		}
	}
	return -1
}

func (h *hostile) logFile(instance string) []string {
	b, err := os.ReadFile(filepath.Join(h.st.dir, instance+".log"))
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

func (h *hostile) logLines(instance string) int { return len(h.logFile(instance)) }

// logTail is the log lines of an instance after the first from.
func (h *hostile) logTail(instance string, from int) []string {
	lines := h.logFile(instance)
	if from > len(lines) {
		return nil
	}
	return lines[max(from-1, 0):]
}

func (h *hostile) logHas(instance, s string) bool {
	for _, l := range h.logFile(instance) {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
