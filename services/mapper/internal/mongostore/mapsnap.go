package mongostore

import (
	"context"
	"fmt"
	"github.com/ownersync/ownersync/libs/provider"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// Sync Users reads every mapping of a provider; on FerretDB that decodes every mapping document
// of the collection (issue 18). So Sync Users also keeps a chunked copy of a provider's mappings
// (chunks.go) in MappingSets, valid for one generation: every mapping write bumps the provider's
// generation first (changes.Writer.Commit, BumpGeneration), and the copy's head records the
// generation it holds. A read uses the copy only when its generation is the current one, and
// reads the documents otherwise (after an event changed a mapping, or a crash). Sync Users writes
// the copy after its commit only when the generation is exactly one past the one it read: no other
// writer came in between.

func (s *Store) mappingSets() chunkSet[mapping.Mapping] {
	return chunkSet[mapping.Mapping]{coll: func() *mongo.Collection { return s.db.Collection(MappingSets) }, now: s.now,
		key: func(m mapping.Mapping) string { return m.PlatformUserID }}
}

// mappingRead is how ReadMappings read the mappings (domain.StoredMappings.Read).
type mappingRead struct {
	head    *setHead
	gen     int64
	fromSet bool
}

// ReadMappings returns every mapping of a tenant and provider with the note SaveMappings needs.
func (s *Store) ReadMappings(ctx context.Context, tenant string, provider provider.Provider) (domain.StoredMappings, error) {
	gen, err := s.Generation(ctx, tenant, provider)
	if err != nil {
		return domain.StoredMappings{}, err
	}
	h, err := s.mappingSets().head(ctx, tenant, provider)
	if err != nil {
		return domain.StoredMappings{}, fmt.Errorf("list mappings %s/%s: %w", tenant, provider, err)
	}
	if h != nil && h.Gen != "" && gen > 0 && h.Version == gen {
		set, err := s.mappingSets().items(ctx, h)
		if err != nil {
			return domain.StoredMappings{}, fmt.Errorf("list mappings %s/%s: %w", tenant, provider, err)
		}
		return domain.StoredMappings{Mappings: set.items, Read: &mappingRead{head: h, gen: gen, fromSet: true}}, nil
	}
	ms, err := s.Mappings(ctx, tenant, provider)
	return domain.StoredMappings{Mappings: ms, Read: &mappingRead{head: h, gen: gen}}, err
}

// SaveMappings writes the copy of a provider's mappings after a commit of upserts and deletes
// made on the mappings read; it does nothing when another write came between the read and the
// commit (the copy then stays behind its generation and is not read).
func (s *Store) SaveMappings(ctx context.Context, tenant string, provider provider.Provider, read domain.StoredMappings, upserts, deletes []mapping.Mapping) error {
	r, _ := read.Read.(*mappingRead)
	if r == nil {
		return nil
	}
	gen, err := s.Generation(ctx, tenant, provider)
	if err != nil {
		return err
	}
	if gen != r.gen+1 {
		return nil
	}
	next := make(map[string]mapping.Mapping, len(read.Mappings)+len(upserts))
	for _, m := range read.Mappings {
		next[m.PlatformUserID] = m
	}
	changed := make([]string, 0, len(upserts)+len(deletes))
	for _, m := range deletes {
		delete(next, m.PlatformUserID)
		changed = append(changed, m.PlatformUserID)
	}
	for _, m := range upserts {
		next[m.PlatformUserID] = toMappingDoc(tenant, m).mapping()
		changed = append(changed, m.PlatformUserID)
	}
	items := make([]mapping.Mapping, 0, len(next))
	for _, m := range next {
		items = append(items, m)
	}
	o := saveOptions{changed: changed, setVersion: true, newVersion: gen}
	if !r.fromSet {
		o.changed = nil
	}
	if _, err := s.mappingSets().save(ctx, tenant, provider, r.head, items, o); err != nil {
		return fmt.Errorf("write mappings copy %s/%s: %w", tenant, provider, err)
	}
	return nil
}
