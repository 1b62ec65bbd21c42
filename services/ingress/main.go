// Command ingress receives Salesforce Outbound Messages, HubSpot webhooks and platform events over
// HTTP, verifies them and publishes them durably to NATS JetStream.
package main

import (
	"os"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/ingress/ingress"
)

func main() {
	os.Exit(servicekit.Main("ingress", ingress.Run, os.Args, os.Getenv, os.Stdout, os.Stderr))
}
