package devstack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"gopkg.in/yaml.v3"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/workbench/crmsim/sandbox"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// DemoTenant is the demo tenant's id.
const DemoTenant = "acme"

// Demo secrets: the sandboxes accept them; the tenant configuration only holds env: references to
// the variables the dev stack passes to the services.
var demoSecrets = map[string]string{
	"OWNERSYNC_SECRET_DEMO_SF_CLIENT_SECRET": "ownersync-demo-secret",
	"OWNERSYNC_SECRET_DEMO_HS_TOKEN":         "pat-na1-ownersync-demo",
	"OWNERSYNC_SECRET_DEMO_HS_CLIENT_SECRET": "ownersync-demo-client-secret",
}

// demo holds the sandboxes of the demo.
type demo struct {
	crm      *sandbox.Sandboxes
	platform *platformsim.Platform
	bus      *natsbus.Conn
	srv      *http.Server
	cancel   context.CancelFunc
	done     chan struct{}
}

// startSandboxes starts the Salesforce and HubSpot sandboxes with the demo seed, sending their
// Outbound Messages and webhooks to ingress, and writes the demo tenant's seed file.
func (s *Stack) startSandboxes(log *slog.Logger) (string, error) {
	o := s.Opts
	addr := func(p int) string { return net.JoinHostPort(o.Host, fmt.Sprint(p)) }
	seed := sandbox.Demo()
	crm, err := sandbox.Start(seed, sandbox.Options{SalesforceAddr: addr(o.SalesforcePort), HubSpotAddr: addr(o.HubSpotPort), Logger: log})
	if err != nil {
		return "", fmt.Errorf("start crm sandboxes: %w", err)
	}
	s.demo = &demo{crm: crm}
	ingress := "http://" + addr(o.IngressPort)
	crm.Salesforce.SetOutboundURL(ingress+"/webhooks/salesforce", "")
	crm.HubSpot.SetWebhookTarget(ingress + "/webhooks/hubspot")
	s.URLs["salesforce-sandbox"] = crm.SalesforceURL
	s.URLs["hubspot-sandbox"] = crm.HubSpotURL

	// The fallback owners (rule 8): the integration user in Salesforce, the first active owner in HubSpot.
	sfFallback := crm.Salesforce.IntegrationUserID()
	hsFallback := ""
	for _, ow := range crm.HubSpot.Owners() {
		if !ow.Archived && ow.Type != "QUEUE" {
			hsFallback = ow.ID
			break
		}
	}
	t := tenant.Tenant{
		ID: DemoTenant, Name: "Acme Corp (demo)",
		ReportRecipients: []string{"sales-ops@acme.example"}, ReportsEnabled: true,
		// No schedule: a scheduled run at start would race the platform users being seeded. Admins
		// turn it on in the console settings.
		Schedule: tenant.Schedule{Enabled: false, Interval: "1h"},
		Salesforce: &tenant.SFConfig{
			Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional, ObjectModules: []string{"contact", "lead"},
				RemapOnDeactivation: true, FallbackOwnerID: sfFallback, APIBaseURL: crm.SalesforceURL},
			OrgID: seed.Salesforce.OrgID, InstanceURL: crm.SalesforceURL, APIVersion: "62.0",
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: seed.Salesforce.ClientID,
				ClientSecretRef: "env:OWNERSYNC_SECRET_DEMO_SF_CLIENT_SECRET", TokenURL: crm.SalesforceURL + "/services/oauth2/token"},
		},
		HubSpot: &tenant.HSConfig{
			Settings: tenant.Settings{Enabled: true, Direction: tenant.Bidirectional, ObjectModules: []string{"contact"},
				RemapOnDeactivation: true, FallbackOwnerID: hsFallback, APIBaseURL: crm.HubSpotURL},
			PortalID: seed.HubSpot.PortalID, AppID: seed.HubSpot.AppID,
			ClientSecretRef: "env:OWNERSYNC_SECRET_DEMO_HS_CLIENT_SECRET",
			Auth:            tenant.HSAuth{Kind: "private_app", TokenRef: "env:OWNERSYNC_SECRET_DEMO_HS_TOKEN"},
		},
	}
	b, err := yaml.Marshal(tenantstore.SeedFile{Tenants: []tenant.Tenant{t}})
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.DataDir, "demo-tenants.yaml")
	if err := os.WriteFile(path, append([]byte("# Written by devstack at every start: the demo tenant wired to the sandboxes.\n"), b...), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// demoPlatformUsers derives the platform's users from the CRM seed: one platform user per person
// in either CRM (emails <first>.<last>@acme.example, lower case on the platform), minus the CRM-only
// and integration users, plus the platform-only cases (suspended, extension, call destination).
func demoPlatformUsers(crm *sandbox.Sandboxes) []platformsim.User {
	byEmail := map[string]platformsim.User{}
	add := func(email, first, last string) {
		e := strings.ToLower(strings.TrimSpace(email))
		local, domain, ok := strings.Cut(e, "@")
		if !ok || domain != "acme.example" || strings.Contains(local, "only") || local == "integration" {
			return
		}
		if _, seen := byEmail[e]; seen {
			return
		}
		byEmail[e] = platformsim.User{ID: "pu-" + strings.ReplaceAll(local, ".", "-"), Email: e, FirstName: first, LastName: last,
			Status: "active", Kind: "user", TeamID: "team-sales"}
	}
	for _, u := range crm.Salesforce.Users() {
		add(u.Email, u.FirstName, u.LastName)
	}
	for _, ow := range crm.HubSpot.Owners() {
		if ow.Type != "QUEUE" {
			add(ow.Email, ow.FirstName, ow.LastName)
		}
	}
	users := make([]platformsim.User, 0, len(byEmail)+4)
	for _, u := range byEmail {
		users = append(users, u)
	}
	users = append(users,
		platformsim.User{ID: "pu-platform-only", Email: "platform.only@acme.example", FirstName: "Platform", LastName: "Only", Status: "active", Kind: "user", TeamID: "team-sales"},
		platformsim.User{ID: "pu-suspended", Email: "former.rep@acme.example", FirstName: "Former", LastName: "Rep", Status: "suspended", Kind: "user"},
		platformsim.User{ID: "ext-100", Email: "reception@acme.example", FirstName: "Reception", LastName: "Desk", Status: "active", Kind: "extension"},
		platformsim.User{ID: "cd-support", Email: "support.line@acme.example", FirstName: "Support", LastName: "Line", Status: "active", Kind: "call_destination"},
	)
	sort.Slice(users, func(i, j int) bool { return users[i].ID < users[j].ID })
	return users
}

// startPlatform runs the platform sandbox for the demo tenant and seeds its users.
func (s *Stack) startPlatform(ctx context.Context, log *slog.Logger) error {
	o := s.Opts
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: s.NATS.URL(), Name: "platformsim", Logger: log})
	if err != nil {
		return err
	}
	p := platformsim.New(DemoTenant, bus, log)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := s.demo
	d.bus, d.platform, d.cancel, d.done = bus, p, cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		if err := p.Run(runCtx); err != nil {
			log.Error("platform sandbox stopped", "error", err)
		}
	}()
	l, err := net.Listen("tcp", net.JoinHostPort(o.Host, fmt.Sprint(o.PlatformPort)))
	if err != nil {
		return fmt.Errorf("platform sandbox: %w", err)
	}
	d.srv = &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(l) }()
	s.URLs["platform-sandbox"] = "http://" + l.Addr().String()
	users := demoPlatformUsers(d.crm)
	for _, u := range users {
		if err := p.PutUser(ctx, u); err != nil {
			return fmt.Errorf("seed platform user %s: %w", u.ID, err)
		}
	}
	return s.firstSync(ctx, len(users))
}

// firstSync waits until mapper stored the platform users, then runs Sync Users once on a fresh
// data directory, so the demo starts mapped and its first report is in the outbox.
func (s *Stack) firstSync(ctx context.Context, want int) error {
	marker := filepath.Join(s.Opts.DataDir, "demo-synced")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: s.Mongo.URI()})
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := conn.DB.Collection("platform_users").CountDocuments(ctx, bson.D{{Key: "tenant", Value: DemoTenant}})
		if err == nil && n >= int64(want) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: mapper stored %d of %d platform users within 30 s", n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URLs["mapper"]+"/v1/tenants/"+DemoTenant+"/sync-users", bytes.NewReader(nil))
	req.Header.Set("Authorization", "Bearer "+s.Opts.OperatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("demo: start Sync Users: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("demo: start Sync Users: HTTP %d", resp.StatusCode)
	}
	return os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

func (d *demo) stop() {
	if d == nil {
		return
	}
	if d.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = d.srv.Shutdown(ctx)
		cancel()
	}
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
	if d.bus != nil {
		d.bus.Close()
	}
	if d.crm != nil {
		d.crm.Salesforce.Close()
		d.crm.HubSpot.Close()
	}
}

// Platform is the demo's platform sandbox (nil without the demo).
func (s *Stack) Platform() *platformsim.Platform {
	if s.demo == nil {
		return nil
	}
	return s.demo.platform
}

// Sandboxes are the demo's CRM sandboxes (nil without the demo).
func (s *Stack) Sandboxes() *sandbox.Sandboxes {
	if s.demo == nil {
		return nil
	}
	return s.demo.crm
}
