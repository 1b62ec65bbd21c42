package mongostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Chunked sets (issue 18): a list that is only ever read and written whole per tenant and
// provider (the problems, the CRM directory as the last Sync Users saw it) is stored as one head
// document and a few bucket documents, each bucket a zstd-compressed gob of up to about
// bucketTarget items, instead of one document per item. FerretDB decodes every document a filter
// other than {_id} touches, at about 0.1 ms each whatever its size, so 100k items cost 10 s as
// documents and well under a second as 50 buckets; every read and write of a set is by _id.
//
// The head (_id "<tenant>/<provider>") names the generation and the number of buckets; an item
// lives in bucket fnv(key) mod buckets, bucket _id "<tenant>/<provider>/<generation>/<i>". A
// change is written to the generation's delta document ("<…>/<generation>/delta": the items
// changed or removed since the buckets were written), so a run with a few hundred changes writes
// one small document instead of rewriting every bucket (FerretDB writes large documents at a few
// MB/s); a delta of more than maxDelta items is folded into the buckets it touches. A change of
// size that calls for another number of buckets writes a new generation, switches the head to it
// and deletes the old one, so a reader never sees a half-written layout.

// bucketTarget is the number of items a bucket is sized for.
const bucketTarget = 2000

// chunkFormat is the head's format: the payload encoding of its buckets (1: s2, 2: zstd and a
// delta document). A set of another format is rewritten as a new generation by its next write.
const chunkFormat = 2

// maxDelta is the number of changed or removed items a delta holds before it is folded into the
// buckets.
const maxDelta = 4000

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
)

// setHead is the head document of a chunked set.
type setHead struct {
	Key      string            `bson:"_id"`
	Tenant   string            `bson:"tenant"`
	Provider provider.Provider `bson:"provider"`
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
	Key      string            `bson:"_id"`
	Tenant   string            `bson:"tenant"`
	Provider provider.Provider `bson:"provider"`
	Gen      string            `bson:"gen"`
	N        int               `bson:"n"`
	Data     []byte            `bson:"data"`
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

func setKey(tenant string, provider provider.Provider) string { return tenant + "/" + string(provider) }

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
func (c chunkSet[T]) head(ctx context.Context, tenant string, provider provider.Provider) (*setHead, error) {
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
func (c chunkSet[T]) load(ctx context.Context, tenant string, provider provider.Provider) (*loadedSet[T], error) {
	h, err := c.head(ctx, tenant, provider)
	if err != nil || h == nil || h.Gen == "" {
		return &loadedSet[T]{head: h}, err
	}
	return c.items(ctx, h)
}

// items reads the buckets of the set whose head is h, and applies its delta.
func (c chunkSet[T]) items(ctx context.Context, h *setHead) (*loadedSet[T], error) {
	if h.Format != chunkFormat && h.Format != 1 {
		return nil, fmt.Errorf("chunked set %s: format %d, this mapper reads %d", h.Key, h.Format, chunkFormat)
	}
	out := &loadedSet[T]{head: h, items: make([]T, 0, h.Count)}
	for i := range h.Buckets {
		var b bucketDoc
		k := bucketKey(h.Key, h.Gen, i)
		if err := c.coll().FindOne(ctx, bson.D{{Key: "_id", Value: k}}).Decode(&b); err != nil {
			return nil, fmt.Errorf("chunked set bucket %s: %w", k, err)
		}
		items, err := decodePayload[[]T](h.Format, b.Data)
		if err != nil {
			return nil, fmt.Errorf("chunked set bucket %s: %w", k, err)
		}
		out.items = append(out.items, items...)
	}
	if h.Format == 1 {
		return out, nil
	}
	d, err := c.delta(ctx, h.Key, h.Gen)
	if err != nil || len(d.Upserts)+len(d.Deletes) == 0 {
		return out, err
	}
	changed := make(map[string]bool, len(d.Upserts)+len(d.Deletes))
	for _, it := range d.Upserts {
		changed[c.key(it)] = true
	}
	for _, k := range d.Deletes {
		changed[k] = true
	}
	kept := out.items[:0]
	for _, it := range out.items {
		if !changed[c.key(it)] {
			kept = append(kept, it)
		}
	}
	out.items = append(kept, d.Upserts...)
	return out, nil
}

// deltaPayload is a delta document's content: items changed and keys removed since the buckets
// were written.
type deltaPayload[T any] struct {
	Upserts []T
	Deletes []string
}

func deltaKey(head, gen string) string { return head + "/" + gen + "/delta" }

// delta reads a generation's delta (empty when there is none).
func (c chunkSet[T]) delta(ctx context.Context, head, gen string) (deltaPayload[T], error) {
	var b bucketDoc
	err := c.coll().FindOne(ctx, bson.D{{Key: "_id", Value: deltaKey(head, gen)}}).Decode(&b)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return deltaPayload[T]{}, nil
	}
	if err != nil {
		return deltaPayload[T]{}, fmt.Errorf("chunked set delta %s: %w", deltaKey(head, gen), err)
	}
	return decodePayload[deltaPayload[T]](chunkFormat, b.Data)
}

func encodePayload(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return zenc.EncodeAll(buf.Bytes(), nil), nil
}

func decodePayload[V any](format int, data []byte) (V, error) {
	var v V
	var raw []byte
	var err error
	if format == 1 {
		raw, err = s2.Decode(nil, data)
	} else {
		raw, err = zdec.DecodeAll(data, nil)
	}
	if err != nil {
		return v, err
	}
	err = gob.NewDecoder(bytes.NewReader(raw)).Decode(&v)
	return v, err
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
func (c chunkSet[T]) save(ctx context.Context, tenant string, provider provider.Provider, prev *setHead, items []T, o saveOptions) (saved bool, err error) {
	coll := c.coll()
	hk := setKey(tenant, provider)
	now := c.now().UTC().Truncate(time.Millisecond)
	same := prev != nil && prev.Gen != "" && prev.Format == chunkFormat && layoutFits(prev.Buckets, len(items))
	nb, gen := bucketsFor(len(items)), rand.Text()
	if same {
		nb, gen = prev.Buckets, prev.Gen
	}
	// write says which buckets to rewrite; all of them for a new generation or when the caller
	// does not know what changed.
	write := make([]bool, nb)
	dropDelta := false
	if !same || o.changed == nil {
		for i := range write {
			write[i] = true
		}
		dropDelta = same
	} else if len(o.changed) > 0 {
		// The changes go to the delta; a delta grown past maxDelta is folded into its buckets.
		d, err := c.delta(ctx, hk, gen)
		if err != nil {
			return false, err
		}
		entries := make(map[string]*T, len(d.Upserts)+len(d.Deletes)+len(o.changed))
		for i := range d.Upserts {
			entries[c.key(d.Upserts[i])] = &d.Upserts[i]
		}
		for _, k := range d.Deletes {
			entries[k] = nil
		}
		changed := make(map[string]bool, len(o.changed))
		for _, k := range o.changed {
			changed[k] = true
			entries[k] = nil
		}
		for i := range items {
			if k := c.key(items[i]); changed[k] {
				entries[k] = &items[i]
			}
		}
		var next deltaPayload[T]
		for k, it := range entries {
			if it == nil {
				next.Deletes = append(next.Deletes, k)
			} else {
				next.Upserts = append(next.Upserts, *it)
			}
		}
		slices.Sort(next.Deletes)
		slices.SortFunc(next.Upserts, func(a, b T) int { return strings.Compare(c.key(a), c.key(b)) })
		data, err := encodePayload(next)
		if err != nil {
			return false, err
		}
		// The delta is written first: whatever happens next, buckets and delta together are the
		// set (a delta entry and a folded bucket hold the same item).
		dk := deltaKey(hk, gen)
		dd := bucketDoc{Key: dk, Tenant: tenant, Provider: provider, Gen: gen, N: len(entries), Data: data}
		if err := bulkWrite(ctx, coll, []mongo.WriteModel{replaceModel(keyed{dk, dd})}); err != nil {
			return false, err
		}
		if len(entries) > maxDelta {
			for k := range entries {
				write[bucketOf(k, nb)] = true
			}
			dropDelta = true
		}
	}
	var models []mongo.WriteModel
	if slices.Contains(write, true) {
		parts := make([][]T, nb)
		for _, it := range items {
			if i := bucketOf(c.key(it), nb); write[i] {
				parts[i] = append(parts[i], it)
			}
		}
		for i, part := range parts {
			if !write[i] {
				continue
			}
			slices.SortFunc(part, func(a, b T) int { return strings.Compare(c.key(a), c.key(b)) })
			data, err := encodePayload(part)
			if err != nil {
				return false, err
			}
			d := bucketDoc{Key: bucketKey(hk, gen, i), Tenant: tenant, Provider: provider, Gen: gen, N: len(part), Data: data}
			models = append(models, replaceModel(keyed{d.Key, d}))
		}
	}
	if dropDelta {
		models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: deltaKey(hk, gen)}}))
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

// deleteBuckets deletes a generation's buckets and delta.
func deleteBuckets(ctx context.Context, coll *mongo.Collection, hk, gen string, n int) error {
	models := make([]mongo.WriteModel, n, n+1)
	for i := range n {
		models[i] = mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: bucketKey(hk, gen, i)}})
	}
	models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: deltaKey(hk, gen)}}))
	return bulkWrite(ctx, coll, models)
}
