package hubspot

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// AccountDetails is what GET /account-info/v3/details says about the account.
type AccountDetails struct {
	PortalID    int64  `json:"portalId"`
	AccountType string `json:"accountType"`
	// TimeZone is the account's time zone as HubSpot names it (an IANA name such as
	// "America/New_York" or a legacy alias such as "US/Eastern"); the daily API limit resets at
	// its midnight.
	TimeZone              string `json:"timeZone"`
	UTCOffset             string `json:"utcOffset"`
	UTCOffsetMilliseconds int64  `json:"utcOffsetMilliseconds"`
	CompanyCurrency       string `json:"companyCurrency"`
	UIDomain              string `json:"uiDomain"`
	DataHostingLocation   string `json:"dataHostingLocation"`
}

// Location returns the account's time zone: TimeZone when this machine's zone database knows it,
// else a fixed zone at the UTC offset HubSpot reported (right until the next daylight-saving
// change), else UTC.
func (d AccountDetails) Location() *time.Location {
	if d.TimeZone != "" {
		if loc, err := time.LoadLocation(d.TimeZone); err == nil {
			return loc
		}
	}
	if d.UTCOffsetMilliseconds != 0 || d.UTCOffset != "" {
		name := d.TimeZone
		if name == "" {
			name = "UTC" + d.UTCOffset
		}
		return time.FixedZone(name, int(d.UTCOffsetMilliseconds/1000))
	}
	return time.UTC
}

// AccountDetails reads the account's details (time zone, currency, hosting) with
// GET /account-info/v3/details.
func (c *Client) AccountDetails(ctx context.Context) (AccountDetails, error) {
	var d AccountDetails
	if _, err := c.do(ctx, http.MethodGet, "/account-info/v3/details", nil, nil, &d); err != nil {
		return AccountDetails{}, fmt.Errorf("read hubspot account details: %w", err)
	}
	return d, nil
}
