// Package embedmongo runs FerretDB v1 in process with its SQLite backend: a real MongoDB
// wire-protocol server for the dev stack and tests (docs/architecture.md#embedded-ferretdb).
// Services reach it through the ordinary driver and a mongodb:// URI, exactly as they reach
// MongoDB.
package embedmongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configure an embedded FerretDB.
type Options struct {
	// Dir holds the SQLite databases (required; a restart on the same Dir keeps the data).
	Dir string
	// Addr is the listen address; default 127.0.0.1:0 (FerretDB binds a port the system picks).
	Addr string
	// Logger receives FerretDB's logs; nil discards them (FerretDB is chatty at info).
	Logger *slog.Logger
	// PostgreSQLURL, when set, runs FerretDB on its PostgreSQL backend (postgres://…) instead of
	// SQLite files in Dir (issue 18: the benchmarks and tests can run on it). The _id expression
	// index is a SQLite matter and is not added there.
	PostgreSQLURL string
}

// IDIndexInterval is how often the wrapper looks for collections that lack the index on
// IDExpression (a collection is created by its first write; until the next look its operations by
// _id scan).
var IDIndexInterval = 100 * time.Millisecond

// Server is a running embedded FerretDB. Besides FerretDB's own indexes, every collection gets an
// index on IDExpression (see there), added by the wrapper within IDIndexInterval of the
// collection's creation.
type Server struct {
	f      *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan struct{}
	uri    string
	dir    string
	ids    *idIndexer
}

var startMu sync.Mutex // FerretDB's embedded package sets process-wide version state on New.

// Start starts FerretDB and waits until it accepts connections.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("embedmongo: Dir is required")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedmongo: %w", err)
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedmongo: %w", err)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	logger := o.Logger
	if logger == nil {
		// A discarding handler reports every level disabled, so FerretDB skips formatting its
		// per-statement debug arguments (about 5 % of a busy writer's CPU otherwise).
		logger = slog.New(slog.DiscardHandler)
	}
	startMu.Lock()
	cfg := &ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: o.Addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	}
	if o.PostgreSQLURL != "" {
		pgURL, err := ownDatabase(ctx, o.PostgreSQLURL, abs)
		if err != nil {
			return nil, fmt.Errorf("embedmongo: %w", err)
		}
		cfg.Handler, cfg.SQLiteURL, cfg.PostgreSQLURL = "postgresql", "", pgURL
	}
	f, err := ferretdb.New(cfg)
	startMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embedmongo: %w", err)
	}
	// New has bound the listener (port 0 included), so the URI names the port FerretDB holds:
	// nothing picks a port and frees it for someone else to take first.
	uri := f.MongoDBURI()
	addr := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{f: f, cancel: cancel, done: make(chan struct{}), uri: uri, dir: abs, ids: newIDIndexer(abs)}
	indexed := make(chan struct{})
	go func() {
		defer close(indexed)
		if o.PostgreSQLURL == "" {
			s.ids.run(runCtx, IDIndexInterval)
		}
	}()
	go func() {
		defer close(s.done)
		_ = f.Run(runCtx)
		<-indexed
		s.ids.close()
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("embedmongo: not listening on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URI is the mongodb:// URI of the server.
func (s *Server) URI() string { return s.uri }

// Stop stops FerretDB and waits until its backend is closed.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}

// ownDatabase returns pgURL naming a PostgreSQL database of this server's own, created if need
// be: named after dir, so that servers with different directories (every test's) keep apart and a
// restart on the same directory finds its data, as with SQLite.
func ownDatabase(ctx context.Context, pgURL, dir string) (string, error) {
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", fmt.Errorf("postgresql url: %w", err)
	}
	h := sha256.Sum256([]byte(dir))
	name := "ferretdb_" + hex.EncodeToString(h[:8])
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "", fmt.Errorf("postgresql: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42P04" { // duplicate_database: a restart
			return "", fmt.Errorf("postgresql: create database %s: %w", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), nil
}
