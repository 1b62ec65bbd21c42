// Package recordstate stores the writer's per-record state (ownership.RecordState) in the
// ownersync_records KV bucket (docs/architecture.md#kv-buckets): one JSON value per (tenant,
// provider, record type, record id), changed only with compare-and-set on the revision so that
// concurrent writers (replicas, redeliveries) never lose each other's updates.
package recordstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// Errors the KV adapter maps its store's errors to.
var (
	// ErrNotFound: Get found no value (jetstream.ErrKeyNotFound, or a deleted key).
	ErrNotFound = errors.New("record state not found")
	// ErrExists: Create found a value already there (jetstream.ErrKeyExists).
	ErrExists = errors.New("record state already exists")
	// ErrRevisionMismatch: Update's lastRevision is not the current one (JetStream "wrong last
	// sequence", API error 10071).
	ErrRevisionMismatch = errors.New("record state revision mismatch")
	// ErrContention: the update lost the compare-and-set race too many times in a row.
	ErrContention = errors.New("record state contended")
)

// KV is the part of a JetStream KeyValue bucket the store needs. The adapter maps "no such key" to
// ErrNotFound, "key exists" to ErrExists and "wrong last sequence" to ErrRevisionMismatch.
type KV interface {
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	Create(ctx context.Context, key string, value []byte) (revision uint64, err error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (revision uint64, err error)
}

// Key returns the bucket key of a record: <tenant>.<provider>.<record type>.<record id>, with each
// token escaped for KV keys and Salesforce ids in their 18-character form, so that the 15- and
// 18-character ids of one record share a key.
func Key(tenant string, p provider.Provider, recordType ownership.RecordType, recordID string) string {
	if p == provider.Salesforce {
		if id, err := sfid.To18(recordID); err == nil {
			recordID = id
		}
	}
	return streams.KVKey(tenant, string(p), string(recordType), recordID)
}

// value is the JSON form of a RecordState in the bucket. V is the format version.
type value struct {
	V                int       `json:"v"`
	AppliedOwner     string    `json:"applied_owner,omitempty"`
	AppliedAt        time.Time `json:"applied_at,omitzero"`
	AppliedEventID   string    `json:"applied_event_id,omitempty"`
	WrittenOwner     string    `json:"written_owner,omitempty"`
	WrittenAt        time.Time `json:"written_at,omitzero"`
	Pending          bool      `json:"pending,omitempty"`
	PlatformRecordID string    `json:"platform_record_id,omitempty"`
	RecordEmail      string    `json:"record_email,omitempty"`
}

const version = 1

// Encode returns the bucket value of s.
func Encode(s ownership.RecordState) ([]byte, error) {
	return json.Marshal(value{
		V:                version,
		AppliedOwner:     s.AppliedOwner,
		AppliedAt:        s.AppliedAt.UTC(),
		AppliedEventID:   s.AppliedEventID,
		WrittenOwner:     s.WrittenOwner,
		WrittenAt:        s.WrittenAt.UTC(),
		Pending:          s.Pending,
		PlatformRecordID: s.PlatformRecordID,
		RecordEmail:      s.RecordEmail,
	})
}

// Decode reads a bucket value. Unknown fields are ignored, so that a newer writer's values stay
// readable; a newer format version is an error.
func Decode(b []byte) (ownership.RecordState, error) {
	var v value
	if err := json.Unmarshal(b, &v); err != nil {
		return ownership.RecordState{}, fmt.Errorf("decode record state: %w", err)
	}
	if v.V > version {
		return ownership.RecordState{}, fmt.Errorf("decode record state: format version %d is newer than %d", v.V, version)
	}
	return ownership.RecordState{
		AppliedOwner:     v.AppliedOwner,
		AppliedAt:        v.AppliedAt,
		AppliedEventID:   v.AppliedEventID,
		WrittenOwner:     v.WrittenOwner,
		WrittenAt:        v.WrittenAt,
		Pending:          v.Pending,
		PlatformRecordID: v.PlatformRecordID,
		RecordEmail:      v.RecordEmail,
	}, nil
}

// Store reads and updates record states in a KV bucket. It remembers the last state and revision
// it saw per key (a bounded cache), so that an update of a key it knows is usually one
// compare-and-set without a read first, and the first write of a key it does not know is tried as
// a create (one round trip when the record is new); the revision check, and the create's "exists"
// check, keep that safe when another writer got there first.
type Store struct {
	kv          KV
	maxAttempts int

	mu    sync.Mutex
	known map[string]knownState
}

type knownState struct {
	state ownership.RecordState
	rev   uint64
}

// knownLimit bounds the cache; past it the cache starts over.
const knownLimit = 1 << 16

func (s *Store) remember(key string, st ownership.RecordState, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.known) >= knownLimit {
		clear(s.known)
	}
	s.known[key] = knownState{state: st, rev: rev}
}

func (s *Store) recall(key string) (knownState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.known[key]
	return k, ok
}

func (s *Store) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.known, key)
}

// DefaultMaxAttempts bounds how often Update retries a lost compare-and-set before giving up with
// ErrContention (which callers treat as transient: the message is redelivered later).
const DefaultMaxAttempts = 20

// NewStore returns a Store over kv.
func NewStore(kv KV) *Store {
	return &Store{kv: kv, maxAttempts: DefaultMaxAttempts, known: map[string]knownState{}}
}

// Get returns the state of key and whether it exists.
func (s *Store) Get(ctx context.Context, key string) (ownership.RecordState, bool, error) {
	st, _, ok, err := s.get(ctx, key)
	return st, ok, err
}

func (s *Store) get(ctx context.Context, key string) (ownership.RecordState, uint64, bool, error) {
	b, rev, err := s.kv.Get(ctx, key)
	if errors.Is(err, ErrNotFound) || err == nil && len(b) == 0 {
		return ownership.RecordState{}, 0, false, nil
	}
	if err != nil {
		return ownership.RecordState{}, 0, false, fmt.Errorf("get record state %s: %w", key, err)
	}
	st, err := Decode(b)
	if err != nil {
		return ownership.RecordState{}, 0, false, fmt.Errorf("%s: %w", key, err)
	}
	s.remember(key, st, rev)
	return st, rev, true, nil
}

// UpdateFunc computes the next state from the current one (ownership.UpdateFunc).
type UpdateFunc = ownership.UpdateFunc

// UpdateRecord is Update on the key of r (the engine names records, not keys).
func (s *Store) UpdateRecord(ctx context.Context, r ownership.RecordRef, fn UpdateFunc) (ownership.RecordState, error) {
	return s.Update(ctx, Key(r.Tenant, r.Provider, r.RecordType, r.RecordID), fn)
}

// Update applies fn to key's state with compare-and-set, re-reading and re-applying fn whenever
// another writer changed the state in between. It returns the state in the bucket afterwards (fn's
// result, or the current state when fn chose not to write). An error from fn is returned as is.
func (s *Store) Update(ctx context.Context, key string, fn UpdateFunc) (ownership.RecordState, error) {
	// Optimistic first try on the state last seen: only when fn wants to write, since a decision
	// not to write must rest on the current state, which only a read shows.
	if k, ok := s.recall(key); ok {
		next, write, err := fn(k.state, true)
		if err == nil && write {
			b, err := Encode(next)
			if err != nil {
				return ownership.RecordState{}, fmt.Errorf("encode record state %s: %w", key, err)
			}
			rev, err := s.kv.Update(ctx, key, b, k.rev)
			switch {
			case err == nil:
				s.remember(key, next, rev)
				return next, nil
			case errors.Is(err, ErrRevisionMismatch), errors.Is(err, ErrExists), errors.Is(err, ErrNotFound):
				s.forget(key) // stale: read it below
			default:
				return ownership.RecordState{}, fmt.Errorf("write record state %s: %w", key, err)
			}
		}
	} else if next, write, err := fn(ownership.RecordState{}, false); err == nil && write {
		// A key this store has not seen is most often a record nobody has written yet: try to
		// create it, one round trip; if it exists after all, Create fails and it is read below.
		// Only when fn wants to write: a decision not to write must rest on a read.
		b, err := Encode(next)
		if err != nil {
			return ownership.RecordState{}, fmt.Errorf("encode record state %s: %w", key, err)
		}
		rev, err := s.kv.Create(ctx, key, b)
		switch {
		case err == nil:
			s.remember(key, next, rev)
			return next, nil
		case errors.Is(err, ErrExists), errors.Is(err, ErrRevisionMismatch):
		default:
			return ownership.RecordState{}, fmt.Errorf("write record state %s: %w", key, err)
		}
	}
	for attempt := 0; attempt < s.maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return ownership.RecordState{}, err
		}
		cur, rev, exists, err := s.get(ctx, key)
		if err != nil {
			return ownership.RecordState{}, err
		}
		next, write, err := fn(cur, exists)
		if err != nil || !write {
			return cur, err
		}
		b, err := Encode(next)
		if err != nil {
			return ownership.RecordState{}, fmt.Errorf("encode record state %s: %w", key, err)
		}
		var newRev uint64
		if exists {
			newRev, err = s.kv.Update(ctx, key, b, rev)
		} else {
			newRev, err = s.kv.Create(ctx, key, b)
		}
		switch {
		case err == nil:
			s.remember(key, next, newRev)
			return next, nil
		case errors.Is(err, ErrRevisionMismatch), errors.Is(err, ErrExists):
			continue // someone else wrote first: read again and re-decide
		default:
			return ownership.RecordState{}, fmt.Errorf("write record state %s: %w", key, err)
		}
	}
	return ownership.RecordState{}, fmt.Errorf("update record state %s after %d attempts: %w", key, s.maxAttempts, ErrContention)
}

// Prefix returns the key prefix of every record of a tenant (for watching or purging a tenant).
func Prefix(tenant string) string { return streams.KVKey(tenant) + "." }

// Links stores which CRM record a platform record is, per (tenant, provider, record type), in the
// same bucket as the record states under keys <tenant>.<provider>.<record type>.link.<platform id>
// (five tokens, so they never collide with a record's four). The writer stores a link when it found
// a CRM record by email, so the next change of that record needs no search.
type Links struct {
	kv KV
}

// NewLinks returns a Links over kv.
func NewLinks(kv KV) *Links { return &Links{kv: kv} }

// LinkKey is the bucket key of a platform record's link.
func LinkKey(tenant string, provider provider.Provider, recordType ownership.RecordType, platformRecordID string) string {
	return streams.KVKey(tenant, string(provider), string(recordType), "link", platformRecordID)
}

// Link returns the CRM record id linked to a platform record, and whether there is one.
func (l *Links) Link(ctx context.Context, tenant string, provider provider.Provider, recordType ownership.RecordType, platformRecordID string) (string, bool, error) {
	key := LinkKey(tenant, provider, recordType, platformRecordID)
	b, _, err := l.kv.Get(ctx, key)
	if errors.Is(err, ErrNotFound) || err == nil && len(b) == 0 {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get record link %s: %w", key, err)
	}
	return string(b), true, nil
}

// SaveLink links a platform record to a CRM record, replacing an older link; saving the link that
// is already there writes nothing.
func (l *Links) SaveLink(ctx context.Context, tenant string, provider provider.Provider, recordType ownership.RecordType, platformRecordID, crmRecordID string) error {
	key := LinkKey(tenant, provider, recordType, platformRecordID)
	for attempt := 0; attempt < DefaultMaxAttempts; attempt++ {
		b, rev, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			_, err = l.kv.Create(ctx, key, []byte(crmRecordID))
		case err != nil:
			return fmt.Errorf("get record link %s: %w", key, err)
		case string(b) == crmRecordID:
			return nil
		default:
			_, err = l.kv.Update(ctx, key, []byte(crmRecordID), rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrExists) && !errors.Is(err, ErrRevisionMismatch) {
			return fmt.Errorf("save record link %s: %w", key, err)
		}
	}
	return fmt.Errorf("save record link %s: %w", key, ErrContention)
}
