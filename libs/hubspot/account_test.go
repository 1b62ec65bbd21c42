package hubspot_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
)

func TestAccountDetails(t *testing.T) {
	a := newAccount(t)
	a.mux.HandleFunc("GET /account-info/v3/details", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []byte(`{"portalId":4412345,"accountType":"STANDARD","timeZone":"America/New_York","companyCurrency":"USD",
			"additionalCurrencies":[],"utcOffset":"-05:00","utcOffsetMilliseconds":-18000000,"uiDomain":"app.hubspot.com","dataHostingLocation":"na1"}`))
	})
	got, err := a.client(t).AccountDetails(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := hubspot.AccountDetails{PortalID: 4412345, AccountType: "STANDARD", TimeZone: "America/New_York", UTCOffset: "-05:00",
		UTCOffsetMilliseconds: -18000000, CompanyCurrency: "USD", UIDomain: "app.hubspot.com", DataHostingLocation: "na1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
	if r := a.recorded()[0]; r.Auth != "Bearer "+privateToken {
		t.Errorf("authorization %q", r.Auth)
	}
}

func TestAccountDetailsLocation(t *testing.T) {
	winter := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		d          hubspot.AccountDetails
		wantOffset int // seconds east of UTC in January
	}{
		{name: "IANA name", d: hubspot.AccountDetails{TimeZone: "America/New_York", UTCOffsetMilliseconds: -18000000}, wantOffset: -5 * 3600},
		{name: "unknown name, offset", d: hubspot.AccountDetails{TimeZone: "Mars/Olympus_Mons", UTCOffset: "+05:30", UTCOffsetMilliseconds: 19800000}, wantOffset: 19800},
		{name: "nothing", d: hubspot.AccountDetails{}, wantOffset: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, off := winter.In(tt.d.Location()).Zone(); off != tt.wantOffset {
				t.Errorf("offset %d s, want %d s", off, tt.wantOffset)
			}
		})
	}
}
