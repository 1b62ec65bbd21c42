package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestRunWithDemoSeedAndEmpty(t *testing.T) {
	for _, args := range [][]string{{}, {"-empty"}} {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, append([]string{"crmsim", "-sf-addr", "127.0.0.1:0", "-hs-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, out)
		}()
		harness.EventuallyState(t, 5*time.Second, fmt.Sprint(args, ": hubspot sandbox ready"), func() (bool, string) {
			return strings.Contains(strings.Join(out.lines(), "\n"), "hubspot sandbox ready"), fmt.Sprint(out.lines())
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		noOwners := strings.Contains(strings.Join(out.lines(), "\n"), `"owners":0`)
		if noOwners != (len(args) == 1) {
			t.Errorf("%v: output %v", args, out.lines())
		}
	}
}

func TestRunServesBothSandboxesFromSeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"crmsim", "-seed", "seed.example.yaml", "-sf-addr", "127.0.0.1:0", "-hs-addr", "127.0.0.1:0"},
			func(string) string { return "" }, out)
	}()
	urls := map[string]string{}
	harness.EventuallyState(t, 5*time.Second, "both sandboxes ready", func() (bool, string) {
		for _, l := range out.lines() {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && strings.HasSuffix(rec["msg"].(string), "sandbox ready") {
				urls[rec["msg"].(string)] = rec["url"].(string)
			}
		}
		return len(urls) == 2, fmt.Sprint(out.lines())
	})
	get := func(url, token string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	status, body := get(urls["hubspot sandbox ready"]+"/crm/v3/owners?archived=true", "pat-na1-demo-token")
	if status != 200 || len(body["results"].([]any)) != 1 {
		t.Fatalf("hubspot owners: %d %v", status, body)
	}
	sf := urls["salesforce sandbox ready"]
	resp, err := http.PostForm(sf+"/services/oauth2/token", map[string][]string{"grant_type": {"client_credentials"}, "client_id": {"demo-client"}, "client_secret": {"demo-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	status, body = get(sf+"/services/data/v62.0/query?q=SELECT+Id+FROM+User", tok["access_token"].(string))
	if status != 200 || body["totalSize"].(float64) != 5 {
		t.Fatalf("salesforce users: %d %v", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
