// Package mongodb connects to MongoDB (or FerretDB) with the v2 driver and declares indexes. The
// first ping is retried with backoff so services can start before the database is reachable.
package mongodb

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a connection.
type Options struct {
	// URI is the mongodb:// URI (MONGODB_URI).
	URI string
	// Database is the database name (default "ownersync").
	Database string
	// AppName shows in server logs.
	AppName string
	// ConnectTimeout bounds the retried first ping (default 30 s).
	ConnectTimeout time.Duration
	// OperationTimeout bounds each operation that has no earlier context deadline (default 2 min:
	// a bulk Sync Users write on FerretDB's SQLite backend can scan for tens of seconds).
	OperationTimeout time.Duration
	// WriteConcern is the write concern of every write: "majority" (the default) or a number of
	// nodes of at least 1. It overrides a w= in the URI. An event is acknowledged to JetStream only
	// after its MongoDB writes returned, so they must survive a primary failover; a write
	// acknowledged by the old primary alone is rolled back when a secondary that lacks it is
	// elected. FerretDB accepts and ignores write concerns.
	WriteConcern string
	// Logger logs retries.
	Logger *slog.Logger
	// TracerProvider, when set, gives every command a client span (CommandTracer).
	TracerProvider trace.TracerProvider
	// Monitor, when set, also watches every command (a CommandCounter's, for instance); it is
	// composed with the tracer's.
	Monitor *event.CommandMonitor
}

// ParseWriteConcern reads a write concern: "majority" or a number of nodes (at least 1; 0 would
// not acknowledge writes at all). Empty means "majority".
func ParseWriteConcern(s string) (*writeconcern.WriteConcern, error) {
	if s == "" || s == writeconcern.WCMajority {
		return writeconcern.Majority(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("write concern %q: want \"majority\" or a number of nodes of at least 1", s)
	}
	return &writeconcern.WriteConcern{W: n}, nil
}

// Conn is a connected client and its database.
type Conn struct {
	Client *mongo.Client
	DB     *mongo.Database
}

// Connect opens the client and pings until the server answers or ConnectTimeout passes.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if o.Database == "" {
		o.Database = "ownersync"
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = 2 * time.Minute
	}
	wc, err := ParseWriteConcern(o.WriteConcern)
	if err != nil {
		return nil, err
	}
	opts := options.Client().ApplyURI(o.URI).
		SetAppName(o.AppName).
		SetServerSelectionTimeout(min(5*time.Second, o.ConnectTimeout)).
		SetConnectTimeout(5 * time.Second).
		SetTimeout(o.OperationTimeout).
		SetWriteConcern(wc)
	var tracer *event.CommandMonitor
	if o.TracerProvider != nil {
		tracer = NewCommandTracer(o.TracerProvider).Monitor()
	}
	if m := ComposeMonitors(tracer, o.Monitor); m != nil {
		opts.SetMonitor(m)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect mongodb: %w", err)
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 3 * time.Second
	b.MaxElapsedTime = o.ConnectTimeout
	attempt := 0
	err = backoff.Retry(func() error {
		attempt++
		pctx, cancel := context.WithTimeout(ctx, min(5*time.Second, o.ConnectTimeout))
		defer cancel()
		err := client.Ping(pctx, readpref.Primary())
		if err != nil && o.Logger != nil {
			o.Logger.Warn("mongodb ping failed, retrying", "attempt", attempt, "error", err)
		}
		return err
	}, backoff.WithContext(b, ctx))
	if err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("ping mongodb after %d attempts: %w", attempt, err)
	}
	return &Conn{Client: client, DB: client.Database(o.Database)}, nil
}

// Close disconnects.
func (c *Conn) Close(ctx context.Context) error { return c.Client.Disconnect(ctx) }

// Ping is a readiness check.
func (c *Conn) Ping(ctx context.Context) error { return c.Client.Ping(ctx, readpref.Primary()) }

// Index declares one index of a collection.
type Index struct {
	Collection string
	Name       string
	Keys       bson.D
	Unique     bool
}

// EnsureIndexes creates the indexes that do not exist yet, one per call. FerretDB v1 lacks TTL and
// partial indexes, so ownersync declares only plain and unique ones; and FerretDB v1.24 fails when
// one createIndexes call names several indexes of which some already exist, so existing indexes
// (by name) are skipped and the rest are created one at a time.
func EnsureIndexes(ctx context.Context, db *mongo.Database, idx []Index) error {
	existing := map[string]map[string]bool{}
	for _, i := range idx {
		names, ok := existing[i.Collection]
		if !ok {
			names = map[string]bool{}
			specs, err := db.Collection(i.Collection).Indexes().ListSpecifications(ctx)
			if err != nil {
				return fmt.Errorf("list indexes of %s: %w", i.Collection, err)
			}
			for _, s := range specs {
				names[s.Name] = true
			}
			existing[i.Collection] = names
		}
		if names[i.Name] {
			continue
		}
		o := options.Index().SetName(i.Name)
		if i.Unique {
			o.SetUnique(true)
		}
		if _, err := db.Collection(i.Collection).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: i.Keys, Options: o}); err != nil {
			return fmt.Errorf("create index %s on %s: %w", i.Name, i.Collection, err)
		}
		names[i.Name] = true
	}
	return nil
}

// IsDuplicateKey reports whether err is a unique-index violation.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }
