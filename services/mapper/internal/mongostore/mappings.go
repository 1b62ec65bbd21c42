package mongostore

import (
	"context"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// mappingDoc is a stored mapping, keyed <tenant>/<provider>/<platform user id>.
type mappingDoc struct {
	Key               string            `bson:"_id"`
	Tenant            string            `bson:"tenant"`
	Provider          provider.Provider `bson:"provider"`
	PlatformUserID    string            `bson:"platform_user_id"`
	CRMUserID         string            `bson:"crm_user_id"`
	PreviousCRMUserID string            `bson:"previous_crm_user_id,omitempty"`
	Email             string            `bson:"email"`
	Status            string            `bson:"status"`
	Reason            string            `bson:"reason,omitempty"`
	MadeBy            string            `bson:"made_by"`
	CreatedAt         time.Time         `bson:"created_at"`
	UpdatedAt         time.Time         `bson:"updated_at"`
}

// MappingKey is the stored key of a mapping.
func MappingKey(tenant string, provider provider.Provider, platformUserID string) string {
	return tenant + "/" + string(provider) + "/" + platformUserID
}

func toMappingDoc(tenant string, m mapping.Mapping) mappingDoc {
	return mappingDoc{
		Key: MappingKey(tenant, m.Provider, m.PlatformUserID), Tenant: tenant, Provider: m.Provider,
		PlatformUserID: m.PlatformUserID, CRMUserID: m.CRMUserID, PreviousCRMUserID: m.PreviousCRMUserID,
		Email: m.Email, Status: string(m.Status), Reason: m.Reason, MadeBy: string(m.MadeBy),
		CreatedAt: m.CreatedAt.UTC().Truncate(time.Millisecond), UpdatedAt: m.UpdatedAt.UTC().Truncate(time.Millisecond),
	}
}

func (d mappingDoc) mapping() mapping.Mapping {
	return mapping.Mapping{
		Provider: d.Provider, PlatformUserID: d.PlatformUserID, CRMUserID: d.CRMUserID,
		PreviousCRMUserID: d.PreviousCRMUserID, Email: d.Email, Status: mapping.Status(d.Status),
		Reason: d.Reason, MadeBy: mapping.MadeBy(d.MadeBy), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
}

// Mappings returns every mapping of a tenant and provider.
func (s *Store) Mappings(ctx context.Context, tenant string, provider provider.Provider) ([]mapping.Mapping, error) {
	return s.findMappings(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}})
}

// MappingsNaming returns the mappings of a tenant and provider that name one of the platform users
// or one of the CRM users.
func (s *Store) MappingsNaming(ctx context.Context, tenant string, provider provider.Provider, platformUserIDs, crmUserIDs []string) ([]mapping.Mapping, error) {
	seen := map[string]bool{}
	var out []mapping.Mapping
	add := func(field, id string) error {
		ms, err := s.findMappings(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "provider", Value: provider}, {Key: field, Value: id}})
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !seen[m.PlatformUserID] {
				seen[m.PlatformUserID] = true
				out = append(out, m)
			}
		}
		return nil
	}
	for _, id := range platformUserIDs {
		if err := add("platform_user_id", id); err != nil {
			return nil, err
		}
	}
	for _, id := range crmUserIDs {
		if err := add("crm_user_id", id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) findMappings(ctx context.Context, filter bson.D) ([]mapping.Mapping, error) {
	cur, err := s.db.Collection(Mappings).Find(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("find mappings: %w", err)
	}
	defer cur.Close(ctx)
	var out []mapping.Mapping
	for cur.Next(ctx) {
		var d mappingDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("decode mapping: %w", err)
		}
		out = append(out, d.mapping())
	}
	return out, cur.Err()
}

// WriteMappings applies the rules' output: deletes first, then upserts. stored are the mappings as
// they were when the rules ran (at least those naming the users of the upserts). Without
// transactions a remap that moves a CRM user from one platform user to another would collide on
// the one-per-CRM-user index half-way, so an upsert whose CRM user changed is first parked on a
// placeholder CRM id that nothing else can hold ("~parked:<platform user id>"), then written.
// Every step is an idempotent write keyed on the natural id, so replaying the call is safe.
func (s *Store) WriteMappings(ctx context.Context, tenant string, stored, upserts, deletes []mapping.Mapping) error {
	coll := s.db.Collection(Mappings)
	if s.deleteInsert(len(upserts) + len(deletes)) {
		// Every stored version is deleted before any new one is inserted, so no remap collides
		// and no parking is needed.
		was := make(map[string]bool, len(stored))
		for _, m := range stored {
			was[string(m.Provider)+"/"+m.PlatformUserID] = true
		}
		var inserts, replaces []keyed
		var ids []string
		for _, m := range deletes {
			ids = append(ids, MappingKey(tenant, m.Provider, m.PlatformUserID))
		}
		for _, m := range upserts {
			d := toMappingDoc(tenant, m)
			if was[string(m.Provider)+"/"+m.PlatformUserID] {
				replaces = append(replaces, keyed{d.Key, d})
			} else {
				inserts = append(inserts, keyed{d.Key, d})
			}
		}
		for _, r := range replaces {
			ids = append(ids, r.key)
		}
		if err := deleteIn(ctx, coll, ids); err != nil {
			return fmt.Errorf("delete mappings %s: %w", tenant, err)
		}
		if err := s.write(ctx, coll, append(inserts, replaces...), nil, nil); err != nil {
			return fmt.Errorf("write mappings %s: %w", tenant, err)
		}
		return nil
	}
	var models []mongo.WriteModel
	for _, m := range deletes {
		models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: MappingKey(tenant, m.Provider, m.PlatformUserID)}}))
	}
	if err := bulkWrite(ctx, coll, models); err != nil {
		return fmt.Errorf("delete mappings %s: %w", tenant, err)
	}
	was := make(map[string]string, len(stored))
	for _, m := range stored {
		was[string(m.Provider)+"/"+m.PlatformUserID] = m.CRMUserID
	}
	models = models[:0]
	var inserts []any
	for _, m := range upserts {
		old, ok := was[string(m.Provider)+"/"+m.PlatformUserID]
		if !ok {
			inserts = append(inserts, toMappingDoc(tenant, m))
			continue
		}
		if old != m.CRMUserID {
			models = append(models, mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: MappingKey(tenant, m.Provider, m.PlatformUserID)}}).
				SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "crm_user_id", Value: "~parked:" + m.PlatformUserID}}}}))
		}
	}
	if err := bulkWrite(ctx, coll, models); err != nil {
		return fmt.Errorf("park remapped mappings %s: %w", tenant, err)
	}
	models = models[:0]
	for _, m := range upserts {
		if _, ok := was[string(m.Provider)+"/"+m.PlatformUserID]; ok {
			d := toMappingDoc(tenant, m)
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: d.Key}}).SetReplacement(d).SetUpsert(true))
		}
	}
	if err := insertManyIdx(ctx, coll, inserts, func(i int) {
		doc := inserts[i].(mappingDoc)
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: doc.Key}}).SetReplacement(doc).SetUpsert(true))
	}); err != nil {
		return fmt.Errorf("insert mappings %s: %w", tenant, err)
	}
	if err := bulkWrite(ctx, coll, models); err != nil {
		return fmt.Errorf("write mappings %s: %w", tenant, err)
	}
	return nil
}

// Generation returns the write generation of a tenant's provider mappings (see BumpGeneration).
func (s *Store) Generation(ctx context.Context, tenant string, provider provider.Provider) (int64, error) {
	var d struct {
		Gen int64 `bson:"generation"`
	}
	err := s.db.Collection(KVState).FindOne(ctx, bson.D{{Key: "_id", Value: tenant + "/" + string(provider)}}).Decode(&d)
	if err == mongo.ErrNoDocuments {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("generation %s/%s: %w", tenant, provider, err)
	}
	return d.Gen, nil
}

// BumpGeneration increments and returns the write generation of a tenant's provider mappings.
// Writers bump it before writing mappings and store it in the KV view after updating the view, so
// a view whose generation is behind missed a write and is rebuilt at start.
func (s *Store) BumpGeneration(ctx context.Context, tenant string, provider provider.Provider) (int64, error) {
	var d struct {
		Gen int64 `bson:"generation"`
	}
	err := s.db.Collection(KVState).FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: tenant + "/" + string(provider)}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "generation", Value: int64(1)}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&d)
	if err != nil {
		return 0, fmt.Errorf("bump generation %s/%s: %w", tenant, provider, err)
	}
	return d.Gen, nil
}
