// Package coord is what replicas of one service agree on through the JetStream KV bucket
// ownersync_coord (docs/architecture.md#kv-buckets), with compare-and-set on a key's revision and
// no server besides NATS: a read-modify-write that retries when another replica wrote first
// (Update), a lease with an expiry that one holder at a time owns (Acquire, Renew, Release: a
// killed holder blocks nobody past its expiry), and a claim that exactly one replica wins (Claim).
//
// Expiries are wall-clock times written by the replicas: their clocks must agree to well under a
// lease's length (NTP), as they must for the rest of ownersync's time handling.
package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConflict is returned by Update when every attempt lost the compare-and-set to other writers.
var ErrConflict = errors.New("coord: too many concurrent updates")

// maxAttempts bounds Update's compare-and-set retries.
const maxAttempts = 64

// Update reads key, calls fn with its value (nil and false when the key does not exist) and writes
// what fn returns if nobody wrote key in between; otherwise it reads again and retries. fn returns
// write=false to leave the key as it is. It returns the value in force afterwards.
func Update(ctx context.Context, kv jetstream.KeyValue, key string, fn func(cur []byte, exists bool) (next []byte, write bool, err error)) ([]byte, error) {
	for attempt := range maxAttempts {
		var cur []byte
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		case err != nil:
			return nil, fmt.Errorf("coord: read %s: %w", key, err)
		default:
			cur, rev = e.Value(), e.Revision()
		}
		next, write, err := fn(cur, rev != 0)
		if err != nil {
			return nil, err
		}
		if !write {
			return cur, nil
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, next)
		} else {
			_, err = kv.Update(ctx, key, next, rev)
		}
		if err == nil {
			return next, nil
		}
		if !lostRace(err) {
			return nil, fmt.Errorf("coord: write %s: %w", key, err)
		}
		// Lost to another writer: wait a random moment that grows with the attempts, so that
		// writers contending for one key spread out instead of colliding in lockstep (without it
		// 8 writers on one key lost 64 times in a row in most runs of TestUpdateLosesNoWrite).
		t := time.NewTimer(rand.N(time.Duration(min(attempt+1, 16)) * time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return nil, fmt.Errorf("%w on %s", ErrConflict, key)
}

// lostRace reports the answers to a compare-and-set that lost: the key exists (Create), or its
// revision moved on (JetStream API error 10071, or 10164 on replicated streams).
func lostRace(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Lease is a lease's state as stored under its key.
type Lease struct {
	// Holder names the replica holding the lease (process id, host); Token tells its acquisitions
	// apart, so that a holder that lost the lease and took it again does not renew an old one.
	Holder string    `json:"holder"`
	Token  string    `json:"token"`
	Until  time.Time `json:"until"`
	// Since is when the holder acquired it.
	Since time.Time `json:"since"`
}

// HeldError says a lease is held by another holder until Until.
type HeldError struct {
	Key    string
	Holder string
	Until  time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is held by %s until %s", e.Key, e.Holder, e.Until.UTC().Format(time.RFC3339Nano))
}

// ErrLost is returned by Renew and Release when the lease is no longer the caller's (it expired
// and another holder took it).
var ErrLost = errors.New("coord: lease lost")

// Acquire takes the lease under key for holder until now+ttl, when nobody holds it or its holder's
// expiry has passed. Otherwise it returns a *HeldError. token identifies this acquisition.
func Acquire(ctx context.Context, kv jetstream.KeyValue, key, holder, token string, ttl time.Duration, now time.Time) (Lease, error) {
	var got Lease
	_, err := Update(ctx, kv, key, func(cur []byte, exists bool) ([]byte, bool, error) {
		if exists && len(cur) > 0 {
			var l Lease
			if err := json.Unmarshal(cur, &l); err == nil && l.Token != "" && l.Until.After(now) && l.Token != token {
				return nil, false, &HeldError{Key: key, Holder: l.Holder, Until: l.Until}
			}
		}
		got = Lease{Holder: holder, Token: token, Until: now.Add(ttl), Since: now}
		b, err := json.Marshal(got)
		return b, true, err
	})
	return got, err
}

// Renew extends the caller's lease (its token) to now+ttl; ErrLost when it is another's.
func Renew(ctx context.Context, kv jetstream.KeyValue, key, token string, ttl time.Duration, now time.Time) (Lease, error) {
	var got Lease
	_, err := Update(ctx, kv, key, func(cur []byte, exists bool) ([]byte, bool, error) {
		var l Lease
		if !exists || json.Unmarshal(cur, &l) != nil || l.Token != token {
			return nil, false, ErrLost
		}
		l.Until = now.Add(ttl)
		got = l
		b, err := json.Marshal(l)
		return b, true, err
	})
	return got, err
}

// Release gives the caller's lease up, so the next holder need not wait for the expiry; ErrLost
// when it is no longer the caller's (nothing is changed then).
func Release(ctx context.Context, kv jetstream.KeyValue, key, token string) error {
	_, err := Update(ctx, kv, key, func(cur []byte, exists bool) ([]byte, bool, error) {
		var l Lease
		if !exists || json.Unmarshal(cur, &l) != nil || l.Token != token {
			return nil, false, ErrLost
		}
		l.Token, l.Until = "", time.Time{}
		b, err := json.Marshal(l)
		return b, true, err
	})
	return err
}

// ClaimState is a claim as stored under its key.
type ClaimState struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
	Done  bool      `json:"done,omitempty"`
	At    time.Time `json:"at"`
}

// Claim makes owner the one replica that does the work named by key (send one digest, one report):
// it wins when nobody claimed key, or when the claimer neither finished (Done) nor renewed its claim
// before it expired (a killed replica), so the work is done once and not lost with a crashed
// claimer. A finished claim is never won again; it stays for the bucket's MaxAge. It returns the
// state in force (the winner's, when owner lost).
func Claim(ctx context.Context, kv jetstream.KeyValue, key, owner string, ttl time.Duration, now time.Time) (won bool, st ClaimState, err error) {
	_, err = Update(ctx, kv, key, func(cur []byte, exists bool) ([]byte, bool, error) {
		won = false
		if exists && len(cur) > 0 {
			if json.Unmarshal(cur, &st) == nil && (st.Done || (st.Owner != owner && st.Until.After(now))) {
				return nil, false, nil
			}
		}
		st = ClaimState{Owner: owner, Until: now.Add(ttl), At: now}
		won = true
		b, err := json.Marshal(st)
		return b, true, err
	})
	if err != nil {
		return false, ClaimState{}, err
	}
	return won, st, nil
}

// Done marks owner's claim of key finished, so that nobody claims it again; ErrLost when the claim
// is another's now (owner's expired and another replica took it over).
func Done(ctx context.Context, kv jetstream.KeyValue, key, owner string, now time.Time) error {
	_, err := Update(ctx, kv, key, func(cur []byte, exists bool) ([]byte, bool, error) {
		var st ClaimState
		if !exists || json.Unmarshal(cur, &st) != nil || st.Owner != owner {
			return nil, false, ErrLost
		}
		if st.Done {
			return nil, false, nil
		}
		st.Done, st.At = true, now
		b, err := json.Marshal(st)
		return b, true, err
	})
	return err
}
