package servicekit

import (
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/envconfig"
	"github.com/ownersync/ownersync/libs/tenantstore"
)

// TestConfigProblemsAtOnce: a bad log level is reported with the other problems, at start, not
// later by telemetry after NATS connected.
func TestConfigProblemsAtOnce(t *testing.T) {
	env := map[string]string{"OWNERSYNC_LOG_LEVEL": "loud", "OWNERSYNC_METRICS_TENANT_LABEL": "maybe"}
	r := envconfig.New(func(k string) string { return env[k] })
	ReadConfig(r, "test", ":0")
	err := r.Err()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"NATS_URL is required", "MONGODB_URI is required", "OWNERSYNC_LOG_LEVEL=\"loud\"", "OWNERSYNC_METRICS_TENANT_LABEL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestReadConfigInternalAddrAndWriteConcern: the internal listener is off unless configured; writes
// default to w: majority, and a write concern that would not survive a failover is refused at start.
func TestReadConfigInternalAddrAndWriteConcern(t *testing.T) {
	base := map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "MONGODB_URI": "mongodb://127.0.0.1:27017/"}
	for _, tt := range []struct {
		name             string
		env              map[string]string
		wantInternal, wc string
		wantErr          string
	}{
		{name: "defaults", wc: "majority"},
		{name: "internal addr", env: map[string]string{"OWNERSYNC_INTERNAL_ADDR": ":9090"}, wantInternal: ":9090", wc: "majority"},
		{name: "w 2", env: map[string]string{"OWNERSYNC_MONGODB_WRITE_CONCERN": "2"}, wc: "2"},
		{name: "w 0 refused", env: map[string]string{"OWNERSYNC_MONGODB_WRITE_CONCERN": "0"}, wantErr: "OWNERSYNC_MONGODB_WRITE_CONCERN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := envconfig.New(func(k string) string {
				if v, ok := tt.env[k]; ok {
					return v
				}
				return base[k]
			})
			c := ReadConfig(r, "test", ":8080")
			err := r.Err()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.InternalAddr != tt.wantInternal || c.MongoWriteConcern != tt.wc {
				t.Errorf("InternalAddr, MongoWriteConcern = %q, %q; want %q, %q", c.InternalAddr, c.MongoWriteConcern, tt.wantInternal, tt.wc)
			}
		})
	}
}

// TestTenantCacheIntervalsComeFromConfig: the tenant cache's reload interval is configuration
// (OWNERSYNC_TENANT_REFRESH_INTERVAL, default 10 s) and tenantstore.NewCache has no default of its
// own; zero is refused with the other problems.
func TestTenantCacheIntervalsComeFromConfig(t *testing.T) {
	base := map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "MONGODB_URI": "mongodb://127.0.0.1:27017/"}
	read := func(interval string) (Config, error) {
		r := envconfig.New(func(k string) string {
			if k == "OWNERSYNC_TENANT_REFRESH_INTERVAL" {
				return interval
			}
			return base[k]
		})
		c := ReadConfig(r, "test", ":8080")
		return c, r.Err()
	}
	c, err := read("")
	if err != nil || c.TenantCache != (tenantstore.CacheOptions{Interval: 10 * time.Second, MinRefresh: time.Second}) {
		t.Errorf("default: %+v, %v", c.TenantCache, err)
	}
	if c, err := read("1m"); err != nil || c.TenantCache.Interval != time.Minute {
		t.Errorf("1m: %+v, %v", c.TenantCache, err)
	}
	if _, err := read("0s"); err == nil || !strings.Contains(err.Error(), "OWNERSYNC_TENANT_REFRESH_INTERVAL") {
		t.Errorf("0s: %v, want a problem naming OWNERSYNC_TENANT_REFRESH_INTERVAL", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewCache with a zero interval did not refuse it")
		}
	}()
	tenantstore.NewCache(nil, tenantstore.CacheOptions{})
}
