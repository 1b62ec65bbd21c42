// Package embednats runs an in-process nats-server with JetStream for the dev stack and tests, the
// way nats-server's own tests do: file store in a given directory, random or fixed port, clean stop.
package embednats

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server.
type Options struct {
	// Dir is the JetStream store directory (required; a restart on the same Dir keeps the data).
	Dir string
	// Host defaults to 127.0.0.1.
	Host string
	// Port is the client port; 0 or -1 picks a free one.
	Port int
	// Name is the server name (required and unique in a cluster).
	Name string
	// Cluster joins a cluster when set (tests of R3 streams).
	Cluster *ClusterOptions
	// MaxMemory and MaxStore cap JetStream resources (0: server defaults).
	MaxMemory, MaxStore int64
	// SyncInterval is how often the file store fsyncs (0: server default); see the README's note on
	// the Jepsen 2025 report before lowering durability in production.
	SyncInterval time.Duration
	// SyncAlways fsyncs every write before its acknowledgement (deployments/nats's sync_interval: always).
	SyncAlways bool
	// ReadyTimeout bounds the wait for the server to accept connections (default 10 s).
	ReadyTimeout time.Duration
}

// ClusterOptions configure clustering for a multi-node embedded setup.
type ClusterOptions struct {
	Name string
	Host string
	// Port is the cluster (route) port.
	Port int
	// Routes are the other nodes' route URLs, e.g. nats-route://127.0.0.1:6222.
	Routes []string
}

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("embednats: Dir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	if o.Name == "" {
		o.Name = "ownersync-embedded"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName:         o.Name,
		Host:               o.Host,
		Port:               o.Port,
		JetStream:          true,
		StoreDir:           o.Dir,
		JetStreamMaxMemory: o.MaxMemory,
		JetStreamMaxStore:  o.MaxStore,
		SyncInterval:       o.SyncInterval,
		SyncAlways:         o.SyncAlways,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
	}
	if c := o.Cluster; c != nil {
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: c.Host, Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embednats: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embednats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(o.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("embednats: server %s not ready within %s", o.Name, o.ReadyTimeout)
	}
	return &Server{Server: s}, nil
}

// URL is the client URL (nats://host:port).
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down and waits for it to finish.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
