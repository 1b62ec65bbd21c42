package scenarios

import (
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"
)

// TestHubSpotTimeZoneRecorded is issue 14 item 9's leftover: the demo tenant's HubSpot connection
// names no time zone; Sync Users reads the account's (the sandbox account is in UTC) from the
// account info API and writes it into the connection, where the writer reads it.
func TestHubSpotTimeZoneRecorded(t *testing.T) {
	e := start(t)
	harness.EventuallyState(t, 10*time.Second, "hubspot.time_zone in the tenant configuration", func() (bool, string) {
		hs, _ := e.tenantConfig()["hubspot"].(map[string]any)
		return hs["time_zone"] == "UTC", "time_zone " + stringOf(hs["time_zone"])
	})
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}
