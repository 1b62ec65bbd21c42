package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/devstack/devstack"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

const tenantID = devstack.DemoTenant

// env is one running dev stack with the demo tenant and handles on its sandboxes.
type env struct {
	t  *testing.T
	s  *devstack.Stack
	sf *sfsim.Org
	hs *hssim.Account
	p  *platformsim.Platform
	// mapperURL and token reach the admin API.
	mapperURL, token string
}

// start runs the demo dev stack and waits until its first Sync Users finished.
func start(t *testing.T) *env { t.Helper(); return startWith(t, nil) }

// startWith is start with the options changed by opt first (when not nil).
func startWith(t *testing.T, opt func(*devstack.Options)) *env {
	t.Helper()
	began := time.Now()
	o := devstack.Options{DataDir: t.TempDir(), Demo: true, OperatorToken: devstack.DevOperatorToken, PlatformToken: devstack.DevPlatformToken}
	if opt != nil {
		opt(&o)
	}
	s, err := devstack.Start(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	e := &env{t: t, s: s, sf: s.Sandboxes().Salesforce, hs: s.Sandboxes().HubSpot, p: s.Platform(),
		mapperURL: s.URLs["mapper"], token: s.Opts.OperatorToken}
	harness.Eventually(t, 30*time.Second, "first Sync Users succeeded", func() bool {
		var ov overview
		e.api("GET", "/v1/tenants/"+tenantID+"/users/overview", nil, &ov)
		return ov.LastSync != nil && ov.LastSync.State == "succeeded"
	})
	t.Logf("dev stack ready and synced in %s", time.Since(began).Round(time.Millisecond))
	return e
}

// api calls the admin API with the operator token; it returns the status and decodes a JSON body
// into out when out is not nil.
func (e *env) api(method, path string, body, out any) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.mapperURL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	if out != nil && resp.StatusCode/100 != 2 {
		if ae, ok := out.(*apiError); ok {
			_ = json.Unmarshal(b, ae)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type providerOverview struct {
	Provider         string `json:"provider"`
	Connected        bool   `json:"connected"`
	PlatformUsers    int    `json:"platform_users"`
	CRMUsers         int    `json:"crm_users"`
	Mapped           int    `json:"mapped"`
	Manual           int    `json:"manual"`
	Conflicts        int    `json:"conflicts"`
	Errors           int    `json:"errors"`
	PendingTeam      int    `json:"pending_team"`
	UnmappedPlatform int    `json:"unmapped_platform"`
	UnmappedCRM      int    `json:"unmapped_crm"`
	// FallbackOwnerID and FallbackOwnerProblem: rule 8's owner and why it cannot own records.
	FallbackOwnerID      string `json:"fallback_owner_id"`
	FallbackOwnerProblem string `json:"fallback_owner_problem"`
}

type overview struct {
	Providers []providerOverview `json:"providers"`
	LastSync  *run               `json:"last_sync"`
}

func (o overview) of(provider string) providerOverview {
	for _, p := range o.Providers {
		if p.Provider == provider {
			return p
		}
	}
	return providerOverview{}
}

type change struct {
	Kind              string `json:"kind"`
	PlatformUserID    string `json:"platform_user_id"`
	CRMUserID         string `json:"crm_user_id"`
	PreviousCRMUserID string `json:"previous_crm_user_id"`
	Email             string `json:"email"`
	Status            string `json:"status"`
	MadeBy            string `json:"made_by"`
	Reason            string `json:"reason"`
}

type run struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Error     string `json:"error"`
	Providers []struct {
		Provider string   `json:"provider"`
		Error    string   `json:"error"`
		Removed  int      `json:"removed"`
		Changes  []change `json:"changes"`
	} `json:"providers"`
}

type mappingJSON struct {
	Provider          string `json:"provider"`
	PlatformUserID    string `json:"platform_user_id"`
	PlatformUserEmail string `json:"platform_user_email"`
	CRMUserID         string `json:"crm_user_id"`
	CRMUserActive     bool   `json:"crm_user_active"`
	PreviousCRMUserID string `json:"previous_crm_user_id"`
	Status            string `json:"status"`
	MadeBy            string `json:"made_by"`
	Reason            string `json:"reason"`
}

type mappingPage struct {
	Items   []mappingJSON `json:"items"`
	Total   int           `json:"total"`
	Page    int           `json:"page"`
	PerPage int           `json:"per_page"`
}

type unmappedUser struct {
	Provider string `json:"provider"`
	ID       string `json:"id"`
	Email    string `json:"email"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
}

type problem struct {
	Provider        string   `json:"provider"`
	Code            string   `json:"code"`
	PlatformUserID  string   `json:"platform_user_id"`
	CRMUserID       string   `json:"crm_user_id"`
	Email           string   `json:"email"`
	CRMUserIDs      []string `json:"crm_user_ids"`
	PlatformUserIDs []string `json:"platform_user_ids"`
	Message         string   `json:"message"`
	Fix             string   `json:"fix"`
}

type historyEntry struct {
	Provider       string `json:"provider"`
	RecordID       string `json:"record_id"`
	Direction      string `json:"direction"`
	Outcome        string `json:"outcome"`
	OwnerBefore    string `json:"owner_before"`
	OwnerAfter     string `json:"owner_after"`
	PlatformUserID string `json:"platform_user_id"`
	EventID        string `json:"event_id"`
	Reason         string `json:"reason"`
}

func (e *env) overview() overview {
	var ov overview
	if st := e.api("GET", "/v1/tenants/"+tenantID+"/users/overview", nil, &ov); st != 200 {
		e.t.Fatalf("overview: HTTP %d", st)
	}
	return ov
}

// mappings lists one page of mappings; q holds the query parameters.
func (e *env) mappings(q url.Values) mappingPage {
	var pg mappingPage
	if st := e.api("GET", "/v1/tenants/"+tenantID+"/mappings?"+q.Encode(), nil, &pg); st != 200 {
		e.t.Fatalf("mappings %s: HTTP %d", q.Encode(), st)
	}
	return pg
}

// mapping returns the provider's mapping of a platform user (ok false when none).
func (e *env) mapping(provider, platformUserID string) (mappingJSON, bool) {
	pg := e.mappings(url.Values{"provider": {provider}, "q": {platformUserID}, "per_page": {"200"}})
	for _, m := range pg.Items {
		if m.PlatformUserID == platformUserID {
			return m, true
		}
	}
	return mappingJSON{}, false
}

func (e *env) unmapped(side, provider string) []unmappedUser {
	var out struct {
		Items []unmappedUser `json:"items"`
	}
	if st := e.api("GET", "/v1/tenants/"+tenantID+"/unmapped/"+side+"?provider="+provider, nil, &out); st != 200 {
		e.t.Fatalf("unmapped %s: HTTP %d", side, st)
	}
	return out.Items
}

func (e *env) problems(provider string) []problem {
	var out struct {
		Items []problem `json:"items"`
	}
	if st := e.api("GET", "/v1/tenants/"+tenantID+"/errors?provider="+provider, nil, &out); st != 200 {
		e.t.Fatalf("errors: HTTP %d", st)
	}
	return out.Items
}

func (e *env) history(provider, typ, id string) []historyEntry {
	var out struct {
		Items []historyEntry `json:"items"`
	}
	e.api("GET", fmt.Sprintf("/v1/tenants/%s/records/%s/%s/%s/history", tenantID, provider, typ, id), nil, &out)
	return out.Items
}

// syncUsers runs Sync Users and waits for it to finish.
func (e *env) syncUsers() run {
	e.t.Helper()
	var r run
	st := e.api("POST", "/v1/tenants/"+tenantID+"/sync-users", nil, &r)
	if st != 202 && st != 200 {
		e.t.Fatalf("sync-users: HTTP %d", st)
	}
	id := r.ID
	harness.Eventually(e.t, 30*time.Second, "Sync Users run "+id+" finished", func() bool {
		r = run{}
		e.api("GET", "/v1/tenants/"+tenantID+"/sync-runs/"+id, nil, &r)
		return r.State == "succeeded" || r.State == "failed"
	})
	if r.State != "succeeded" {
		e.t.Fatalf("Sync Users run %s: %s (%s)", id, r.State, r.Error)
	}
	return r
}

// tenantConfig reads the tenant as generic JSON, so a PUT sends back every field unchanged.
func (e *env) tenantConfig() map[string]any {
	var cfg map[string]any
	if st := e.api("GET", "/v1/tenants/"+tenantID, nil, &cfg); st != 200 {
		e.t.Fatalf("get tenant: HTTP %d", st)
	}
	delete(cfg, "updated_at")
	return cfg
}

// setProviderSetting changes one setting of a provider of the tenant through the admin API.
func (e *env) setProviderSetting(provider, key string, value any) {
	e.t.Helper()
	cfg := e.tenantConfig()
	p, ok := cfg[provider].(map[string]any)
	if !ok {
		e.t.Fatalf("tenant has no %s configuration: %v", provider, cfg)
	}
	p[key] = value
	var ae apiError
	if st := e.api("PUT", "/v1/tenants/"+tenantID, cfg, &ae); st/100 != 2 {
		e.t.Fatalf("PUT tenant %s.%s=%v: HTTP %d %s", provider, key, value, st, ae.Error.Message)
	}
}

// sfUser returns the Salesforce user with a username.
func (e *env) sfUser(username string) sfsim.User {
	e.t.Helper()
	u, ok := e.sf.UserByUsername(username)
	if !ok {
		e.t.Fatalf("no Salesforce user %s", username)
	}
	return u
}

// sfContact returns the Salesforce contact with an email.
func (e *env) sfContact(email string) sfsim.Record {
	e.t.Helper()
	for _, r := range e.sf.Records("Contact") {
		if r.Email == email {
			return r
		}
	}
	e.t.Fatalf("no Salesforce contact %s", email)
	return sfsim.Record{}
}
