package changes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/changes"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

func TestLockWithin(t *testing.T) {
	w := changes.New(nil, nil, nil, nil)
	unlock := w.Lock("acme", "salesforce")
	if _, err := w.LockWithin(context.Background(), "acme", "salesforce", 20*time.Millisecond); !errors.Is(err, domain.ErrBusy) {
		t.Fatalf("second lock: %v, want ErrBusy", err)
	}
	other, err := w.LockWithin(context.Background(), "acme", "hubspot", 0)
	if err != nil {
		t.Fatalf("another provider is independent: %v", err)
	}
	other()
	done := make(chan error, 1)
	go func() {
		u, err := w.LockWithin(context.Background(), "acme", "salesforce", 5*time.Second)
		if err == nil {
			u()
		}
		done <- err
	}()
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("waiter after unlock: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	unlock = w.Lock("acme", "salesforce")
	defer unlock()
	cancel()
	if _, err := w.LockWithin(ctx, "acme", "salesforce", -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}
