package mongostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Chunked sets (issue 18): a list that is only ever read and written whole per tenant and
// provider (the problems, the CRM directory as the last Sync Users saw it) is stored as one head
// document and a few bucket documents, each bucket an s2-compressed gob of up to about
// bucketTarget items, instead of one document per item. FerretDB decodes every document a filter
// other than {_id} touches, at about 0.1 ms each whatever its size, so 100k items cost 10 s as
// documents and well under a second as 50 buckets; every read and write of a set is by _id.
//
// The head (_id "<tenant>/<provider>") names the generation and the number of buckets; an item
// lives in bucket fnv(key) mod buckets, bucket _id "<tenant>/<provider>/<generation>/<i>". A
// change rewrites only the buckets holding changed items; a change of size that calls for another
// number of buckets writes a new generation, switches the head to it and deletes the old one, so a
// reader never sees a half-written layout.

// bucketTarget is the number of items a bucket is sized for.
const bucketTarget = 2000

// chunkFormat is the head's format: the payload encoding of its buckets.
const chunkFormat = 1

// setHead is the head document of a chunked set.
type setHead struct {
	Key      string `bson:"_id"`
	Tenant   string `bson:"tenant"`
	Provider string `bson:"provider"`
	// Gen is the generation of the buckets; empty: the set has no buckets yet (a head created by
	// a dirty mark, see crmsnap.go).
	Gen     string `bson:"gen"`
	Format  int    `bson:"format"`
	Buckets int    `bson:"buckets"`
	Count   int    `bson:"count"`
	// Version counts the marks (crmsnap.go); a snapshot write clears Dirty only when it is the
	// version it read.
	Version int64 `bson:"version"`
	// Dirty are items changed outside the set since it was written (CRM users changed by events):
	// readers take them from their own documents.
	Dirty []string `bson:"dirty,omitempty"`
	// Stale says the set is not to be trusted: readers go to the per-item documents.
	Stale     bool      `bson:"stale,omitempty"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// bucketDoc is one bucket of a chunked set.
type bucketDoc struct {
	Key      string `bson:"_id"`
	Tenant   string `bson:"tenant"`
	Provider string `bson:"provider"`
	Gen      string `bson:"gen"`
	N        int    `bson:"n"`
	Data     []byte `bson:"data"`
}

// chunkSet stores sets of T in one collection.
type chunkSet[T any] struct {
	coll func() *mongo.Collection
	key  func(T) string
	now  func() time.Time
}

// loadedSet is a set as read: its head (nil when there is none) and its items.
type loadedSet[T any] struct {
	head  *setHead
	items []T
}

func setKey(tenant, provider string) string { return tenant + "/" + provider }

func bucketKey(head string, gen string, i int) string { return fmt.Sprintf("%s/%s/%d", head, gen, i) }

func bucketOf(key string, buckets int) int {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(buckets))
}

// bucketsFor is the number of buckets for n items: a power of two, so that a set's layout changes
// only when it doubles or shrinks to a quarter.
func bucketsFor(n int) int {
	b := 1
	for b*bucketTarget < n {
		b *= 2
	}
	return b
}

// layoutFits reports whether a set of n items keeps b buckets.
func layoutFits(b, n int) bool {
	return b > 0 && n <= 2*b*bucketTarget && (b == 1 || n*4 >= b*bucketTarget)
}

// head reads a set's head; nil when there is none.
func (c chunkSet[T]) head(ctx context.Context, tenant, provider string) (*setHead, error) {
	var h setHead
	err := c.coll().FindOne(ctx, bson.D{{Key: "_id", Value: setKey(tenant, provider)}}).Decode(&h)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// load reads a set: its head and, when the head has a generation, every bucket by _id.
func (c chunkSet[T]) load(ctx context.Context, tenant, provider string) (*loadedSet[T], error) {
	h, err := c.head(ctx, tenant, provider)
	if err != nil || h == nil || h.Gen == "" {
		return &loadedSet[T]{head: h}, err
	}
	return c.items(ctx, h)
}

// items reads the buckets of the set whose head is h.
func (c chunkSet[T]) items(ctx context.Context, h *setHead) (*loadedSet[T], error) {
	if h.Format != chunkFormat {
		return nil, fmt.Errorf("chunked set %s: format %d, this mapper reads %d", h.Key, h.Format, chunkFormat)
	}
	out := &loadedSet[T]{head: h, items: make([]T, 0, h.Count)}
	for i := range h.Buckets {
		var b bucketDoc
		k := bucketKey(h.Key, h.Gen, i)
		if err := c.coll().FindOne(ctx, bson.D{{Key: "_id", Value: k}}).Decode(&b); err != nil {
			return nil, fmt.Errorf("chunked set bucket %s: %w", k, err)
		}
		items, err := decodeBucket[T](b.Data)
		if err != nil {
			return nil, fmt.Errorf("chunked set bucket %s: %w", k, err)
		}
		out.items = append(out.items, items...)
	}
	return out, nil
}

func encodeBucket[T any](items []T) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(items); err != nil {
		return nil, err
	}
	return s2.Encode(nil, buf.Bytes()), nil
}

func decodeBucket[T any](data []byte) ([]T, error) {
	raw, err := s2.Decode(nil, data)
	if err != nil {
		return nil, err
	}
	var items []T
	err = gob.NewDecoder(bytes.NewReader(raw)).Decode(&items)
	return items, err
}

// saveOptions say how a save treats the head.
type saveOptions struct {
	// changed are the keys whose items differ from the stored set (added, changed or removed);
	// only their buckets are rewritten when the layout stays. nil: every bucket.
	changed []string
	// version, when checkVersion, is the head version the caller read: the head is updated only
	// if it still has it, and then its dirty marks are cleared (crmsnap.go). A head that moved
	// on keeps its marks; saved is then false.
	checkVersion bool
	version      int64
	// setVersion sets the head's version to newVersion (mappings: the generation the set
	// holds, mappings.go).
	setVersion bool
	newVersion int64
}

// save makes the stored set of tenant and provider equal to items; prev is the head read
// before (nil: none). saved is false when the head moved on under a version check: the stored
// set is then as before.
func (c chunkSet[T]) save(ctx context.Context, tenant, provider string, prev *setHead, items []T, o saveOptions) (saved bool, err error) {
	coll := c.coll()
	hk := setKey(tenant, provider)
	now := c.now().UTC().Truncate(time.Millisecond)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(c.key(a), c.key(b)) })
	same := prev != nil && prev.Gen != "" && prev.Format == chunkFormat && layoutFits(prev.Buckets, len(items))
	nb, gen := bucketsFor(len(items)), rand.Text()
	if same {
		nb, gen = prev.Buckets, prev.Gen
	}
	parts := make([][]T, nb)
	for _, it := range items {
		i := bucketOf(c.key(it), nb)
		parts[i] = append(parts[i], it)
	}
	write := make([]bool, nb)
	if !same || o.changed == nil {
		for i := range write {
			write[i] = true
		}
	} else {
		for _, k := range o.changed {
			write[bucketOf(k, nb)] = true
		}
	}
	var models []mongo.WriteModel
	for i, part := range parts {
		if !write[i] {
			continue
		}
		data, err := encodeBucket(part)
		if err != nil {
			return false, err
		}
		d := bucketDoc{Key: bucketKey(hk, gen, i), Tenant: tenant, Provider: provider, Gen: gen, N: len(part), Data: data}
		models = append(models, replaceModel(keyed{d.Key, d}))
	}
	if err := bulkWrite(ctx, coll, models); err != nil {
		return false, err
	}
	filter := bson.D{{Key: "_id", Value: hk}}
	set := bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}, {Key: "gen", Value: gen},
		{Key: "format", Value: chunkFormat}, {Key: "buckets", Value: nb}, {Key: "count", Value: len(items)}, {Key: "updated_at", Value: now}}
	if o.checkVersion {
		filter = append(filter, bson.E{Key: "version", Value: o.version})
		set = append(set, bson.E{Key: "dirty", Value: bson.A{}}, bson.E{Key: "stale", Value: false})
	}
	if o.setVersion {
		set = append(set, bson.E{Key: "version", Value: o.newVersion})
	}
	update := bson.D{{Key: "$set", Value: set}}
	var res *mongo.UpdateResult
	if prev == nil {
		// No head yet: create it (a concurrent creation makes this a duplicate key: moved on).
		doc := setHead{Key: hk, Tenant: tenant, Provider: provider, Gen: gen, Format: chunkFormat, Buckets: nb, Count: len(items), UpdatedAt: now}
		if o.setVersion {
			doc.Version = o.newVersion
		}
		if _, err := coll.InsertOne(ctx, doc); err != nil {
			if !isDuplicateKey(err) {
				return false, err
			}
			res = &mongo.UpdateResult{}
		} else {
			res = &mongo.UpdateResult{MatchedCount: 1}
		}
	} else {
		res, err = coll.UpdateOne(ctx, filter, update)
		if err != nil {
			return false, err
		}
	}
	if res.MatchedCount == 0 {
		if !same {
			// The new generation is nobody's: remove it.
			_ = deleteBuckets(ctx, coll, hk, gen, nb)
		}
		return false, nil
	}
	if !same && prev != nil && prev.Gen != "" {
		if err := deleteBuckets(ctx, coll, hk, prev.Gen, prev.Buckets); err != nil {
			return true, err
		}
	}
	return true, nil
}

func deleteBuckets(ctx context.Context, coll *mongo.Collection, hk, gen string, n int) error {
	models := make([]mongo.WriteModel, n)
	for i := range n {
		models[i] = mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: bucketKey(hk, gen, i)}})
	}
	return bulkWrite(ctx, coll, models)
}
