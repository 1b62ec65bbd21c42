package tenant

import (
	"strings"
	"testing"
)

func TestHubSpotTimeZone(t *testing.T) {
	base := func(tz string) *Tenant {
		return &Tenant{ID: "acme", HubSpot: &HSConfig{PortalID: 4412345, ClientSecretRef: "env:HS_SECRET",
			Auth: HSAuth{Kind: "private_app", TokenRef: "env:HS_TOKEN"}, TimeZone: tz, Settings: Settings{Enabled: true}}}
	}
	for _, tt := range []struct {
		tz      string
		valid   bool
		located bool
	}{
		{tz: "", valid: true},
		{tz: "America/New_York", valid: true, located: true},
		{tz: "Mars/Olympus_Mons", valid: false},
	} {
		tn := base(tt.tz)
		tn.Normalize()
		err := tn.Validate()
		if (err == nil) != tt.valid || err != nil && !strings.Contains(err.Error(), "hubspot.time_zone") {
			t.Errorf("time zone %q: Validate() = %v, want valid %v", tt.tz, err, tt.valid)
		}
		loc, ok := tn.HubSpot.Location()
		if ok != tt.located || ok && loc.String() != tt.tz {
			t.Errorf("time zone %q: Location() = %v, %v; want located %v", tt.tz, loc, ok, tt.located)
		}
	}
}
