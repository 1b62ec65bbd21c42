package consoletest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/libs/echoserver"
	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/console"
)

// Tokens of the test tenants; the operator reaches every tenant.
const (
	OperatorToken = "op-token-7f3a9c1e5b2d4f60"
	AcmeToken     = "acme-token-2b8e4d6f0a1c3e5g"
	GlobexToken   = "globex-token-9d1f3b5c7e0a2468"
)

// Env is a console served on httptest over the in-memory core and a real tenant store.
type Env struct {
	URL string
	// DB is the test's database (tenants, stored secrets, webhook receipts).
	DB      *mongo.Database
	Svc     *Service
	DLQ     *DeadLetters
	Tenants *tenantstore.Store
	Console *console.Console
}

var dbNameRE = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Acme is a tenant with both CRMs connected; its secrets are references.
func Acme() tenant.Tenant {
	return tenant.Tenant{
		ID: "acme", Name: "Acme Corp", ReportRecipients: []string{"admin@acme.example"}, ReportsEnabled: true,
		Schedule: tenant.Schedule{Enabled: true, Interval: "1h"},
		Salesforce: &tenant.SFConfig{
			Settings: tenant.Settings{Enabled: true, RemapOnDeactivation: true, FallbackOwnerID: SFUserID(1)},
			OrgID:    "00D5g000004XyZaEAK", InstanceURL: "https://acme.my.salesforce.com",
			Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "acme-client", ClientSecretRef: "env:ACME_SF_SECRET"},
		},
		HubSpot: &tenant.HSConfig{
			Settings: tenant.Settings{Enabled: true}, PortalID: 4412345, AppID: 3100456,
			ClientSecretRef: "env:ACME_HS_CLIENT_SECRET",
			Auth:            tenant.HSAuth{Kind: "private_app", TokenRef: "file:/run/secrets/acme-hs-token"},
		},
	}
}

// Globex is a second tenant with Salesforce only.
func Globex() tenant.Tenant {
	return tenant.Tenant{ID: "globex", Name: "Globex", Salesforce: &tenant.SFConfig{
		Settings: tenant.Settings{Enabled: true}, OrgID: "00D5g000004GlObEAK", InstanceURL: "https://globex.my.salesforce.com",
		Auth: tenant.SFAuth{Flow: "client_credentials", ClientID: "globex-client", ClientSecretRef: "env:GLOBEX_SF_SECRET"},
	}}
}

// Start serves a console for t over svc (NewDemo(mapped) when nil) with tenants acme and globex
// stored through libs/tenantstore in a database of its own on the MongoDB at mongoURI.
func Start(t testing.TB, mongoURI string, svc *Service, cfg console.Config) *Env {
	t.Helper()
	return StartWith(t, mongoURI, svc, cfg, nil)
}

// StartWith is Start with setup called before the console is registered: it gets the console, the
// tenant store, the database and the URL the console will be served at (for OAuth callbacks).
func StartWith(t testing.TB, mongoURI string, svc *Service, cfg console.Config, setup func(c *console.Console, ts *tenantstore.Store, db *mongo.Database, url string)) *Env {
	t.Helper()
	name := dbNameRE.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return startOn(t, mongoURI, "c_"+name, svc, cfg, setup)
}

// StartOn is Start on the named database: several consoles on one database are replicas of one
// deployment (they share tenants, tokens and sessions; each has its own core fake).
func StartOn(t testing.TB, mongoURI, database string, svc *Service, cfg console.Config) *Env {
	t.Helper()
	return startOn(t, mongoURI, database, svc, cfg, nil)
}

func startOn(t testing.TB, mongoURI, database string, svc *Service, cfg console.Config, setup func(c *console.Console, ts *tenantstore.Store, db *mongo.Database, url string)) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := mongodb.Connect(ctx, mongodb.Options{URI: mongoURI, Database: database})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.DB.Drop(context.Background()); _ = conn.Close(context.Background()) })
	ts := tenantstore.New(conn.DB, nil)
	for _, tn := range []tenant.Tenant{Acme(), Globex()} {
		if err := ts.Put(ctx, &tn); err != nil {
			t.Fatal(err)
		}
	}
	tokens, err := auth.New(auth.Options{OperatorToken: OperatorToken, TenantTokens: map[string]string{"acme": AcmeToken, "globex": GlobexToken}, DB: conn.DB})
	if err != nil {
		t.Fatal(err)
	}
	if svc == nil {
		svc = NewDemo(60)
	}
	dlq := &DeadLetters{Letters: DeadLetterSeed()}
	if err := mongodb.EnsureIndexes(ctx, conn.DB, auth.SessionIndexes); err != nil {
		t.Fatal(err)
	}
	cfg.Sessions = auth.NewSessions(conn.DB)
	c := console.New(cfg, svc, ts, tokens, dlq, slog.New(slog.DiscardHandler))
	// The server mapper runs: echoserver's error handler and timeouts around the console. Loopback
	// is the trusted proxy, so a test's X-Forwarded-For names the client it plays.
	es := echoserver.New(echoserver.Options{Service: "mapper", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	srv := httptest.NewUnstartedServer(es.E)
	url := "http://" + srv.Listener.Addr().String()
	if setup != nil {
		setup(c, ts, conn.DB, url)
	}
	c.Register(es.E)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Env{URL: srv.URL, DB: conn.DB, Svc: svc, DLQ: dlq, Tenants: ts, Console: c}
}
