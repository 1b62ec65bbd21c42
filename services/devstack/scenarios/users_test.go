package scenarios

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/platformsim"
)

// TestHubSpotUserMapping is story 2: the admin's view of HubSpot user mapping on the demo tenant,
// then Sync Users cleaning up each kind of invalid mapping, then the admin report email.
func TestHubSpotUserMapping(t *testing.T) {
	e := start(t)
	const hs = "hubspot"

	t.Run("overview counts agree with the lists", func(t *testing.T) {
		ov := e.overview().of(hs)
		if !ov.Connected || ov.Mapped != 22 || ov.Errors != 4 || ov.UnmappedPlatform != 3 || ov.UnmappedCRM != 1 || ov.Conflicts != 0 {
			t.Errorf("hubspot overview = %+v, want connected, 22 mapped, 4 errors, 3+1 unmapped, 0 conflicts (demo seed)", ov)
		}
		if all := e.mappings(url.Values{"provider": {hs}, "status": {"synced"}, "per_page": {"200"}}); all.Total != ov.Mapped {
			t.Errorf("synced mappings total %d, overview mapped %d", all.Total, ov.Mapped)
		}
		if n := len(e.unmapped("platform-users", hs)); n != ov.UnmappedPlatform {
			t.Errorf("unmapped platform list has %d, overview %d", n, ov.UnmappedPlatform)
		}
		if n := len(e.unmapped("crm-users", hs)); n != ov.UnmappedCRM {
			t.Errorf("unmapped CRM list has %d, overview %d", n, ov.UnmappedCRM)
		}
	})

	t.Run("mapped list search and paging", func(t *testing.T) {
		for _, tc := range []struct{ q, wantPlatform, wantCRM string }{
			{"lovelace", "pu-ada-lovelace", "71234501"},
			{"ADA.LOVELACE@acme", "pu-ada-lovelace", "71234501"},
			{"71234503", "pu-alan-turing", "71234503"},
			{"pu-grace-hopper", "pu-grace-hopper", "71234502"},
			{"nina", "pu-nina-simone", "71234601"},        // case-different email in HubSpot
			{"oliver.reed", "pu-oliver-reed", "71234603"}, // the active one of two owners with the email
		} {
			pg := e.mappings(url.Values{"provider": {hs}, "q": {tc.q}})
			if pg.Total != 1 || len(pg.Items) != 1 || pg.Items[0].PlatformUserID != tc.wantPlatform || pg.Items[0].CRMUserID != tc.wantCRM {
				t.Errorf("q=%q: total %d items %+v, want %s→%s", tc.q, pg.Total, pg.Items, tc.wantPlatform, tc.wantCRM)
			}
		}
		if pg := e.mappings(url.Values{"provider": {hs}, "q": {"nobody-at-all"}}); pg.Total != 0 || len(pg.Items) != 0 {
			t.Errorf("q=nobody-at-all: %+v", pg)
		}
		whole := e.mappings(url.Values{"provider": {hs}, "per_page": {"200"}})
		var paged []string
		for page := 1; page <= 10; page++ {
			pg := e.mappings(url.Values{"provider": {hs}, "per_page": {"5"}, "page": {fmt.Sprint(page)}})
			if pg.Total != whole.Total || pg.PerPage != 5 || pg.Page != page {
				t.Fatalf("page %d: total %d per_page %d page %d (whole total %d)", page, pg.Total, pg.PerPage, pg.Page, whole.Total)
			}
			if len(pg.Items) == 0 {
				break
			}
			for _, m := range pg.Items {
				paged = append(paged, m.PlatformUserID)
			}
		}
		var want []string
		for _, m := range whole.Items {
			want = append(want, m.PlatformUserID)
		}
		if !slices.Equal(paged, want) {
			t.Errorf("pages of 5 give %v,\nthe whole list %v", paged, want)
		}
		if len(want) != whole.Total {
			t.Errorf("whole list has %d items, total %d", len(want), whole.Total)
		}
	})

	t.Run("unmapped lists on both sides", func(t *testing.T) {
		ids := func(us []unmappedUser) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			slices.Sort(out)
			return out
		}
		if got, want := ids(e.unmapped("platform-users", hs)), []string{"pu-former-rep", "pu-platform-only", "pu-sales-desk"}; !slices.Equal(got, want) {
			t.Errorf("unmapped platform users %v, want %v", got, want)
		}
		if got, want := ids(e.unmapped("crm-users", hs)), []string{"71234606"}; !slices.Equal(got, want) {
			t.Errorf("unmapped HubSpot owners %v, want %v", got, want)
		}
	})

	t.Run("errors for not-found and deactivated users", func(t *testing.T) {
		ps := e.problems(hs)
		has := func(code, platformUser, crmUser string) bool {
			return slices.ContainsFunc(ps, func(p problem) bool {
				return p.Code == code && p.PlatformUserID == platformUser && p.CRMUserID == crmUser && p.Fix != "" && p.Message != ""
			})
		}
		for _, w := range []struct{ code, platformUser, crmUser string }{
			{"crm_user_not_found", "pu-platform-only", ""},
			{"crm_user_inactive", "pu-former-rep", "71234604"},
			{"platform_user_not_found", "", "71234606"},
		} {
			if !has(w.code, w.platformUser, w.crmUser) {
				t.Errorf("no %s problem (with message and fix) for platform %q / HubSpot %q in %+v", w.code, w.platformUser, w.crmUser, ps)
			}
		}
	})

	t.Run("email conflicts flagged", func(t *testing.T) {
		a, err := e.hs.CreateOwner(hssim.Owner{Email: "platform.only@acme.example", FirstName: "Plat", LastName: "One", UserID: 9990001})
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.hs.CreateOwner(hssim.Owner{Email: "Platform.Only@acme.example", FirstName: "Plat", LastName: "Two", UserID: 9990002})
		if err != nil {
			t.Fatal(err)
		}
		e.syncUsers()
		if _, ok := e.mapping(hs, "pu-platform-only"); ok {
			t.Error("pu-platform-only was mapped although two active owners share its email")
		}
		ps := e.problems(hs)
		if !slices.ContainsFunc(ps, func(p problem) bool {
			return strings.EqualFold(p.Email, "platform.only@acme.example") && p.Code != "crm_user_not_found" &&
				(slices.Contains(p.CRMUserIDs, a.ID) || p.CRMUserID == a.ID) &&
				(slices.Contains(p.CRMUserIDs, b.ID) || slices.ContainsFunc(ps, func(q problem) bool { return q.CRMUserID == b.ID && q.Code == p.Code }))
		}) {
			t.Errorf("no conflict naming owners %s and %s for platform.only@acme.example in %+v", a.ID, b.ID, ps)
		}
		if ov := e.overview().of(hs); ov.Conflicts == 0 {
			t.Errorf("overview shows no conflict: %+v", ov)
		}
	})

	t.Run("Sync Users cleans up every invalid mapping", func(t *testing.T) {
		ctx := context.Background()
		// Archive an owner, change an owner's email, suspend a platform user, make one an extension.
		if _, err := e.hs.ArchiveOwner("71234502"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.hs.UpdateOwner("71234503", func(o *hssim.Owner) { o.Email = "alan@elsewhere.example" }); err != nil {
			t.Fatal(err)
		}
		update := func(id string, fn func(*platformsim.User)) {
			u, ok := e.p.User(id)
			if !ok {
				t.Fatalf("no platform user %s", id)
			}
			fn(&u)
			if err := e.p.PutUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		update("pu-katherine-johnson", func(u *platformsim.User) { u.Status = "suspended" })
		update("pu-linus-torvalds", func(u *platformsim.User) { u.Kind = "extension" })
		// Between runs, the platform events break the mappings at once (conflict or error).
		for _, id := range []string{"pu-katherine-johnson", "pu-linus-torvalds"} {
			harness.EventuallyState(t, 15*time.Second, id+" mapping no longer synced after the platform event", func() (bool, string) {
				m, ok := e.mapping(hs, id)
				return !ok || m.Status != "synced", fmt.Sprintf("%+v (exists %v)", m, ok)
			})
		}
		r := e.syncUsers()
		removed := map[string]string{}
		for _, p := range r.Providers {
			if p.Provider != hs {
				continue
			}
			for _, c := range p.Changes {
				if c.Kind == "removed" {
					removed[c.PlatformUserID] = c.Reason
				}
			}
		}
		for _, id := range []string{"pu-grace-hopper", "pu-alan-turing", "pu-katherine-johnson", "pu-linus-torvalds"} {
			if removed[id] == "" {
				t.Errorf("run %s did not remove %s with a reason; removed: %v", r.ID, id, removed)
			}
			if m, ok := e.mapping(hs, id); ok {
				t.Errorf("%s still mapped after Sync Users: %+v", id, m)
			}
		}
		if m, ok := e.mapping(hs, "pu-ada-lovelace"); !ok || m.Status != "synced" {
			t.Errorf("an untouched mapping changed: %+v (exists %v)", m, ok)
		}
		if _, ok := e.mapping("salesforce", "pu-grace-hopper"); !ok {
			t.Error("archiving a HubSpot owner removed the Salesforce mapping too")
		}

		t.Run("admin report email", func(t *testing.T) {
			// The report of the run that removed the mappings reaches the tenant's report recipients.
			harness.EventuallyState(t, 20*time.Second, "report email for run "+r.ID+" in the SMTP sink", func() (bool, string) {
				var seen []string
				for _, m := range e.s.SMTP.Messages() {
					seen = append(seen, fmt.Sprintf("%v %q", m.To, m.Subject))
					if slices.Contains(m.To, "sales-ops@acme.example") && strings.Contains(string(m.Data), "grace.hopper@acme.example") {
						return true, ""
					}
				}
				return false, fmt.Sprintf("%d messages: %v", len(seen), seen)
			})
		})
	})
}

// TestOneCRMUserNeverMappedTwice is the second half of story 4: whatever the admin does by hand, a
// CRM user is never mapped to two platform users. A manual mapping wins over an email match (rule 3),
// so pinning an email-matched CRM user to another platform user moves the mapping; pinning a CRM user
// that is already pinned by hand to someone else is refused with 409.
func TestOneCRMUserNeverMappedTwice(t *testing.T) {
	e := start(t)
	holders := func(provider, crmUser string) []string {
		var out []string
		for _, m := range e.mappings(url.Values{"provider": {provider}, "per_page": {"200"}}).Items {
			if m.CRMUserID == crmUser {
				out = append(out, m.PlatformUserID)
			}
		}
		return out
	}
	for _, tc := range []struct{ provider, crmUser, free string }{
		{"hubspot", "71234501", "71234606"},
		{"salesforce", e.sfUser("ada.lovelace@acme.example.sf").ID, e.sfUser("sf.only@acme.example.sf").ID},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			base := "/v1/tenants/" + tenantID + "/mappings/" + tc.provider + "/"
			// Pin the email-matched CRM user of Ada to pu-platform-only: either refused, or moved.
			var ae apiError
			st := e.api("PUT", base+"pu-platform-only", map[string]string{"crm_user_id": tc.crmUser}, &ae)
			switch got := holders(tc.provider, tc.crmUser); {
			case st == 409 && slices.Equal(got, []string{"pu-ada-lovelace"}):
				t.Logf("pinning an email-matched CRM user elsewhere is refused: %s", ae.Error.Message)
			case st == 200 && slices.Equal(got, []string{"pu-platform-only"}):
				t.Logf("pinning an email-matched CRM user elsewhere moves the mapping (manual wins over email)")
			default:
				t.Fatalf("pin %s to pu-platform-only: HTTP %d %+v; CRM user now mapped to %v", tc.crmUser, st, ae, got)
			}
			// Pin a free CRM user to pu-sales-desk; then pinning it to pu-former-rep too is refused.
			var m mappingJSON
			if st := e.api("PUT", base+"pu-sales-desk", map[string]string{"crm_user_id": tc.free}, &m); st != 200 || m.CRMUserID != tc.free || m.MadeBy != "manual" {
				t.Fatalf("pin the free %s to pu-sales-desk: HTTP %d %+v", tc.free, st, m)
			}
			ae = apiError{}
			if st := e.api("PUT", base+"pu-former-rep", map[string]string{"crm_user_id": tc.free}, &ae); st != 409 {
				t.Errorf("second manual mapping of %s (to pu-former-rep): HTTP %d %+v, want 409", tc.free, st, ae)
			}
			if got := holders(tc.provider, tc.free); !slices.Equal(got, []string{"pu-sales-desk"}) {
				t.Errorf("%s mapped to %v, want only pu-sales-desk", tc.free, got)
			}
		})
	}
	// Sync Users keeps the pins and still maps every CRM user at most once.
	e.syncUsers()
	for _, provider := range []string{"hubspot", "salesforce"} {
		seen := map[string]string{}
		for _, m := range e.mappings(url.Values{"provider": {provider}, "per_page": {"200"}}).Items {
			if m.CRMUserID == "" {
				continue
			}
			if other, dup := seen[m.CRMUserID]; dup {
				t.Errorf("%s: CRM user %s mapped to %s and %s after Sync Users", provider, m.CRMUserID, other, m.PlatformUserID)
			}
			seen[m.CRMUserID] = m.PlatformUserID
		}
		if m, ok := e.mapping(provider, "pu-sales-desk"); !ok || m.MadeBy != "manual" {
			t.Errorf("%s: manual mapping of pu-sales-desk after Sync Users: %+v (exists %v)", provider, m, ok)
		}
	}
}
