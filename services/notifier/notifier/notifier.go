// Package notifier runs the notifier service: the one way to start it, used by its main, the dev stack
// and tests.
package notifier

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/notifier/internal/config"
)

// Run starts notifier and blocks until ctx is cancelled or a part fails.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	base, err := servicekit.Start(ctx, cfg.Base, getenv, stdout)
	if err != nil {
		return err
	}
	defer base.Close(context.WithoutCancel(ctx))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { base.Ready(gctx); return nil })
	return g.Wait()
}
