// Package coordkv is the mapper's edge to the ownersync_coord KV bucket (libs/coord): the rule
// lease per (tenant, provider) that serialises rule runs across mapper replicas (it implements
// changes.Leases), and the claim that lets one replica fire a due Sync Users schedule (it
// implements syncusers.Claims). A lease expires TTL after its last renewal, so a killed holder
// blocks the others for at most TTL; a live holder renews it every TTL/3.
package coordkv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/coord"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// Options configure a KV; zero values take the defaults.
type Options struct {
	// KV is the ownersync_coord bucket. Required.
	KV jetstream.KeyValue
	// Holder names this replica in the leases (default host name and process id).
	Holder string
	// TTL is how long a lease lives without renewal (default 30 s); ClaimTTL how long a claim that
	// was neither finished nor renewed keeps others off (default 2 min).
	TTL, ClaimTTL time.Duration
	// Poll is how often a waiter tries a held lease again (default 100 ms).
	Poll time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// KV implements the leases and claims.
type KV struct{ o Options }

// New returns a KV over o.KV.
func New(o Options) *KV {
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = host + "/" + strconv.Itoa(os.Getpid())
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 2 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &KV{o: o}
}

func token() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Acquire takes the lease named name (changes.Leases): it waits up to wait for a holder to release
// it or to expire (negative: as long as ctx lasts) and then returns domain.ErrBusy. The lease is
// renewed until the returned release is called. Errors reaching the bucket are retried like a held
// lease.
func (k *KV) Acquire(ctx context.Context, name string, wait time.Duration) (func(), error) {
	key := streams.KVKey("lease", name)
	tok := token()
	var deadline time.Time
	if wait >= 0 {
		deadline = time.Now().Add(wait)
	}
	for {
		_, err := coord.Acquire(ctx, k.o.KV, key, k.o.Holder, tok, k.o.TTL, k.o.Now())
		if err == nil {
			return k.hold(key, tok), nil
		}
		var held *coord.HeldError
		if !errors.As(err, &held) {
			k.o.Log.Warn("rule lease: bucket unavailable, retrying", "lease", name, "err", err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pause := k.o.Poll
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				if held != nil {
					return nil, fmt.Errorf("rule lease %s held by %s until %s: %w", name, held.Holder, held.Until.Format(time.RFC3339), domain.ErrBusy)
				}
				return nil, fmt.Errorf("rule lease %s: %v: %w", name, err, domain.ErrBusy)
			}
			pause = min(pause, left)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// hold renews the lease until the returned release is called, which gives it up.
func (k *KV) hold(key, tok string) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(k.o.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), k.o.TTL/3)
				_, err := coord.Renew(ctx, k.o.KV, key, tok, k.o.TTL, k.o.Now())
				cancel()
				if errors.Is(err, coord.ErrLost) {
					k.o.Log.Error("rule lease lost before the run ended (not renewed within its TTL)", "lease", key)
					return
				}
				if err != nil {
					k.o.Log.Warn("rule lease: renewal failed, retrying", "lease", key, "err", err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := coord.Release(ctx, k.o.KV, key, tok); err != nil && !errors.Is(err, coord.ErrLost) {
			k.o.Log.Warn("rule lease: release failed (it expires by itself)", "lease", key, "err", err)
		}
	}
}

// Claim implements syncusers.Claims: it returns won for the one replica that does the work named by
// key; done marks it finished so that no other replica ever does it.
func (k *KV) Claim(ctx context.Context, key string) (bool, func(), error) {
	key = streams.KVKey("claim", key)
	owner := k.o.Holder + "/" + token()
	won, _, err := coord.Claim(ctx, k.o.KV, key, owner, k.o.ClaimTTL, k.o.Now())
	if err != nil || !won {
		return false, func() {}, err
	}
	return true, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := coord.Done(ctx, k.o.KV, key, owner, k.o.Now()); err != nil {
			k.o.Log.Warn("claim: marking done failed", "claim", key, "err", err)
		}
	}, nil
}
