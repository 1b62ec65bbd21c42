// Command writer pushes owner changes between the platform and the CRMs.
package main

import (
	"os"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/writer/writer"
)

func main() {
	os.Exit(servicekit.Main("writer", writer.Run, os.Args, os.Getenv, os.Stdout, os.Stderr))
}
