// Command mapper keeps the user mappings, runs Sync Users and serves the admin API and console.
package main

import (
	"os"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/mapper/mapper"
)

func main() {
	os.Exit(servicekit.Main("mapper", mapper.Run, os.Args, os.Getenv, os.Stdout, os.Stderr))
}
