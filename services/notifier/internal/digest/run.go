package digest

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// SendFunc delivers one batch (renders and mails the digest). A nil error marks the batch sent; an
// error puts its items back for the next tick, up to Options.MaxAttempts times (an error marked
// Permanent not at all), after which the batch goes to Options.GiveUp.
type SendFunc[T any] func(ctx context.Context, b Batch[T]) error

// Run takes due batches every tick until ctx ends and hands each to send, then records the result
// with Sent or Failed. now is the clock (time.Now in production). Failures are logged here, at the
// edge that decides to retry them; when ctx ends Run returns ctx.Err(), and batches still pending
// stay in d.
func (d *Digester[T]) Run(ctx context.Context, tick time.Duration, now func() time.Time, logger *slog.Logger, send SendFunc[T]) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		d.Flush(ctx, now, logger, send)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Flush sends every batch due now, once. Run calls it every tick; tests and shutdown may call it
// directly. A nil logger discards.
func (d *Digester[T]) Flush(ctx context.Context, now func() time.Time, logger *slog.Logger, send SendFunc[T]) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for _, b := range d.Due(now()) {
		if err := send(ctx, b); err != nil {
			var nd notDueError
			var se sentElsewhereError
			if errors.As(err, &se) {
				d.Sent(b, se.last)
				continue
			}
			if errors.As(err, &nd) {
				d.Requeue(b, nd.last)
				logger.Debug("alert digest not due: another replica sent one", "tenant", b.Tenant, "last", nd.last)
				continue
			}
			if d.Failed(b, err) {
				logger.Error("alert digest given up; dead-lettered", "tenant", b.Tenant, "alerts", len(b.Items), "error", err)
				if d.giveUp != nil {
					d.giveUp(ctx, b, err)
				}
				continue
			}
			logger.Warn("alert digest not sent, will retry", "tenant", b.Tenant, "alerts", len(b.Items), "error", err)
			continue
		}
		d.Sent(b, now())
	}
}
