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

// TestTenantTimeZone: the tenant's own time zone (issue 16) is validated with time.LoadLocation
// and shows the console's and the email's times; without one, the HubSpot account's time zone
// recorded by Connect HubSpot is the default, then UTC.
func TestTenantTimeZone(t *testing.T) {
	for _, tt := range []struct {
		name, tz, hubspot string
		valid             bool
		want              string
	}{
		{name: "none", want: "UTC"},
		{name: "own", tz: "Europe/Berlin", valid: true, want: "Europe/Berlin"},
		{name: "own beats HubSpot's", tz: "Asia/Tokyo", hubspot: "America/New_York", valid: true, want: "Asia/Tokyo"},
		{name: "HubSpot's by default", hubspot: "America/New_York", valid: true, want: "America/New_York"},
		{name: "unknown", tz: "Mars/Olympus_Mons", want: "UTC"},
		{name: "not a name", tz: "+02:00", want: "UTC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tn := &Tenant{ID: "acme", TimeZone: tt.tz}
			if tt.hubspot != "" {
				tn.HubSpot = &HSConfig{PortalID: 4412345, ClientSecretRef: "env:HS_SECRET",
					Auth: HSAuth{Kind: "private_app", TokenRef: "env:HS_TOKEN"}, TimeZone: tt.hubspot, Settings: Settings{Enabled: true}}
			}
			tn.Normalize()
			err := tn.Validate()
			if tt.tz != "" && (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if err != nil && !strings.Contains(err.Error(), "time_zone") {
				t.Errorf("Validate() = %v, want a time_zone problem", err)
			}
			if got := tn.Location().String(); got != tt.want {
				t.Errorf("Location() = %s, want %s", got, tt.want)
			}
		})
	}
}
