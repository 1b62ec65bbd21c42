package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the tool's server process too: run starts its own executable
// with serverEnv=1.
func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		if err := serve(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString("ingressload server: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLoadRunsInAnotherProcessAndStoresEveryAcknowledgedRequest runs the tool briefly: the server
// is another process than the load generator, every target stores one message per acknowledged
// request (ingress for a tenant with the providers turned off stored nothing and was reported
// as faster than the bare limit), the server's CPU and the generator's are measured apart, and
// every max-rate run left a profile of the server.
func TestLoadRunsInAnotherProcessAndStoresEveryAcknowledgedRequest(t *testing.T) {
	dir := t.TempDir()
	jsonOut, profiles := filepath.Join(dir, "ingress.json"), filepath.Join(dir, "prof")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"ingressload", "-duration", "300ms", "-warmup", "100ms", "-rounds", "1", "-concurrency", "4",
		"-json", jsonOut, "-profile", profiles}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.ServerPID == 0 || rep.ServerPID == os.Getpid() || rep.GeneratorPID != os.Getpid() {
		t.Errorf("server process %d, generator %d, this test %d: want the server in a process of its own", rep.ServerPID, rep.GeneratorPID, os.Getpid())
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Target+"/"+r.Mode] = true
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s %s: %d requests, %d errors", r.Target, r.Mode, r.Requests, r.Errors)
		}
		if r.Stored != uint64(r.Requests) {
			t.Errorf("%s %s: %d requests acknowledged, %d messages stored", r.Target, r.Mode, r.Requests, r.Stored)
		}
		if r.CPUMicros <= 0 || r.GenCPUMicros <= 0 {
			t.Errorf("%s %s: server %.1f µs, generator %.1f µs per request: want both measured", r.Target, r.Mode, r.CPUMicros, r.GenCPUMicros)
		}
		if r.Mode == "max" {
			if st, err := os.Stat(r.Profile); err != nil || st.Size() == 0 {
				t.Errorf("%s: profile %q: %v", r.Target, r.Profile, err)
			}
		}
	}
	for _, tg := range []string{"ingress-hubspot", "bare-hubspot", "ingress-salesforce", "bare-salesforce"} {
		if !seen[tg+"/max"] || !seen[tg+"/half"] {
			t.Errorf("%s: max and half runs missing from %v", tg, seen)
		}
	}
	for _, p := range []string{"hubspot", "salesforce"} {
		if rep.Ratios[p] <= 0 || rep.PairedRatios[p] <= 0 || rep.CPURatios[p] <= 0 || rep.PairedCPURatios[p] <= 0 {
			t.Errorf("%s: ratios %v %v %v %v", p, rep.Ratios[p], rep.PairedRatios[p], rep.CPURatios[p], rep.PairedCPURatios[p])
		}
	}
	if !strings.Contains(out.String(), "load generator: process") {
		t.Errorf("report does not name the processes:\n%s", out.String())
	}
}

// TestLoadRefusesRunsThatStoreNothing: with the load tenant's providers turned off ingress
// acknowledges and publishes nothing; the tool fails instead of reporting it as a measurement.
func TestLoadRefusesRunsThatStoreNothing(t *testing.T) {
	t.Setenv(serverDisabledEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"ingressload", "-duration", "200ms", "-warmup", "100ms", "-rounds", "1", "-concurrency", "2",
		"-targets", "ingress-hubspot"}, &out)
	if err == nil || !strings.Contains(err.Error(), "messages stored") {
		t.Fatalf("run with the providers off: %v, want the stored-messages error\n%s", err, out.String())
	}
}
