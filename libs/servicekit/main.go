package servicekit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/ownersync/ownersync/libs/envconfig"
)

// Commit is the VCS revision of the build, set with -ldflags "-X …/servicekit.Commit=…".
var Commit = "unknown"

// Exit codes of a service binary.
const (
	ExitRuntime = 1 // the service started and failed, or could not reach a dependency
	ExitConfig  = 2 // the configuration is invalid (every problem is printed), or bad flags
)

// Main is a service binary's main: -h lists the configuration variables with their defaults,
// -version prints the version and commit, and the exit code tells a configuration error (2) from
// a runtime failure (1). It returns the exit code.
func Main(name string, run RunFunc, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the version and commit and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-version]\n\n%s is configured by environment variables:\n\n", name, name)
		printVars(stderr, name, run)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return ExitConfig
	}
	if *version {
		fmt.Fprintf(stdout, "%s %s (commit %s)\n", name, Version, Commit)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, Env{Args: args, Getenv: getenv, Stdout: stdout})
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	var ce *envconfig.Error
	if errors.As(err, &ce) {
		return ExitConfig
	}
	return ExitRuntime
}

// printVars lists the variables the service's configuration reads: loading it with an empty
// environment fails on the required ones and the error carries every variable read.
func printVars(w io.Writer, name string, run RunFunc) {
	err := run(context.Background(), Env{Args: []string{name}, Getenv: func(string) string { return "" }, Stdout: io.Discard})
	var ce *envconfig.Error
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, "  (the variables could not be listed)")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT")
	for _, v := range ce.Vars {
		def := v.Default
		if v.Required {
			def = "(required)"
		} else if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, def)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nOTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER,\nOTEL_EXPORTER_OTLP_*) work as the OpenTelemetry specification says.")
}
