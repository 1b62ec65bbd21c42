package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"
)

// natsProcCluster is a three-node NATS cluster of nats-server processes (built from the module
// cache), so that a node can be SIGKILLed like in production. Every node is reached through two
// doors the test binds and holds for its whole run — one for clients, one for routes — which
// forward to the ports the node bound itself (read from its ports file), so no port is picked and
// freed, and a restarted node is found at the same addresses.
type natsProcCluster struct {
	t       *testing.T
	bin     string
	dirs    []string
	clients []net.Listener
	routes  []net.Listener

	mu     sync.Mutex
	ports  []natsPorts // of the running process; zero while down
	procs  []*exec.Cmd
	exited []chan struct{}
}

// natsPorts is nats-server's ports file.
type natsPorts struct {
	Nats       []string `json:"nats"`
	Monitoring []string `json:"monitoring"`
	Cluster    []string `json:"cluster"`
}

func hostPort(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		return u[i+3:]
	}
	return u
}

// startNATSProcs builds nats-server and starts n clustered nodes with JetStream.
func startNATSProcs(t *testing.T, n int) *natsProcCluster {
	t.Helper()
	c := &natsProcCluster{t: t, bin: filepath.Join(t.TempDir(), "nats-server"), ports: make([]natsPorts, n),
		procs: make([]*exec.Cmd, n), exited: make([]chan struct{}, n)}
	build := exec.Command("go", "build", "-o", c.bin, "github.com/nats-io/nats-server/v2")
	build.Dir = "." // this module requires nats-server (through the workbench), so the module cache has it
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	for i := range n {
		c.dirs = append(c.dirs, t.TempDir())
		c.clients = append(c.clients, harness.Listen(t))
		c.routes = append(c.routes, harness.Listen(t))
		go serveDoor(c.clients[i], func() []string { return c.addr(i, func(p natsPorts) []string { return p.Nats }) })
		go serveDoor(c.routes[i], func() []string { return c.addr(i, func(p natsPorts) []string { return p.Cluster }) })
	}
	for i := range n {
		c.start(i)
	}
	harness.EventuallyState(t, 60*time.Second, "JetStream meta leader elected", func() (bool, string) {
		l := c.metaLeader()
		return l >= 0, "no meta leader"
	})
	return c
}

func (c *natsProcCluster) addr(i int, f func(natsPorts) []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, u := range f(c.ports[i]) {
		out = append(out, hostPort(u))
	}
	return out
}

// urls are the client doors.
func (c *natsProcCluster) urls() []string {
	var out []string
	for _, l := range c.clients {
		out = append(out, "nats://"+l.Addr().String())
	}
	return out
}

// start starts node i (again, after a kill: same name, same store).
func (c *natsProcCluster) start(i int) {
	t := c.t
	var routes []string
	for _, l := range c.routes {
		routes = append(routes, `"nats-route://`+l.Addr().String()+`"`)
	}
	conf := fmt.Sprintf(`server_name: n%d
listen: "127.0.0.1:-1"
http: "127.0.0.1:-1"
ports_file_dir: %q
jetstream { store_dir: %q }
cluster { name: soak, listen: "127.0.0.1:-1", routes: [%s] }
`, i, c.dirs[i], filepath.Join(c.dirs[i], "js"), strings.Join(routes, ", "))
	path := filepath.Join(c.dirs[i], "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(c.dirs[i], "nats.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	portsFile := filepath.Join(c.dirs[i], fmt.Sprintf("nats-server_%d.ports", cmd.Process.Pid))
	var p natsPorts
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("nats-server n%d wrote its ports", i), func() bool {
		b, err := os.ReadFile(portsFile)
		return err == nil && json.Unmarshal(b, &p) == nil && len(p.Nats) > 0 && len(p.Cluster) > 0 && len(p.Monitoring) > 0
	})
	c.mu.Lock()
	c.ports[i], c.procs[i], c.exited[i] = p, cmd, exited
	c.mu.Unlock()
}

// kill SIGKILLs node i and waits for it to exit.
func (c *natsProcCluster) kill(i int) {
	c.mu.Lock()
	cmd, exited := c.procs[i], c.exited[i]
	c.ports[i] = natsPorts{}
	c.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-exited
}

// jsz is the part of /jsz the test reads.
type jsz struct {
	Meta *struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name    string `json:"name"`
			Cluster *struct {
				Leader string `json:"leader"`
			} `json:"cluster"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

func (c *natsProcCluster) jsz() (jsz, bool) {
	for i := range c.dirs {
		mon := c.addr(i, func(p natsPorts) []string { return p.Monitoring })
		if len(mon) == 0 {
			continue
		}
		resp, err := http.Get("http://" + mon[0] + "/jsz?accounts=true&streams=true")
		if err != nil {
			continue
		}
		var j jsz
		err = json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		if err == nil && j.Meta != nil && j.Meta.Leader != "" {
			return j, true
		}
	}
	return jsz{}, false
}

// metaLeader is the index of the JetStream meta leader's node, or -1.
func (c *natsProcCluster) metaLeader() int {
	j, ok := c.jsz()
	if !ok {
		return -1
	}
	var i int
	if _, err := fmt.Sscanf(j.Meta.Leader, "n%d", &i); err != nil {
		return -1
	}
	return i
}

// streamLeader is the index of stream's leader node, or -1.
func (c *natsProcCluster) streamLeader(stream string) int {
	j, ok := c.jsz()
	if !ok {
		return -1
	}
	for _, a := range j.Accounts {
		for _, s := range a.Streams {
			var i int
			if s.Name == stream && s.Cluster != nil {
				if _, err := fmt.Sscanf(s.Cluster.Leader, "n%d", &i); err == nil {
					return i
				}
			}
		}
	}
	return -1
}

// serveDoor accepts on l until it closes and pipes each connection to the first of targets() that
// accepts it (refused when none does, as a server that is down refuses).
func serveDoor(l net.Listener, targets func() []string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			var up net.Conn
			for _, a := range targets() {
				if up, err = net.DialTimeout("tcp", a, 2*time.Second); err == nil {
					break
				}
			}
			if up == nil {
				c.Close()
				return
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}
