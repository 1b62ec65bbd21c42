package recordstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamKV adapts a JetStream KeyValue bucket (streams.RecordsBucket) to KV, mapping its errors
// to this package's sentinels.
type JetStreamKV struct {
	kv jetstream.KeyValue
}

// NewJetStreamKV returns the adapter over kv.
func NewJetStreamKV(kv jetstream.KeyValue) *JetStreamKV { return &JetStreamKV{kv: kv} }

var _ KV = (*JetStreamKV)(nil)

// Get returns the value and revision of key, or ErrNotFound (also for a deleted or purged key).
func (j *JetStreamKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := j.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

// Create stores a new key, or returns ErrExists.
func (j *JetStreamKV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := j.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return 0, fmt.Errorf("%w: %w", ErrExists, err)
	}
	return rev, err
}

// Update replaces key if its revision is still lastRevision, or returns ErrRevisionMismatch.
func (j *JetStreamKV) Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error) {
	rev, err := j.kv.Update(ctx, key, value, lastRevision)
	if isWrongLastSequence(err) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%w: %w", ErrRevisionMismatch, err)
	}
	return rev, err
}

// isWrongLastSequence reports JetStream's "wrong last sequence" (API error 10071, or 10164 on
// replicated streams), the answer to a compare-and-set that lost.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
