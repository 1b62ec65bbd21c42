package syncusers_test

import (
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
)

func TestInterval(t *testing.T) {
	hs := &tenant.HSConfig{Settings: tenant.Settings{Enabled: true}}
	tests := []struct {
		name string
		t    tenant.Tenant
		want time.Duration
	}{
		{"schedule off", tenant.Tenant{Schedule: tenant.Schedule{Interval: "1h"}}, 0},
		{"interval as configured", tenant.Tenant{Schedule: tenant.Schedule{Enabled: true, Interval: "2h"}}, 2 * time.Hour},
		{"salesforce only may run often", tenant.Tenant{Schedule: tenant.Schedule{Enabled: true, Interval: "1m"}}, time.Minute},
		{"hubspot never more often than 5 minutes", tenant.Tenant{Schedule: tenant.Schedule{Enabled: true, Interval: "1m"}, HubSpot: hs}, 5 * time.Minute},
		{"invalid interval is off", tenant.Tenant{Schedule: tenant.Schedule{Enabled: true, Interval: "soon"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syncusers.Interval(&tt.t); got != tt.want {
				t.Errorf("Interval = %v, want %v", got, tt.want)
			}
		})
	}
}
