package devstack_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/harness"
)

// getJSON calls the admin API with the operator token.
func getJSON(t *testing.T, s *devstack.Stack, path string, into any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URLs["mapper"]+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.Opts.OperatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		_ = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode
}

// TestDemoStartsSynced runs what `make run` runs: sandboxes, the demo tenant, the platform users, and
// the first Sync Users, after which both providers have mappings, conflicts and errors to show.
func TestDemoStartsSynced(t *testing.T) {
	s := startDemo(t)
	type overview struct {
		Providers []struct {
			Provider  string `json:"provider"`
			Mapped    int    `json:"mapped"`
			Conflicts int    `json:"conflicts"`
			Errors    int    `json:"errors"`
		} `json:"providers"`
		LastSync *struct {
			State string `json:"state"`
		} `json:"last_sync"`
	}
	var ov overview
	harness.Eventually(t, 30*time.Second, "first Sync Users finished", func() bool {
		ov = overview{}
		getJSON(t, s, "/v1/tenants/acme/users/overview", &ov)
		return ov.LastSync != nil && ov.LastSync.State == "succeeded"
	})
	if len(ov.Providers) != 2 {
		t.Fatalf("overview providers = %+v", ov.Providers)
	}
	checkConnectionsPage(t, s)
	for _, p := range ov.Providers {
		if p.Mapped < 15 || p.Errors == 0 {
			t.Errorf("%s: mapped %d, errors %d — the demo should map most users and show errors", p.Provider, p.Mapped, p.Errors)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Opts.DataDir, "demo-synced")); err != nil {
		t.Errorf("first-sync marker missing: %v", err)
	}
	resp, err := http.Get(s.URLs["console"])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(page)), "sign in") {
		t.Errorf("console at %s answered %d without a sign-in page", s.URLs["console"], resp.StatusCode)
	}
	if s.Platform() == nil || len(s.Platform().Users()) < 20 {
		t.Error("platform sandbox has no demo users")
	}
}
