package app_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/events"
	"github.com/ownersync/ownersync/services/mapper/internal/kvview"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/workbench/harness"
)

// coreStack is what the core runs on in these tests: embedded NATS with the streams and KV
// buckets, FerretDB with mapper's indexes, the store, the mappings view and the change writer.
type coreStack struct {
	store *mongostore.Store
	view  *kvview.View
	w     *changes.Writer
	kvs   map[string]jetstream.KeyValue
}

func newCoreStack(t *testing.T, database string) coreStack {
	t.Helper()
	ctx := context.Background()
	infra := harness.Start(t)
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: infra.NATSURL, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := natsbus.DeclareStreams(ctx, bus.JS, streams.Configs(streams.Options{MemoryStorage: true})); err != nil {
		t.Fatal(err)
	}
	kvs, err := natsbus.DeclareKV(ctx, bus.JS, streams.KVConfigs(streams.Options{MemoryStorage: true}))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: infra.MongoURI, Database: database})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if err := mongodb.EnsureIndexes(ctx, conn.DB, mongostore.Indexes); err != nil {
		t.Fatal(err)
	}
	store := mongostore.New(conn.DB, mongostore.Options{})
	view := kvview.New(bus.JS, kvs[streams.MappingsBucket])
	w := changes.New(store, view, events.NewPublisher(natsbus.NewPublisher(bus.JS, nil, 0), nil), nil)
	return coreStack{store: store, view: view, w: w, kvs: kvs}
}
