// Package deploytest checks the deployment files against the services' configuration code. No
// Docker engine or cluster runs here, so the files are parsed — docker-compose.yml with the Compose
// Specification's own loader (schema, anchors, interpolation), the Kubernetes manifests strictly
// into the API's Go types — and checked against the code: every variable set is one the service
// reads, every required one is set, ports and probes match the listeners, and every replica count
// above one is backed by shared state (replicas_test.go).
package deploytest

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var services = []string{"ingress", "mapper", "writer", "notifier"}

const root = "../../.."

var (
	readRE     = regexp.MustCompile(`r\.(String|Required|Duration|Int|Bool|URL|List)\("([A-Z0-9_]+)"`)
	requiredRE = regexp.MustCompile(`r\.Required\("([A-Z0-9_]+)"\)`)
	problemRE  = regexp.MustCompile(`r\.Problem\("([A-Z0-9_]+) is required`)
	getenvRE   = regexp.MustCompile(`getenv\("([A-Z0-9_]+)"\)`)
)

// envOf scans the Go sources a service's configuration comes from.
func envOf(t *testing.T, svc string) (read, required map[string]bool) {
	t.Helper()
	read, required = map[string]bool{}, map[string]bool{}
	dirs := []string{"libs/servicekit", "libs/telemetry", "services/" + svc + "/internal/config"}
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(root, d, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s", d)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range readRE.FindAllSubmatch(b, -1) {
				read[string(m[2])] = true
			}
			for _, m := range getenvRE.FindAllSubmatch(b, -1) {
				read[string(m[1])] = true
			}
			for _, m := range requiredRE.FindAllSubmatch(b, -1) {
				required[string(m[1])] = true
			}
			for _, m := range problemRE.FindAllSubmatch(b, -1) {
				required[string(m[1])] = true
			}
		}
	}
	return read, required
}

func readsVar(read map[string]bool, name string) bool {
	// The OTLP exporters read the standard OTEL_* variables themselves.
	return read[name] || strings.HasPrefix(name, "OTEL_")
}

// portOf returns the port of a listen address such as ":8080" or "0.0.0.0:9090".
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return port
}

// sourceContains reports whether any non-test Go file under dir contains s.
func sourceContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
		if err != nil || found || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		found = strings.Contains(string(b), s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestDockerfileBuildsAnyService(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deployments/docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"ARG SERVICE", "CGO_ENABLED=0", `./services/${SERVICE}`, "FROM scratch", "USER 65532",
		"./libs/cmd/healthcheck", "/out/healthcheck /healthcheck"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "libs/cmd/healthcheck/main.go")); err != nil {
		t.Errorf("the health check the Dockerfile builds: %v", err)
	}
	for _, svc := range services {
		if _, err := os.Stat(filepath.Join(root, "services", svc, "main.go")); err != nil {
			t.Errorf("service %s has no main.go for the Dockerfile to build", svc)
		}
	}
	if slices.Contains(services, "devstack") {
		t.Error("devstack is not a deployable service")
	}
}
