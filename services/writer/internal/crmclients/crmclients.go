// Package crmclients hands the writer's CRM adapters their tenant's Salesforce and HubSpot clients
// from libs/crmconn's per-tenant cache, and says which failures are permanent for the writer: an
// unknown tenant, a provider that is not enabled and a configuration that cannot make a client are
// permanent *crmwrite.Errors (writes for the tenant fail until an admin fixes it); a tenant store
// failure is returned as is.
package crmclients

import (
	"context"
	"errors"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/writer/internal/crmwrite"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// Clients hands out the clients of each tenant. It is safe for concurrent use.
type Clients struct{ conn *crmconn.Clients }

// New returns Clients.
func New(cfg crmconn.Config) *Clients { return &Clients{conn: crmconn.New(cfg)} }

// classify makes configuration problems permanent *crmwrite.Errors.
func classify(p provider.Provider, err error) error {
	var ce *crmconn.ConfigError
	if errors.Is(err, tenant.ErrNotFound) || errors.Is(err, crmconn.ErrNotConnected) || errors.As(err, &ce) {
		return &crmwrite.Error{Provider: p, Class: ownership.Classification{Class: ownership.Permanent}, Err: err}
	}
	return err
}

// Salesforce returns the tenant's Salesforce client.
func (c *Clients) Salesforce(ctx context.Context, tenantID string) (*salesforce.Client, error) {
	cl, err := c.conn.Salesforce(ctx, tenantID)
	if err != nil {
		return nil, classify(provider.Salesforce, err)
	}
	return cl, nil
}

// HubSpot returns the tenant's HubSpot client.
func (c *Clients) HubSpot(ctx context.Context, tenantID string) (*hubspot.Client, error) {
	cl, err := c.conn.HubSpot(ctx, tenantID)
	if err != nil {
		return nil, classify(provider.HubSpot, err)
	}
	return cl, nil
}

// The method values below fit crmwrite's client funcs, e.g. crmwrite.NewSalesforce(cfg, c.SalesforceWriter).

// SalesforceWriter returns the tenant's Salesforce client for crmwrite.Salesforce.
func (c *Clients) SalesforceWriter(ctx context.Context, tenantID string) (crmwrite.SalesforceAPI, error) {
	return c.Salesforce(ctx, tenantID)
}

// HubSpotWriter returns the tenant's HubSpot client for crmwrite.HubSpot.
func (c *Clients) HubSpotWriter(ctx context.Context, tenantID string) (crmwrite.HubSpotAPI, error) {
	return c.HubSpot(ctx, tenantID)
}
