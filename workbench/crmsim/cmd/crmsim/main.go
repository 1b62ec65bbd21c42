// Command crmsim runs the Salesforce and HubSpot sandboxes alone, seeded from a file, until it is
// interrupted. See package sandbox for the seed format.
//
//	crmsim -seed seed.yaml -sf-addr 127.0.0.1:8081 -hs-addr 127.0.0.1:8082 \
//	  -sf-outbound-url http://127.0.0.1:8080/webhooks/salesforce -hs-webhook-url http://127.0.0.1:8080/webhooks/hubspot
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ownersync/ownersync/workbench/crmsim/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "crmsim:", err)
		os.Exit(1)
	}
}

// run parses flags, starts the sandboxes, prints their URLs and blocks until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	seed := fs.String("seed", getenv("CRMSIM_SEED"), "seed file (YAML or JSON); empty uses the built-in demo seed")
	empty := fs.Bool("empty", false, "start with no data instead of the demo seed (when -seed is empty)")
	sfAddr := fs.String("sf-addr", "127.0.0.1:8081", "Salesforce sandbox listen address")
	hsAddr := fs.String("hs-addr", "127.0.0.1:8082", "HubSpot sandbox listen address")
	omURL := fs.String("sf-outbound-url", "", "Outbound Message endpoint URL (overrides the seed)")
	omKey := fs.String("sf-outbound-key", "", "shared key appended to the Outbound Message URL as ?key=")
	hookURL := fs.String("hs-webhook-url", "", "HubSpot webhook target URL (overrides the seed)")
	hookSecret := fs.String("hs-client-secret", getenv("CRMSIM_HS_CLIENT_SECRET"), "HubSpot app client secret that signs webhooks (overrides the seed)")
	noSF := fs.Bool("no-salesforce", false, "do not start the Salesforce sandbox")
	noHS := fs.Bool("no-hubspot", false, "do not start the HubSpot sandbox")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var f sandbox.File
	switch {
	case *seed != "":
		var err error
		if f, err = sandbox.ReadFile(*seed); err != nil {
			return err
		}
	case !*empty:
		f = sandbox.Demo()
	}
	if f.Salesforce == nil && !*noSF {
		f.Salesforce = &sandbox.Salesforce{}
	}
	if f.HubSpot == nil && !*noHS {
		f.HubSpot = &sandbox.HubSpot{}
	}
	if *noSF {
		f.Salesforce = nil
	}
	if *noHS {
		f.HubSpot = nil
	}
	if f.Salesforce != nil {
		if *omURL != "" {
			f.Salesforce.Outbound.URL = *omURL
		}
		if *omKey != "" {
			f.Salesforce.Outbound.Key = *omKey
		}
	}
	if f.HubSpot != nil {
		if *hookURL != "" {
			f.HubSpot.Webhooks.TargetURL = *hookURL
		}
		if *hookSecret != "" {
			f.HubSpot.ClientSecret = *hookSecret
		}
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil))
	sb, err := sandbox.Start(f, sandbox.Options{SalesforceAddr: *sfAddr, HubSpotAddr: *hsAddr, Logger: logger})
	if err != nil {
		return err
	}
	defer sb.Close()
	if sb.Salesforce != nil {
		logger.Info("salesforce sandbox ready", "url", sb.SalesforceURL, "orgId", sb.Salesforce.OrgID(),
			"users", len(sb.Salesforce.Users()), "outbound", f.Salesforce.Outbound.URL != "")
	}
	if sb.HubSpot != nil {
		logger.Info("hubspot sandbox ready", "url", sb.HubSpotURL, "portalId", sb.HubSpot.PortalID(),
			"owners", len(sb.HubSpot.Owners()), "webhooks", f.HubSpot.Webhooks.TargetURL != "")
	}
	<-ctx.Done()
	logger.Info("shutting down")
	return nil
}
