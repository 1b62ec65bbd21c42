package mongodb_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/workbench/harness"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestConnectAndIndexesOnFerretDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wire := teeProxy(t, harness.Mongo(t))
	c, err := mongodb.Connect(ctx, mongodb.Options{URI: wire.uri, Database: "t", WriteConcern: "majority"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	idx := []mongodb.Index{{Collection: "mappings", Name: "tenant_provider_platform", Keys: bson.D{{Key: "tenant", Value: 1}, {Key: "provider", Value: 1}, {Key: "platform_user_id", Value: 1}}, Unique: true}}
	for range 2 { // idempotent
		if err := mongodb.EnsureIndexes(ctx, c.DB, idx); err != nil {
			t.Fatal(err)
		}
	}
	coll := c.DB.Collection("mappings")
	doc := bson.D{{Key: "tenant", Value: "acme"}, {Key: "provider", Value: "hubspot"}, {Key: "platform_user_id", Value: "u1"}}
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		t.Fatal(err)
	}
	_, err = coll.InsertOne(ctx, doc)
	if !mongodb.IsDuplicateKey(err) {
		t.Fatalf("second insert error = %v, want duplicate key", err)
	}
	// FerretDB accepts (and ignores) w: majority on every kind of write the services make.
	filter := bson.D{{Key: "tenant", Value: "acme"}}
	if _, err := coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "synced"}}}}); err != nil {
		t.Fatalf("update with w: majority: %v", err)
	}
	if err := coll.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}).Err(); err != nil {
		t.Fatalf("findAndModify with w: majority: %v", err)
	}
	if _, err := coll.BulkWrite(ctx, []mongo.WriteModel{mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(doc)}); err != nil {
		t.Fatalf("bulk write with w: majority: %v", err)
	}
	if _, err := coll.DeleteOne(ctx, filter); err != nil {
		t.Fatalf("delete with w: majority: %v", err)
	}
	// The commands on the wire carry the write concern (BSON: the "writeConcern" document with
	// w: "majority").
	sent := wire.sent()
	for _, cmd := range []string{"insert", "update", "findAndModify", "delete", "createIndexes"} {
		if !bytes.Contains(sent, []byte(cmd+"\x00")) {
			t.Errorf("no %s command seen on the wire", cmd)
		}
	}
	if n := bytes.Count(sent, []byte("writeConcern\x00")); n < 5 {
		t.Errorf("%d commands carried a writeConcern, want every write (at least 5)", n)
	}
	if !bytes.Contains(sent, []byte("w\x00\x09\x00\x00\x00majority\x00")) {
		t.Error(`no w: "majority" on the wire`)
	}
}

// proxy forwards one MongoDB URI's connections and keeps what the client sent.
type proxy struct {
	uri string
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *proxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *proxy) sent() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf.Bytes())
}

func teeProxy(t *testing.T, uri string) *proxy {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	p := &proxy{}
	target := u.Host
	u.Host = l.Addr().String()
	p.uri = u.String() + "?directConnection=true"
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, io.TeeReader(c, p)); _ = s.Close() }()
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
	return p
}

func TestParseWriteConcern(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    any
		wantErr bool
	}{
		{in: "", want: "majority"},
		{in: "majority", want: "majority"},
		{in: "1", want: 1},
		{in: "2", want: 2},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "majorty", wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			wc, err := mongodb.ParseWriteConcern(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseWriteConcern(%q) = %+v, want an error", tt.in, wc)
				}
				return
			}
			if err != nil || wc.W != tt.want {
				t.Fatalf("ParseWriteConcern(%q) = %+v, %v; want w: %v", tt.in, wc, err, tt.want)
			}
		})
	}
}

func TestConnectRefusesBadWriteConcern(t *testing.T) {
	_, err := mongodb.Connect(context.Background(), mongodb.Options{URI: "mongodb://127.0.0.1:1/", WriteConcern: "0"})
	if err == nil || !strings.Contains(err.Error(), "write concern") {
		t.Fatalf("Connect with w: 0 = %v, want a write concern error", err)
	}
}

func TestConnectGivesUp(t *testing.T) {
	ctx := context.Background()
	_, err := mongodb.Connect(ctx, mongodb.Options{URI: "mongodb://127.0.0.1:1/", ConnectTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
}
