package harness

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/embednats"
)

// NATSCluster starts a cluster of n nats-server nodes with JetStream (R3 streams need three) in t's
// temp dirs and returns them; they stop at cleanup.
//
// No port is picked: nats-server takes no listener, and a clustered JetStream node needs its peers'
// route URLs before it starts (it binds its own route port only after JetStream is up). So each
// node has a front door, a listener the test binds and holds until cleanup, which forwards every
// connection to the port the node's route listener bound itself; the nodes' configured routes are
// the front doors.
func NATSCluster(t testing.TB, n int) []*embednats.Server {
	t.Helper()
	doors := make([]net.Listener, n)
	routes := make([]string, n)
	for i := range doors {
		doors[i] = Listen(t)
		routes[i] = "nats-route://" + doors[i].Addr().String()
	}
	nodes := make([]*embednats.Server, n)
	var mu sync.Mutex // guards nodes while they start
	for i, l := range doors {
		go forward(l, func() string {
			mu.Lock()
			defer mu.Unlock()
			if nodes[i] == nil || nodes[i].ClusterAddr() == nil {
				return ""
			}
			return nodes[i].ClusterAddr().String()
		})
	}
	// The nodes wait for each other: start them concurrently.
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s, err := embednats.Start(embednats.Options{Dir: t.TempDir(), Port: -1, Name: fmt.Sprintf("n%d", i),
				Cluster:      &embednats.ClusterOptions{Name: "test", Host: "127.0.0.1", Port: -1, Routes: routes},
				ReadyTimeout: 30 * time.Second})
			if err == nil {
				mu.Lock()
				nodes[i] = s
				mu.Unlock()
				t.Cleanup(s.Stop)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// forward accepts on l until it closes and pipes each connection to target() (refused while it
// is "", as a node that is not up refuses).
func forward(l net.Listener, target func() string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			addr := target()
			if addr == "" {
				return
			}
			d, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer d.Close()
			go func() { _, _ = io.Copy(d, c); _ = d.Close() }()
			_, _ = io.Copy(c, d)
		}()
	}
}
