// Command mapper keeps the user mappings, runs Sync Users and serves the admin API and console.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ownersync/ownersync/services/mapper/mapper"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := mapper.Run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mapper:", err)
		os.Exit(1)
	}
}
