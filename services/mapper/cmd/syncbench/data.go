package main

import (
	"fmt"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// dataset is the benchmark's users. CRM user i (of crmN) has email u<i>@bench.test; platform user
// i (of platformN) has the same email, so most platform users match one CRM user per provider.
// Mixed in, by index: every 50th CRM user has an active duplicate (ambiguous email), every 33rd is
// inactive/archived, every 100th platform user is suspended, every 101st an extension, every
// 97th shares its email with the platform user before it (email conflict).
type dataset struct {
	platformN, crmN int
}

func newDataset(platformN, crmN int) *dataset { return &dataset{platformN: platformN, crmN: crmN} }

func email(i int) string { return fmt.Sprintf("u%d@bench.test", i) }

func (d *dataset) platformUsers() []domain.PlatformUser {
	out := make([]domain.PlatformUser, d.platformN)
	for i := range out {
		e := email(i)
		if i%97 == 96 {
			e = email(i - 1)
		}
		status, kind := "active", "user"
		if i%100 == 99 {
			status = "suspended"
		}
		if i%101 == 100 {
			kind = "extension"
		}
		out[i] = domain.PlatformUser{Tenant: "bench", ID: fmt.Sprintf("p%07d", i), Email: e, FirstName: "User", LastName: fmt.Sprint(i), Status: status, Kind: kind}
	}
	return out
}

func (d *dataset) sfUsers() []sfsim.SeedUser {
	t, f := true, false
	var out []sfsim.SeedUser
	for i := 0; i < d.crmN; i++ {
		active := &t
		if i%33 == 32 {
			active = &f
		}
		out = append(out, sfsim.SeedUser{Username: fmt.Sprintf("u%d@bench.sf", i), Email: email(i), FirstName: "User", LastName: fmt.Sprint(i), IsActive: active})
		if i%50 == 49 && len(out) < d.crmN {
			out = append(out, sfsim.SeedUser{Username: fmt.Sprintf("u%d-dup@bench.sf", i), Email: email(i), FirstName: "Dup", LastName: fmt.Sprint(i), IsActive: &t})
			i++ // keep the total at crmN
		}
	}
	return out[:min(len(out), d.crmN)]
}

func (d *dataset) hsOwners() []hssim.Owner {
	var out []hssim.Owner
	for i := 0; i < d.crmN; i++ {
		out = append(out, hssim.Owner{Email: email(i), FirstName: "User", LastName: fmt.Sprint(i), Type: hssim.OwnerPerson, UserID: int64(1000 + i), Archived: i%33 == 32})
		if i%50 == 49 && len(out) < d.crmN {
			out = append(out, hssim.Owner{Email: email(i), FirstName: "Dup", LastName: fmt.Sprint(i), Type: hssim.OwnerPerson, UserID: int64(900000 + i)})
			i++
		}
	}
	return out[:min(len(out), d.crmN)]
}

// mutate applies a round of CRM changes between the two runs, on 1% of the mapped users each:
// deactivation with a new active namesake (remap), deactivation alone (removal), email change
// (removal), plus new duplicates (conflicts).
func (d *dataset) mutate(sf *sfsim.Org, hs *hssim.Account) error {
	users := sf.Users()
	byEmail := map[string]string{}
	for _, u := range users {
		if u.IsActive {
			byEmail[u.Email] = u.ID
		}
	}
	n := min(d.platformN, d.crmN)
	for i := 1; i < n; i += 25 {
		id, ok := byEmail[email(i)]
		if !ok {
			continue
		}
		switch (i / 25) % 4 {
		case 0: // deactivated, a new active user takes the email: remap
			if _, err := sf.UpdateUser(id, func(u *sfsim.User) { u.IsActive = false }); err != nil {
				return err
			}
			if _, err := sf.CreateUser(sfsim.User{Username: fmt.Sprintf("u%d-new@bench.sf", i), Email: email(i), LastName: "New", IsActive: true}); err != nil {
				return err
			}
		case 1: // deactivated: removal
			if _, err := sf.UpdateUser(id, func(u *sfsim.User) { u.IsActive = false }); err != nil {
				return err
			}
		case 2: // email changed: removal
			if _, err := sf.UpdateUser(id, func(u *sfsim.User) { u.Email = fmt.Sprintf("moved%d@bench.test", i) }); err != nil {
				return err
			}
		case 3: // a second active user with the email: the mapping stays, a conflict is listed
			if _, err := sf.CreateUser(sfsim.User{Username: fmt.Sprintf("u%d-dup2@bench.sf", i), Email: email(i), LastName: "Dup2", IsActive: true}); err != nil {
				return err
			}
		}
	}
	return d.mutateHubSpot(hs, n)
}

// mutateHubSpot applies the same mix to HubSpot owners: archived with a new namesake (remap),
// archived (removal), email changed (removal), new duplicate (conflict).
func (d *dataset) mutateHubSpot(hs *hssim.Account, n int) error {
	byEmail := map[string]string{}
	for _, o := range hs.Owners() {
		if !o.Archived {
			byEmail[o.Email] = o.ID
		}
	}
	for i := 2; i < n; i += 25 {
		id, ok := byEmail[email(i)]
		if !ok {
			continue
		}
		var err error
		switch (i / 25) % 4 {
		case 0:
			if _, err = hs.ArchiveOwner(id); err == nil {
				_, err = hs.CreateOwner(hssim.Owner{Email: email(i), LastName: "New", Type: hssim.OwnerPerson, UserID: int64(2000000 + i)})
			}
		case 1:
			_, err = hs.ArchiveOwner(id)
		case 2:
			_, err = hs.UpdateOwner(id, func(o *hssim.Owner) { o.Email = fmt.Sprintf("moved%d@bench.test", i) })
		case 3:
			_, err = hs.CreateOwner(hssim.Owner{Email: email(i), LastName: "Dup2", Type: hssim.OwnerPerson, UserID: int64(3000000 + i)})
		}
		if err != nil {
			return err
		}
	}
	return nil
}
