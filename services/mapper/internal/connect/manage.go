package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/tenant"
)

// Fact is one line of a test result.
type Fact struct{ Label, Value string }

// TestResult is what Test connection found.
type TestResult struct {
	OK      bool
	Facts   []Fact
	Problem string
}

// Test calls the CRM with the tenant's connection: identity of the account, how many users it
// has, and the API usage against the limit.
func (s *Service) Test(ctx context.Context, t *tenant.Tenant, provider string) TestResult {
	if s.clients == nil {
		return TestResult{Problem: "no CRM clients configured"}
	}
	switch provider {
	case Salesforce:
		cl, err := s.clients.SalesforceFor(t)
		if err != nil {
			return TestResult{Problem: problemText(err)}
		}
		total, active := 0, 0
		err = cl.QueryUsers(ctx, func(page []salesforce.User) error {
			for _, u := range page {
				total++
				if u.IsActive {
					active++
				}
			}
			return nil
		})
		if err != nil {
			return TestResult{Problem: problemText(err)}
		}
		r := TestResult{OK: true, Facts: []Fact{{"Org id", t.Salesforce.OrgID}, {"Instance", t.Salesforce.InstanceURL},
			{"Users", fmt.Sprintf("%d (%d active)", total, active)}}}
		if li, ok := cl.LimitInfo(); ok {
			r.Facts = append(r.Facts, Fact{"API requests in the last 24 h", fmt.Sprintf("%d of %d (%s)", li.Used, li.Max, percent(li.Used, li.Max))})
		}
		return r
	case HubSpot:
		cl, err := s.clients.HubSpotFor(t)
		if err != nil {
			return TestResult{Problem: problemText(err)}
		}
		d, err := cl.AccountDetails(ctx)
		if err != nil {
			return TestResult{Problem: problemText(err)}
		}
		if d.PortalID != t.HubSpot.PortalID {
			return TestResult{Problem: fmt.Sprintf("the token belongs to account %d, not %d", d.PortalID, t.HubSpot.PortalID)}
		}
		owners := 0
		if err := cl.ListOwners(ctx, false, func(page []hubspot.Owner) error { owners += len(page); return nil }); err != nil {
			return TestResult{Problem: problemText(err)}
		}
		r := TestResult{OK: true, Facts: []Fact{{"Account (portal)", strconv.FormatInt(d.PortalID, 10)}, {"Time zone", d.TimeZone},
			{"Owners", strconv.Itoa(owners)}}}
		if rl, ok := cl.RateLimitInfo(); ok {
			if rl.HasDaily {
				r.Facts = append(r.Facts, Fact{"API calls today", fmt.Sprintf("%d of %d (%s)", rl.Daily-rl.DailyRemaining, rl.Daily, percent(rl.Daily-rl.DailyRemaining, rl.Daily))})
			} else {
				r.Facts = append(r.Facts, Fact{"API calls today", "HubSpot does not report the daily quota to OAuth apps; see Settings › Integrations › Private Apps › API call usage in HubSpot"})
			}
			if rl.Max > 0 {
				r.Facts = append(r.Facts, Fact{"Burst window", fmt.Sprintf("%d of %d left", rl.Remaining, rl.Max)})
			}
		}
		return r
	}
	return TestResult{Problem: "unknown provider"}
}

func percent(used, limit int64) string {
	if limit <= 0 {
		return "no limit"
	}
	return fmt.Sprintf("%.1f %%", float64(used)*100/float64(limit))
}

// problemText is an admin-readable reason without secrets (CRM errors carry codes, not tokens).
func problemText(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// ConnectedHere reports whether the provider's connection was made by a Connect flow (its
// tokens are stored) rather than set by the operator.
func ConnectedHere(t *tenant.Tenant, provider string) bool {
	switch provider {
	case HubSpot:
		return t.HubSpot != nil && secretbox.IsRef(t.HubSpot.Auth.RefreshTokenRef)
	case Salesforce:
		return t.Salesforce != nil && t.Salesforce.Auth.Flow == "web_server" && secretbox.IsRef(t.Salesforce.Auth.RefreshTokenRef)
	}
	return false
}

// Disconnect revokes the connection's refresh token at the CRM (when it can), deletes the stored
// tokens and turns the provider off. It returns whether the CRM confirmed the revocation.
func (s *Service) Disconnect(ctx context.Context, tenantID, provider string) (revoked bool, err error) {
	if s.stored == nil {
		return false, ErrNoKeyring
	}
	t, err := s.tenants.Get(ctx, tenantID)
	if err != nil {
		return false, err
	}
	if !ConnectedHere(t, provider) {
		return false, public("This connection was set by the operator; ask them to change it.")
	}
	switch provider {
	case HubSpot:
		if rt, err := s.stored.Get(ctx, t.ID, HubSpotRefreshToken); err == nil {
			base := strings.TrimSuffix(t.HubSpot.Auth.TokenURL, "/oauth/v1/token")
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/oauth/v1/refresh-tokens/"+url.PathEscape(rt.Reveal()), nil)
			st, _, err := s.do(req)
			revoked = err == nil && (st == http.StatusNoContent || st == http.StatusOK)
		}
		for _, n := range []string{HubSpotRefreshToken} {
			if err := s.stored.Delete(ctx, t.ID, n); err != nil {
				return revoked, err
			}
		}
		t.HubSpot.Enabled = false
		t.HubSpot.Auth.RefreshTokenRef = ""
		t.HubSpot.Auth.ConnectedBy = ""
	case Salesforce:
		if rt, err := s.stored.Get(ctx, t.ID, SalesforceRefreshToken); err == nil {
			base := strings.TrimSuffix(t.Salesforce.Auth.TokenURL, salesforceTokenPath)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/services/oauth2/revoke",
				strings.NewReader(url.Values{"token": {rt.Reveal()}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			st, _, err := s.do(req)
			revoked = err == nil && st == http.StatusOK
		}
		if err := s.stored.Delete(ctx, t.ID, SalesforceRefreshToken); err != nil {
			return revoked, err
		}
		t.Salesforce.Enabled = false
		t.Salesforce.Auth.RefreshTokenRef = ""
		t.Salesforce.Auth.ConnectedBy = ""
	default:
		return false, errors.New("unknown provider")
	}
	return revoked, s.tenants.Put(ctx, t)
}

// OutboundURLWithKey is the endpoint URL to paste into Salesforce, carrying key (?key=). ownersync
// keeps only the key's digest: the URL exists when the key was just generated or rotated, or when
// the admin types the key in again (the package download).
func (s *Service) OutboundURLWithKey(key string) string {
	return s.OutboundURL() + "?key=" + url.QueryEscape(key)
}
