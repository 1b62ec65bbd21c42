package crmwrite

import (
	"context"
	"errors"
	"fmt"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// ErrAmbiguousEmail: several CRM records have the email, so none is picked.
var ErrAmbiguousEmail = errors.New("several records have this email")

// SalesforceFinderAPI is the part of *salesforce.Client a Finder uses.
type SalesforceFinderAPI interface {
	FindRecordsByEmail(ctx context.Context, objectType string, emails []string) ([]salesforce.Record, error)
}

// HubSpotFinderAPI is the part of *hubspot.Client a Finder uses.
type HubSpotFinderAPI interface {
	FindContactByEmail(ctx context.Context, email string) (hubspot.Contact, error)
}

var (
	_ SalesforceFinderAPI = (*salesforce.Client)(nil)
	_ HubSpotFinderAPI    = (*hubspot.Client)(nil)
)

// Finder finds a CRM record by email, for platform changes that carry no CRM record id and have no
// stored link. Either client func may be nil when that CRM is not used.
type Finder struct {
	Salesforce func(ctx context.Context, tenant string) (SalesforceFinderAPI, error)
	HubSpot    func(ctx context.Context, tenant string) (HubSpotFinderAPI, error)
}

// FindRecord returns the id of the one record of type rt with email, false when there is none, or
// ErrAmbiguousEmail when there are several (Salesforce; HubSpot contact emails are unique). Archived
// HubSpot contacts and deleted Salesforce records do not count.
func (f *Finder) FindRecord(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, email string) (string, bool, error) {
	switch p {
	case provider.Salesforce:
		if f.Salesforce == nil {
			return "", false, fmt.Errorf("no salesforce client for tenant %s", tenant)
		}
		c, err := f.Salesforce(ctx, tenant)
		if err != nil {
			return "", false, err
		}
		recs, err := c.FindRecordsByEmail(ctx, sfObject(rt), []string{email})
		if err != nil {
			return "", false, err
		}
		switch len(recs) {
		case 0:
			return "", false, nil
		case 1:
			return recs[0].ID, true, nil
		}
		return "", false, fmt.Errorf("%d salesforce %ss with email %s: %w", len(recs), rt, email, ErrAmbiguousEmail)
	case provider.HubSpot:
		if f.HubSpot == nil {
			return "", false, fmt.Errorf("no hubspot client for tenant %s", tenant)
		}
		if rt != ownership.Contact {
			return "", false, nil
		}
		c, err := f.HubSpot(ctx, tenant)
		if err != nil {
			return "", false, err
		}
		ct, err := c.FindContactByEmail(ctx, email)
		if errors.Is(err, hubspot.ErrNotFound) || err == nil && ct.Archived {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		return ct.ID, true, nil
	}
	return "", false, fmt.Errorf("unknown provider %q", p)
}
