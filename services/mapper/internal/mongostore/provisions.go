package mongostore

import (
	"context"
	"errors"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Provisions is the collection of outstanding auto-provisioning requests (rule 7), one document per
// tenant, provider and CRM user.
const Provisions = "provisions"

type provisionDoc struct {
	Key         string            `bson:"_id"`
	Tenant      string            `bson:"tenant"`
	Provider    provider.Provider `bson:"provider"`
	CRMUserID   string            `bson:"crm_user_id"`
	Email       string            `bson:"email"`
	FirstName   string            `bson:"first_name,omitempty"`
	LastName    string            `bson:"last_name,omitempty"`
	RequestedAt time.Time         `bson:"requested_at"`
}

func provisionKey(tenant string, provider provider.Provider, crmUserID string) string {
	return tenant + "/" + string(provider) + "/" + crmUserID
}

func (d provisionDoc) provision() mapping.Provision {
	return mapping.Provision{Provider: d.Provider, CRMUserID: d.CRMUserID, Email: d.Email, FirstName: d.FirstName,
		LastName: d.LastName, RequestedAt: d.RequestedAt.UTC()}
}

// PutProvision records an outstanding provisioning request. It reports whether the request is new;
// a request already recorded keeps its first RequestedAt (so a redelivered owner change, which the
// rules refuse anyway, changes nothing).
func (s *Store) PutProvision(ctx context.Context, tenant string, p mapping.Provision) (created bool, err error) {
	d := provisionDoc{Key: provisionKey(tenant, p.Provider, p.CRMUserID), Tenant: tenant, Provider: p.Provider,
		CRMUserID: p.CRMUserID, Email: p.Email, FirstName: p.FirstName, LastName: p.LastName, RequestedAt: p.RequestedAt.UTC()}
	r, err := s.db.Collection(Provisions).UpdateOne(ctx, bson.D{{Key: "_id", Value: d.Key}},
		bson.D{{Key: "$setOnInsert", Value: d}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return false, fmt.Errorf("put provision %s: %w", d.Key, err)
	}
	return r.UpsertedCount > 0, nil
}

// Provision returns one outstanding provisioning request, or domain.ErrNotFound.
func (s *Store) Provision(ctx context.Context, tenant string, provider provider.Provider, crmUserID string) (mapping.Provision, error) {
	var d provisionDoc
	err := s.db.Collection(Provisions).FindOne(ctx, bson.D{{Key: "_id", Value: provisionKey(tenant, provider, crmUserID)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return mapping.Provision{}, fmt.Errorf("provision %s/%s/%s: %w", tenant, provider, crmUserID, domain.ErrNotFound)
	}
	if err != nil {
		return mapping.Provision{}, fmt.Errorf("get provision %s/%s/%s: %w", tenant, provider, crmUserID, err)
	}
	return d.provision(), nil
}

// Provisions returns the outstanding provisioning requests of a tenant's provider; with crmUserIDs
// only those naming one of them (none for an empty list). Sorted by CRM user id.
func (s *Store) Provisions(ctx context.Context, tenant string, provider provider.Provider, crmUserIDs ...string) ([]mapping.Provision, error) {
	filter := bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}}
	if crmUserIDs != nil {
		if len(crmUserIDs) == 0 {
			return nil, nil
		}
		filter = append(filter, bson.E{Key: "crm_user_id", Value: bson.D{{Key: "$in", Value: crmUserIDs}}})
	}
	cur, err := s.db.Collection(Provisions).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "crm_user_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list provisions %s/%s: %w", tenant, provider, err)
	}
	var docs []provisionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list provisions %s/%s: %w", tenant, provider, err)
	}
	out := make([]mapping.Provision, len(docs))
	for i, d := range docs {
		out[i] = d.provision()
	}
	return out, nil
}

// DeleteProvision removes a request that is no longer outstanding (its CRM user got mapped, was
// deactivated or removed). Deleting a missing request is not an error.
func (s *Store) DeleteProvision(ctx context.Context, tenant string, provider provider.Provider, crmUserID string) error {
	if _, err := s.db.Collection(Provisions).DeleteOne(ctx, bson.D{{Key: "_id", Value: provisionKey(tenant, provider, crmUserID)}}); err != nil {
		return fmt.Errorf("delete provision %s/%s/%s: %w", tenant, provider, crmUserID, err)
	}
	return nil
}
