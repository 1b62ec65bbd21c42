// Package crm reads CRM users for mapper: Salesforce users and HubSpot owners, through the
// per-tenant clients of libs/crmconn (secrets resolved when a client is built).
package crm

import (
	"context"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// ErrNotConnected is returned for a provider the tenant has not enabled (crmconn.ErrNotConnected).
var ErrNotConnected = crmconn.ErrNotConnected

// Directory is one tenant's user directory in one CRM; Get wraps domain.ErrNotFound when the CRM
// has no such user.
type Directory = domain.Directory

// Factory builds directories from tenant configuration.
type Factory struct {
	// Clients builds and keeps each tenant's CRM clients.
	Clients *crmconn.Clients
}

// Directory returns the directory of a tenant's connected provider.
func (f Factory) Directory(t *tenant.Tenant, provider provider.Provider) (Directory, error) {
	switch provider {
	case mapping.Salesforce:
		cl, err := f.Clients.SalesforceFor(t)
		if err != nil {
			return nil, err
		}
		return &sfDirectory{c: cl}, nil
	case mapping.HubSpot:
		cl, err := f.Clients.HubSpotFor(t)
		if err != nil {
			return nil, err
		}
		return &hsDirectory{c: cl}, nil
	}
	return nil, fmt.Errorf("%s %q: %w", t.ID, provider, ErrNotConnected)
}

type sfDirectory struct{ c *salesforce.Client }

// FromSalesforce converts a Salesforce User row.
func FromSalesforce(u salesforce.User) domain.CRMUser {
	id := u.ID
	if long, err := sfid.To18(id); err == nil {
		id = long
	}
	return domain.CRMUser{CRMUser: mapping.CRMUser{ID: id, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		Active: u.IsActive, Kind: mapping.CRMKindUser, Username: u.Username, UserType: u.UserType, License: u.License}}
}

func (d *sfDirectory) Pull(ctx context.Context, fn func([]domain.CRMUser) error) error {
	return d.c.QueryUsers(ctx, func(page []salesforce.User) error {
		out := make([]domain.CRMUser, len(page))
		for i, u := range page {
			out[i] = FromSalesforce(u)
		}
		return fn(out)
	})
}

func (d *sfDirectory) Get(ctx context.Context, id string) (domain.CRMUser, error) {
	u, err := d.c.GetUser(ctx, id)
	if errors.Is(err, salesforce.ErrNotFound) {
		return domain.CRMUser{}, fmt.Errorf("salesforce user %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.CRMUser{}, err
	}
	return FromSalesforce(u), nil
}

type hsDirectory struct{ c *hubspot.Client }

// FromHubSpot converts a HubSpot owner; archived is the pass it came from.
func FromHubSpot(o hubspot.Owner, archived bool) domain.CRMUser {
	kind := mapping.CRMKindUser
	if o.Type == hubspot.OwnerQueue {
		kind = mapping.CRMKindQueue
	}
	return domain.CRMUser{
		CRMUser:       mapping.CRMUser{ID: o.ID, Email: o.Email, FirstName: o.FirstName, LastName: o.LastName, Active: !(archived || o.Archived), Kind: kind},
		HubSpotUserID: o.UserIDIncludingInactive,
	}
}

func (d *hsDirectory) Pull(ctx context.Context, fn func([]domain.CRMUser) error) error {
	for _, archived := range []bool{false, true} {
		err := d.c.ListOwners(ctx, archived, func(page []hubspot.Owner) error {
			out := make([]domain.CRMUser, len(page))
			for i, o := range page {
				out[i] = FromHubSpot(o, archived)
			}
			return fn(out)
		})
		if err != nil {
			return fmt.Errorf("hubspot owners (archived=%t): %w", archived, err)
		}
	}
	return nil
}

func (d *hsDirectory) Get(ctx context.Context, id string) (domain.CRMUser, error) {
	o, err := d.c.GetOwner(ctx, id, false)
	if errors.Is(err, hubspot.ErrNotFound) {
		o, err = d.c.GetOwner(ctx, id, true)
		if err == nil {
			return FromHubSpot(o, true), nil
		}
	}
	if errors.Is(err, hubspot.ErrNotFound) {
		return domain.CRMUser{}, fmt.Errorf("hubspot owner %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.CRMUser{}, err
	}
	return FromHubSpot(o, false), nil
}

// AccountTimeZone reads the HubSpot account's time zone (GET /account-info/v3/details).
func (d *hsDirectory) AccountTimeZone(ctx context.Context) (string, error) {
	a, err := d.c.AccountDetails(ctx)
	if err != nil {
		return "", err
	}
	return a.TimeZone, nil
}
