package mongostore

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// smallWrite is the size up to which a write is made document by document whatever the
// BulkWrites option (each replacement atomic).
const smallWrite = 8

// deleteInChunk bounds the ids of one DeleteMany {_id: {$in: …}}.
const deleteInChunk = 20000

// MaxStatements bounds the statements (ReplaceOne, UpdateOne, DeleteOne models) of one update or
// delete command. FerretDB v1's update handler holds one backend connection per matched statement
// until the command ends, so a command of more than about 100 matched statements (SQLite; about 50
// on PostgreSQL) waits forever for a connection; 40 was measured safe on both. Inserts are not
// statements of that kind: InsertMany keeps its larger chunks (insertChunk).
const MaxStatements = 40

// insertChunk bounds the documents of one InsertMany, so that a 100k-user run never builds one
// huge request (FerretDB handles each call as one unit).
const insertChunk = 2000

// keyed is a document and its _id.
type keyed struct {
	key string
	doc any
}

// BulkWrites says how a bulk change replaces documents.
type BulkWrites string

const (
	// PerDocument replaces each document by its _id in chunked bulk commands, each replacement
	// atomic: right for MongoDB, where a write by _id is an index lookup.
	PerDocument BulkWrites = "per_document"
	// DeleteInsert replaces a bulk change's documents by one DeleteMany {_id: {$in}} per 20k ids
	// followed by InsertMany: for a FerretDB v1 without the embedded server's index on the _id
	// expression (workbench/embedmongo), where every filtered write, even by _id, scans the
	// collection (docs/architecture.md#embedded-ferretdb: 8–55 ms each at 50k documents). The price is a window, between the two calls,
	// in which the replaced documents are absent; a crash inside it loses them until the next
	// Sync Users. Changes of at most smallWrite documents stay per document.
	DeleteInsert BulkWrites = "delete_insert"
)

// deleteInsert reports whether a change of n replaced or deleted documents goes delete+insert.
func (s *Store) deleteInsert(n int) bool { return s.bulk == DeleteInsert && n > smallWrite }

// write makes a bulk change to coll: inserts are documents believed new (a replay finding them is
// handled), replaces may exist or not, deletes are ids to remove.
func (s *Store) write(ctx context.Context, coll *mongo.Collection, inserts, replaces []keyed, deletes []string) error {
	if s.deleteInsert(len(replaces) + len(deletes)) {
		ids := append([]string{}, deletes...)
		for _, r := range replaces {
			ids = append(ids, r.key)
		}
		if err := deleteIn(ctx, coll, ids); err != nil {
			return err
		}
		inserts = append(append([]keyed{}, inserts...), replaces...)
		replaces = nil
		deletes = nil
	}
	var models []mongo.WriteModel
	for _, id := range deletes {
		models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}))
	}
	if err := bulkWrite(ctx, coll, models); err != nil {
		return err
	}
	docs := make([]any, len(inserts))
	for i, k := range inserts {
		docs[i] = k.doc
	}
	var existing []keyed
	if err := insertManyIdx(ctx, coll, docs, func(i int) {
		existing = append(existing, inserts[i])
	}); err != nil {
		return err
	}
	if s.deleteInsert(len(existing)) {
		// A replay found many documents already there: replace them as the bulk path above
		// does, instead of one scan per document.
		ids := make([]string, len(existing))
		again := make([]any, len(existing))
		for i, k := range existing {
			ids[i], again[i] = k.key, k.doc
		}
		if err := deleteIn(ctx, coll, ids); err != nil {
			return err
		}
		if err := insertManyIdx(ctx, coll, again, nil); err != nil {
			return err
		}
		existing = nil
	}
	models = models[:0]
	for _, r := range append(existing, replaces...) {
		models = append(models, replaceModel(r))
	}
	return bulkWrite(ctx, coll, models)
}

func replaceModel(k keyed) mongo.WriteModel {
	return mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: k.key}}).SetReplacement(k.doc).SetUpsert(true)
}

// insertManyIdx inserts docs in unordered chunks; the index of a document that already exists (a
// replay) is handed to onDuplicate instead of failing the call.
func insertManyIdx(ctx context.Context, coll *mongo.Collection, docs []any, onDuplicate func(i int)) error {
	for start := 0; start < len(docs); start += insertChunk {
		chunk := docs[start:min(start+insertChunk, len(docs))]
		_, err := coll.InsertMany(ctx, chunk, options.InsertMany().SetOrdered(false))
		if err == nil {
			continue
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return err
		}
		for _, we := range bwe.WriteErrors {
			if we.Code != 11000 || onDuplicate == nil {
				return err
			}
			onDuplicate(start + we.Index)
		}
	}
	return nil
}

// bulkWrite runs models in ordered commands of at most MaxStatements each.
func bulkWrite(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) error {
	for start := 0; start < len(models); start += MaxStatements {
		if _, err := coll.BulkWrite(ctx, models[start:min(start+MaxStatements, len(models))]); err != nil {
			return err
		}
	}
	return nil
}

// deleteIn deletes documents by id with one DeleteMany per chunk.
func deleteIn(ctx context.Context, coll *mongo.Collection, ids []string) error {
	for start := 0; start < len(ids); start += deleteInChunk {
		chunk := ids[start:min(start+deleteInChunk, len(ids))]
		if _, err := coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: chunk}}}}); err != nil {
			return err
		}
	}
	return nil
}
