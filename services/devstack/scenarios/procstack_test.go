package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/ingress/ingress"
	"github.com/ownersync/ownersync/services/mapper/mapper"
	"github.com/ownersync/ownersync/services/notifier/notifier"
	"github.com/ownersync/ownersync/services/writer/writer"
	"github.com/ownersync/ownersync/workbench/crmsim/sandbox"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/embedmongo"
	"github.com/ownersync/ownersync/workbench/embednats"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
	"github.com/ownersync/ownersync/workbench/readiness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// soakStack is the dev stack rebuilt for fault runs the in-process devstack cannot do: services as
// separate processes (so they can be SIGKILLed), or on a three-node NATS cluster with R3 streams.
type soakStack struct {
	t     *testing.T
	dir   string
	nats  []*embednats.Server
	mongo *embedmongo.Server
	sb    *sandbox.Sandboxes
	p     *platformsim.Platform
	env   map[string]string
	addrs map[string]string
	// listeners are the services' HTTP listeners, bound by the test and held for its whole run; a
	// service process inherits its listener (OWNERSYNC_HTTP_LISTEN_FD), so a restart serves the same
	// port and no port is ever picked and freed.
	listeners map[string]net.Listener
	procs     map[string]*exec.Cmd
	// exited is closed when a process has exited.
	exited map[string]chan struct{}
	bins   string
	// natsProcs is the three-node cluster of nats-server processes (soakOptions.natsProcesses).
	natsProcs *natsProcCluster
	// instances are the process names of each service: the service's name, then name-2 … (replicas).
	instances map[string][]string
	sink      *smtpsink.Sink
	// instanceEnv is set over env for one instance (startInstance).
	instanceEnv map[string]map[string]string
}

var serviceNames = []string{"mapper", "ingress", "writer", "notifier"}

// soakOptions shape a soak stack.
type soakOptions struct {
	// cluster runs three embedded NATS nodes with R3 streams; natsProcesses runs three nats-server
	// processes instead (built from the module cache), which the test can SIGKILL.
	cluster, natsProcesses bool
	// processes runs the services as processes; replicas (default 1) of each.
	processes bool
	replicas  int
	// env is set over the stack's environment for every service (the hostile suite's limits).
	env map[string]string
}

// startSoak starts NATS (one node, or three clustered), FerretDB, the demo sandboxes and the demo
// tenant, then the services (as processes when processes is true), the platform and a first Sync Users.
func startSoak(t *testing.T, cluster, processes bool) *soakStack {
	return startSoakWith(t, soakOptions{cluster: cluster, processes: processes})
}

// serviceOf is the service an instance name runs ("writer-2" → "writer").
func serviceOf(instance string) string {
	if i := strings.LastIndex(instance, "-"); i > 0 {
		return instance[:i]
	}
	return instance
}

// startSoakWith is startSoak with every option.
func startSoakWith(t *testing.T, o soakOptions) *soakStack {
	t.Helper()
	ctx := context.Background()
	cluster, processes := o.cluster || o.natsProcesses, o.processes
	o.replicas = max(o.replicas, 1)
	st := &soakStack{t: t, dir: t.TempDir(), addrs: map[string]string{}, listeners: map[string]net.Listener{}, procs: map[string]*exec.Cmd{},
		exited: map[string]chan struct{}{}, instances: map[string][]string{}}
	for _, n := range serviceNames {
		st.instances[n] = []string{n}
		for r := 2; r <= o.replicas; r++ {
			st.instances[n] = append(st.instances[n], fmt.Sprintf("%s-%d", n, r))
		}
	}
	if o.natsProcesses {
		st.natsProcs = startNATSProcs(t, 3)
	} else if cluster {
		st.nats = harness.NATSCluster(t, 3)
		// Streams can only be declared once the JetStream meta group has a leader.
		harness.EventuallyState(t, 30*time.Second, "JetStream meta leader elected", func() (bool, string) {
			for _, s := range st.nats {
				if s.JetStreamIsLeader() {
					return true, ""
				}
			}
			return false, "no meta leader"
		})
	} else {
		st.nats = []*embednats.Server{harness.NATSServer(t)}
	}
	var urls []string
	for _, s := range st.nats {
		urls = append(urls, s.URL())
	}
	if st.natsProcs != nil {
		urls = st.natsProcs.urls()
	}
	var err error
	if st.mongo, err = embedmongo.Start(ctx, embedmongo.Options{Dir: filepath.Join(st.dir, "mongo")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.mongo.Stop)
	sink, err := smtpsink.Start(smtpsink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	st.sink = sink
	for _, n := range serviceNames {
		for _, in := range st.instances[n] {
			st.listeners[in] = harness.Listen(t)
			st.addrs[in] = st.listeners[in].Addr().String()
		}
	}
	ingressURL := "http://" + st.addrs["ingress"]
	if o.replicas > 1 {
		// The CRMs reach the ingress replicas through a load balancer: a door that hands each
		// connection to the next replica that accepts it.
		lb := harness.Listen(t)
		var next atomic.Uint64
		go serveDoor(lb, func() []string {
			var out []string
			k := int(next.Add(1))
			for i := range st.instances["ingress"] {
				out = append(out, st.addrs[st.instances["ingress"][(k+i)%len(st.instances["ingress"])]])
			}
			return out
		})
		ingressURL = "http://" + lb.Addr().String()
	}
	seed := sandbox.Demo()
	seed.Salesforce.Outbound.BaseDelay, seed.Salesforce.Outbound.MaxDelay = 500*time.Millisecond, 5*time.Second
	seed.HubSpot.Webhooks.BaseDelay = 500 * time.Millisecond
	if st.sb, err = sandbox.Start(seed, sandbox.Options{SalesforceAddr: "127.0.0.1:0", HubSpotAddr: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.sb.Salesforce.Close(); st.sb.HubSpot.Close() })
	st.sb.Salesforce.SetOutboundURL(ingressURL+"/webhooks/salesforce", "")
	st.sb.HubSpot.SetWebhookTarget(ingressURL + "/webhooks/hubspot")
	hsFallback := ""
	for _, ow := range st.sb.HubSpot.Owners() {
		if !ow.Archived && ow.Type != "QUEUE" {
			hsFallback = ow.ID
			break
		}
	}
	tn := tenant.Tenant{ID: tenantID, Name: "Acme (soak)", ReportRecipients: []string{"sales-ops@acme.example"}, ReportsEnabled: true,
		Schedule: tenant.Schedule{Interval: "1h"},
		Salesforce: &tenant.SFConfig{
			Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional, ObjectModules: []string{"contact", "lead"},
				RemapOnDeactivation: true, FallbackOwnerID: st.sb.Salesforce.IntegrationUserID(), APIBaseURL: st.sb.SalesforceURL},
			OrgID: seed.Salesforce.OrgID, InstanceURL: st.sb.SalesforceURL, APIVersion: "62.0",
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: seed.Salesforce.ClientID,
				ClientSecretRef: "env:OWNERSYNC_SECRET_DEMO_SF_CLIENT_SECRET", TokenURL: st.sb.SalesforceURL + "/services/oauth2/token"},
		},
		HubSpot: &tenant.HSConfig{
			Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional, ObjectModules: []string{"contact"},
				RemapOnDeactivation: true, FallbackOwnerID: hsFallback, APIBaseURL: st.sb.HubSpotURL},
			PortalID: seed.HubSpot.PortalID, AppID: seed.HubSpot.AppID, ClientSecretRef: "env:OWNERSYNC_SECRET_DEMO_HS_CLIENT_SECRET",
			Auth: tenant.HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_DEMO_HS_TOKEN"},
		},
	}
	b, err := yaml.Marshal(tenantstore.SeedFile{Tenants: []tenant.Tenant{tn}})
	if err != nil {
		t.Fatal(err)
	}
	tenantsFile := filepath.Join(st.dir, "tenants.yaml")
	if err := os.WriteFile(tenantsFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	replicas := "1"
	if cluster {
		replicas = "3"
	}
	st.env = map[string]string{
		"NATS_URL": strings.Join(urls, ","), "MONGODB_URI": st.mongo.URI(), "OWNERSYNC_MONGODB_DATABASE": "ownersync",
		"SMTP_URL": sink.URL(), "OWNERSYNC_LOG_LEVEL": "warn", "OWNERSYNC_PUBLIC_URL": ingressURL, "OWNERSYNC_ADMIN_URL": "http://" + st.addrs["mapper"],
		"OWNERSYNC_PLATFORM_TOKEN": "soak-platform-token", "OWNERSYNC_OPERATOR_TOKEN": "soak-operator-token",
		"OWNERSYNC_TENANTS_FILE": tenantsFile, "OWNERSYNC_STREAM_REPLICAS": replicas,
		"OWNERSYNC_SECRET_DEMO_SF_CLIENT_SECRET": "ownersync-demo-secret", "OWNERSYNC_SECRET_DEMO_HS_TOKEN": "pat-na1-ownersync-demo",
		"OWNERSYNC_SECRET_DEMO_HS_CLIENT_SECRET": "ownersync-demo-client-secret",
		"OWNERSYNC_REQUIRE_SHARED_KEY":           "false", // the sandbox org sends no shared key
		"OWNERSYNC_CRM_ANY_HOST":                 "true",  // the sandboxes are plain http on loopback
	}
	if o.replicas > 1 {
		// Digests and schedules every few seconds, so that the replicas have something to agree on.
		st.env["OWNERSYNC_ALERT_SETTLE"], st.env["OWNERSYNC_ALERT_DIGEST_INTERVAL"], st.env["OWNERSYNC_DIGEST_TICK"] = "2s", "5s", "200ms"
	}
	for k, v := range o.env {
		st.env[k] = v
	}
	if processes {
		st.bins = t.TempDir()
		for _, n := range serviceNames {
			cmd := exec.Command("go", "build", "-o", filepath.Join(st.bins, n), "github.com/ownersync/ownersync/services/"+n)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", n, err, out)
			}
		}
	}
	runs := map[string]servicekit.RunFunc{"mapper": mapper.Run, "ingress": ingress.Run, "writer": writer.Run, "notifier": notifier.Run}
	for _, n := range serviceNames {
		if processes {
			for _, in := range st.instances[n] {
				st.startProcess(in)
			}
		} else {
			harness.Serve(t, n, runs[n], st.listeners[n], func(k string) string { return st.env[k] })
		}
	}
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: st.env["NATS_URL"], Name: "platformsim"})
	if err != nil {
		t.Fatal(err)
	}
	st.p = platformsim.New(tenantID, bus, nil)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.p.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done; bus.Close() })
	// Platform users: one per active Salesforce user of acme.example, like the demo.
	n := 0
	for _, u := range st.sb.Salesforce.Users() {
		email := strings.ToLower(u.Email)
		local, domain, _ := strings.Cut(email, "@")
		if !u.IsActive || domain != "acme.example" || strings.Contains(local, "only") || local == "integration" || local == "sales.desk" {
			continue
		}
		if err := st.p.PutUser(ctx, platformsim.User{ID: "pu-" + strings.ReplaceAll(local, ".", "-"), Email: email, FirstName: u.FirstName,
			LastName: u.LastName, Status: "active", Kind: "user", TeamID: "team-sales"}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	e := st.env2()
	harness.EventuallyState(t, 60*time.Second, "mapper stored the platform users", func() (bool, string) {
		ov := e.overview()
		return ov.of("salesforce").PlatformUsers == n, fmt.Sprintf("%+v", ov.Providers)
	})
	e.syncUsers()
	return st
}

// env2 is an env over the soak stack, for the admin API helpers.
func (st *soakStack) env2() *env {
	return &env{t: st.t, s: nil, sf: st.sb.Salesforce, hs: st.sb.HubSpot, p: st.p, mapperURL: "http://" + st.addrs["mapper"], token: st.env["OWNERSYNC_OPERATOR_TOKEN"]}
}

func (st *soakStack) startProcess(name string) {
	t := st.t
	logf, err := os.OpenFile(filepath.Join(st.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(st.bins, serviceOf(name)))
	cmd.Stdout, cmd.Stderr = logf, logf
	lf, err := st.listeners[name].(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close() // the child has its own copy once started
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Env = []string{"OWNERSYNC_HTTP_LISTEN_FD=3", "PATH=" + os.Getenv("PATH")}
	for k, v := range st.env {
		if _, over := st.instanceEnv[name][k]; !over {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range st.instanceEnv[name] {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st.procs[name] = cmd
	done, exited := make(chan error, 1), make(chan struct{})
	st.exited[name] = exited
	go func() { err := cmd.Wait(); logf.Close(); done <- err; close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return // killed or stopped already
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	if err := readiness.Wait(context.Background(), "http://"+st.addrs[name]+"/readyz", 60*time.Second, done); err != nil {
		b, _ := os.ReadFile(filepath.Join(st.dir, name+".log"))
		t.Fatalf("%s not ready: %v\n%s", name, err, lastLines(b, 20))
	}
}

// startInstance starts one more process of a service (name "<service>-<suffix>") on a listener of
// its own, with env set over the stack's environment.
func (st *soakStack) startInstance(name string, env map[string]string) {
	if st.instanceEnv == nil {
		st.instanceEnv = map[string]map[string]string{}
	}
	st.instanceEnv[name] = env
	st.listeners[name] = harness.Listen(st.t)
	st.addrs[name] = st.listeners[name].Addr().String()
	st.startProcess(name)
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-n):], []byte("\n")))
}

// burst makes n Salesforce owner changes on new contacts, calling mid after n/3 of them; it
// returns the expected platform owner per contact.
func (st *soakStack) burst(n int, mid func()) map[string]string {
	t := st.t
	e := st.env2()
	people := e.mappedPeople()
	if len(people) == 0 {
		t.Fatal("nobody mapped")
	}
	actor := people[0].sf
	want := map[string]string{}
	var ids []string
	for i := range n {
		c, err := st.sb.Salesforce.CreateRecord(sfsim.Record{Type: "Contact", Email: fmt.Sprintf("soak%05d@example.org", i), LastName: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for i, id := range ids {
		if i == n/3 && mid != nil {
			mid()
		}
		p := people[i%len(people)]
		if err := st.sb.Salesforce.SetOwner(id, p.sf, actor); err != nil {
			t.Fatal(err)
		}
		want[id] = p.platform
	}
	return want
}

// settle waits until every change is accounted for and checks the ledger.
func (st *soakStack) settle(want map[string]string, within time.Duration, began time.Time) {
	t := st.t
	var l ledger
	last := time.Now()
	harness.EventuallyState(t, within, "every Salesforce change applied on the platform", func() (bool, string) {
		if time.Since(last) > 5*time.Second {
			st.sb.Salesforce.FlushOutbound()
			last = time.Now()
		}
		l = platformLedger(st.p, "salesforce", want)
		return len(l.missing) == 0, l.String()
	})
	t.Logf("%d changes applied in %s: %s", len(want), time.Since(began).Round(time.Millisecond), l)
	if !l.ok() {
		t.Errorf("ledger not closed: %s", l)
	}
}
