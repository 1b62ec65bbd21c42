package app

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/config"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
	"github.com/ownersync/ownersync/workbench/harness"
)

// TestConfiguredQuotaReserveIsHonoured: OWNERSYNC_QUOTA_RESERVE_PERCENT is the share of the daily
// quota kept in reserve, and 0 (which validation accepts) means none — it used to become 5 %.
func TestConfiguredQuotaReserveIsHonoured(t *testing.T) {
	ns := harness.JetStream(t)
	js, buckets := ns.JS, ns.KV(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The history store only names its collection here; nothing is written, so no server is needed.
	mc, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		percent string
		// usedOf1000 of a Salesforce org's 1,000 daily calls are spent when the reading comes.
		usedOf1000 int64
		wantHeld   bool
	}{
		{percent: "0", usedOf1000: 999, wantHeld: false},
		{percent: "0", usedOf1000: 1000, wantHeld: true},
		{percent: "5", usedOf1000: 951, wantHeld: true},
		{percent: "", usedOf1000: 951, wantHeld: true}, // the default, 5 %
		{percent: "5", usedOf1000: 940, wantHeld: false},
	}
	for _, tt := range tests {
		env := map[string]string{"NATS_URL": ns.URL, "MONGODB_URI": "mongodb://127.0.0.1:1", "OWNERSYNC_QUOTA_RESERVE_PERCENT": tt.percent}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(ctx, Options{Records: buckets[streams.RecordsBucket], Mappings: buckets[streams.MappingsBucket],
			DB: mc.Database("writer"), Tenants: tenants{}, Publisher: natsbus.NewPublisher(js, nil, time.Second),
			Tuning: cfg.Tuning})
		if err != nil {
			t.Fatal(err)
		}
		n := a.Limiter.ObserveSalesforceUsage(ratelimit.Key{Tenant: "acme", Provider: provider.Salesforce}, tt.usedOf1000, 1000)
		held := n != nil && n.Kind == ratelimit.QuotaNearExhaustion
		if held != tt.wantHeld {
			t.Errorf("reserve %q%%, %d of 1000 calls used: held = %t, want %t", tt.percent, tt.usedOf1000, held, tt.wantHeld)
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
