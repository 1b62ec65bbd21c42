// Package natsbus is ownersync's one door to NATS JetStream: it connects with reconnects, declares
// streams, consumers and KV buckets from data, publishes protobuf events with Nats-Msg-Id,
// Content-Type and W3C trace headers, and runs the one consume loop that turns a handler's error
// class into Ack, Term (plus a dead-letter copy) or NakWithDelay. Handlers never ack.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/redact"
)

// Options configure a connection.
type Options struct {
	// URL is one or more comma-separated server URLs (NATS_URL).
	URL string
	// Name is the client name shown by the server (the service name).
	Name string
	// Logger logs connection state changes.
	Logger *slog.Logger
	// ConnectTimeout bounds the first connection (default 30 s, retried meanwhile).
	ConnectTimeout time.Duration
}

// Conn is a NATS connection with its JetStream context.
type Conn struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	log *slog.Logger
}

// Connect connects, retrying the first connection until ConnectTimeout, and reconnects forever after.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	log := o.Logger.With("component", "nats")
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(8 << 20),
		nats.PingInterval(10 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "error", err)
		}),
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redact.URL(o.URL), redact.Error(err, o.URL))
	}
	deadline := time.Now().Add(o.ConnectTimeout)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			nc.Close()
			return nil, fmt.Errorf("connect nats %s: not connected after %s", redact.URL(o.URL), o.ConnectTimeout)
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Conn{NC: nc, JS: js, log: log}, nil
}

// Ping is a readiness check: connected and JetStream answering.
func (c *Conn) Ping(ctx context.Context) error {
	if !c.NC.IsConnected() {
		return errors.New("nats not connected: " + c.NC.Status().String())
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// Close drains the connection (pending publishes flushed, subscriptions drained) and waits.
func (c *Conn) Close() {
	if c.NC.IsClosed() {
		return
	}
	done := make(chan struct{})
	c.NC.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.NC.Close()
	}
}

// DeclareStreams creates or updates the streams (idempotent; every service may declare them).
func DeclareStreams(ctx context.Context, js jetstream.JetStream, cfgs []jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// DeclareKV creates or updates the buckets and returns them by name.
func DeclareKV(ctx context.Context, js jetstream.JetStream, cfgs []jetstream.KeyValueConfig) (map[string]jetstream.KeyValue, error) {
	out := make(map[string]jetstream.KeyValue, len(cfgs))
	for _, cfg := range cfgs {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("declare kv %s: %w", cfg.Bucket, err)
		}
		out[cfg.Bucket] = kv
	}
	return out, nil
}
