// Command notifier emails tenant admins their sync reports and alert digests over SMTP.
package main

import (
	"os"

	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/services/notifier/notifier"
)

func main() {
	os.Exit(servicekit.Main("notifier", notifier.Run, os.Args, os.Getenv, os.Stdout, os.Stderr))
}
