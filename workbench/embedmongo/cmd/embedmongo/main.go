// Command embedmongo runs the embedded FerretDB (package embedmongo) as a process of its own. It
// prints the server's mongodb:// URI as its first line on stdout, then serves until it is signalled
// or its standard input closes (the parent that started it is gone). Package mongoproc starts it for
// modules that must not link FerretDB themselves: the services' and libs' tests, syncbench. With
// OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL set (scripts/ferretdb-postgres.sh starts a throwaway cluster)
// every such server runs on FerretDB's PostgreSQL backend instead.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ownersync/ownersync/workbench/embedmongo"
)

func main() {
	dir := flag.String("dir", "", "directory of the SQLite databases (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0: the system picks one and binds it)")
	pg := flag.String("postgresql-url", os.Getenv("OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL"),
		"run on FerretDB's PostgreSQL backend at this postgres:// URL instead of SQLite in -dir (default $OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := embedmongo.Start(ctx, embedmongo.Options{Dir: *dir, Addr: *addr, PostgreSQLURL: *pg})
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedmongo:", err)
		os.Exit(1)
	}
	fmt.Println(s.URI())
	go func() {
		// The parent holds our stdin open while it wants us; EOF means it closed it or died.
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		stop()
	}()
	<-ctx.Done()
	s.Stop()
}
