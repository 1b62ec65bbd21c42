// Command healthcheck is the container health check of the service images, which are built on
// scratch (no shell, curl or wget): it GETs one URL and exits 0 on 200, 1 otherwise, printing why.
// docker compose runs `/healthcheck http://127.0.0.1:9090/readyz` against the internal listener.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() { os.Exit(run(os.Args, os.Stdout)) }

func run(args []string, stdout io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stdout, "usage: healthcheck URL")
		return 2
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(args[1])
	if err != nil {
		fmt.Fprintln(stdout, "unhealthy:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stdout, "unhealthy: %s %s\n", resp.Status, body)
		return 1
	}
	return 0
}
