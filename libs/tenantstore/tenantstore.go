// Package tenantstore keeps tenant configurations in MongoDB's tenants collection. mapper owns
// writes (admin API, YAML seed); ingress, writer and notifier read through a Cache that refreshes
// in the background so webhook and event hot paths never wait on a scan.
package tenantstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"gopkg.in/yaml.v3"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
)

// Collection is the collection name.
const Collection = "tenants"

// Indexes are the tenants collection's indexes (created by mapper, the owner). The two unique
// ones hold each Salesforce org and HubSpot portal to one tenant (issue 13 item 2); see sourceKeys.
var Indexes = []mongodb.Index{
	{Collection: Collection, Name: "salesforce_org", Keys: bson.D{{Key: "salesforce.org_id", Value: 1}}},
	{Collection: Collection, Name: "hubspot_portal", Keys: bson.D{{Key: "hubspot.portal_id", Value: 1}}},
	{Collection: Collection, Name: "source_salesforce_unique", Keys: bson.D{{Key: sfSourceField, Value: 1}}, Unique: true},
	{Collection: Collection, Name: "source_hubspot_unique", Keys: bson.D{{Key: hsSourceField, Value: 1}}, Unique: true},
}

// Fields of the source keys, stored beside the configuration.
const (
	sfSourceField = "source_salesforce"
	hsSourceField = "source_hubspot"
)

// document is a tenant as stored: the configuration and its source keys.
type document struct {
	tenant.Tenant `bson:",inline"`
	SFSource      string `bson:"source_salesforce"`
	HSSource      string `bson:"source_hubspot"`
}

// sourceKeys are the values the unique indexes hold for a tenant: the 18-character org id and the
// HubSpot portal id it is connected to, or "none:<tenant>" without one. A key is always present and
// never shared by two tenants without a source, so plain unique indexes work on MongoDB (where a
// missing field indexes as null, and two nulls collide) and on FerretDB v1 (no partial indexes).
// The portal alone is the key, stricter than (portal, app): ingress routes HubSpot webhooks by
// portal, so two tenants on one portal could never both receive theirs.
func sourceKeys(t *tenant.Tenant) (sf, hs string) {
	sf, hs = "none:"+t.ID, "none:"+t.ID
	if t.Salesforce != nil && t.Salesforce.OrgID != "" {
		if id, err := sfid.To18(t.Salesforce.OrgID); err == nil {
			sf = id
		}
	}
	if t.HubSpot != nil && t.HubSpot.PortalID != 0 {
		hs = strconv.FormatInt(t.HubSpot.PortalID, 10)
	}
	return sf, hs
}

// Store reads and writes tenants.
type Store struct {
	c   *mongo.Collection
	now func() time.Time
	// OnChange, when set, is called after a tenant was written or deleted (mapper announces the
	// change so that other services' caches refresh at once; see Cache.Follow).
	OnChange func(ctx context.Context, id string)
	// Policy, when set, is checked by Put besides Validate: secret references inside the operator's
	// namespace, CRM URLs on allowed hosts (mapper sets it; issue 13 item 1).
	Policy *tenant.Policy
}

// New returns a store on db.
func New(db *mongo.Database, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{c: db.Collection(Collection), now: now}
}

// Get returns one tenant or tenant.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*tenant.Tenant, error) {
	var t tenant.Tenant
	err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&t)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("tenant %s: %w", id, tenant.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return &t, nil
}

// List returns every tenant sorted by id.
func (s *Store) List(ctx context.Context) ([]tenant.Tenant, error) {
	cur, err := s.c.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	var out []tenant.Tenant
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Put validates and upserts a tenant (normalising the Salesforce org id to 18 characters).
func (s *Store) Put(ctx context.Context, t *tenant.Tenant) error {
	t.Normalize()
	if err := t.Validate(); err != nil {
		return err
	}
	if s.Policy != nil {
		if err := s.Policy.Check(t); err != nil {
			return err
		}
	}
	t.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	d := document{Tenant: *t}
	d.SFSource, d.HSSource = sourceKeys(t)
	_, err := s.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: t.ID}}, d, options.Replace().SetUpsert(true))
	if isDuplicate(err) {
		return s.claimed(ctx, t.ID, d, err)
	}
	if err != nil {
		return fmt.Errorf("put tenant %s: %w", t.ID, err)
	}
	if s.OnChange != nil {
		s.OnChange(ctx, t.ID)
	}
	return nil
}

// SetHubSpotTimeZone records a HubSpot account's time zone (an IANA name) in the tenant's
// connection when the connection has a HubSpot part that names none; a zone set meanwhile (by the
// admin) is kept. Only that field and updated_at change, so a concurrent edit of other settings is
// not overwritten.
func (s *Store) SetHubSpotTimeZone(ctx context.Context, id, tz string) error {
	if _, err := time.LoadLocation(tz); tz == "" || err != nil {
		return fmt.Errorf("hubspot time zone %q of tenant %s: not a known time zone", tz, id)
	}
	filter := bson.D{{Key: "_id", Value: id}, {Key: "hubspot", Value: bson.D{{Key: "$type", Value: "object"}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "hubspot.time_zone", Value: bson.D{{Key: "$exists", Value: false}}}},
			bson.D{{Key: "hubspot.time_zone", Value: ""}},
		}}}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "hubspot.time_zone", Value: tz},
		{Key: "updated_at", Value: s.now().UTC().Truncate(time.Millisecond)}}}}
	res, err := s.c.UpdateOne(ctx, filter, update)
	if err != nil {
		return fmt.Errorf("set hubspot time zone of tenant %s: %w", id, err)
	}
	if res.ModifiedCount > 0 && s.OnChange != nil {
		s.OnChange(ctx, id)
	}
	return nil
}

// SwapSharedKey replaces a Salesforce connection's shared keys (current, its creation time,
// previous and its end) when they are still current and previous: a compare-and-set on the two
// references, so that two mapper replicas migrating or rotating the same key at once do not both
// win. Only those fields and updated_at change. It reports whether the swap happened (false: the
// keys changed meanwhile, or the tenant has no Salesforce connection).
func (s *Store) SwapSharedKey(ctx context.Context, id, current, previous string, next tenant.SFConfig) (bool, error) {
	for _, ref := range []string{next.SharedKeyRef, next.PreviousSharedKeyRef} {
		if ref != "" && !tenant.IsSharedKeyDigest(ref) {
			return false, fmt.Errorf("swap shared key of tenant %s: a shared key must be a digest", id)
		}
	}
	is := func(field, v string) bson.D {
		if v == "" {
			return bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: field, Value: bson.D{{Key: "$exists", Value: false}}}},
				bson.D{{Key: field, Value: ""}},
			}}}
		}
		return bson.D{{Key: field, Value: v}}
	}
	filter := bson.D{{Key: "_id", Value: id}, {Key: "salesforce", Value: bson.D{{Key: "$type", Value: "object"}}},
		{Key: "$and", Value: bson.A{is("salesforce.shared_key_ref", current), is("salesforce.previous_shared_key_ref", previous)}}}
	set, unset := bson.D{{Key: "updated_at", Value: s.now().UTC().Truncate(time.Millisecond)}}, bson.D{}
	for _, f := range []struct {
		field string
		v     any
		empty bool
	}{
		{"shared_key_ref", next.SharedKeyRef, next.SharedKeyRef == ""},
		{"shared_key_created_at", next.SharedKeyCreatedAt, next.SharedKeyCreatedAt.IsZero()},
		{"previous_shared_key_ref", next.PreviousSharedKeyRef, next.PreviousSharedKeyRef == ""},
		{"previous_shared_key_until", next.PreviousSharedKeyUntil, next.PreviousSharedKeyUntil.IsZero()},
	} {
		if f.empty {
			unset = append(unset, bson.E{Key: "salesforce." + f.field, Value: ""})
		} else {
			set = append(set, bson.E{Key: "salesforce." + f.field, Value: f.v})
		}
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	res, err := s.c.UpdateOne(ctx, filter, update)
	if err != nil {
		return false, fmt.Errorf("swap shared key of tenant %s: %w", id, err)
	}
	if res.ModifiedCount == 0 {
		return false, nil
	}
	if s.OnChange != nil {
		s.OnChange(ctx, id)
	}
	return true, nil
}

// isDuplicate reports a unique index violation: MongoDB's E11000, or FerretDB v1's internal error
// for an update that breaks one (SQLite's "UNIQUE constraint failed").
func isDuplicate(err error) bool {
	return err != nil && (mongo.IsDuplicateKeyError(err) || strings.Contains(err.Error(), "UNIQUE constraint failed"))
}

// claimed turns a unique index violation into a *tenant.SourceClaimedError naming the source.
func (s *Store) claimed(ctx context.Context, id string, d document, dup error) error {
	for _, c := range []struct{ field, key, source string }{
		{sfSourceField, d.SFSource, "salesforce org " + d.SFSource},
		{hsSourceField, d.HSSource, "hubspot portal " + d.HSSource},
	} {
		var holder struct {
			ID string `bson:"_id"`
		}
		err := s.c.FindOne(ctx, bson.D{{Key: c.field, Value: c.key}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}}).Decode(&holder)
		if err == nil {
			return &tenant.SourceClaimedError{Source: c.source, Holder: holder.ID}
		}
	}
	return fmt.Errorf("put tenant %s: %w", id, dup)
}

// ClaimSources stores the source keys of tenants saved before the unique indexes existed, so
// that the indexes can be built (mapper calls it at start, before EnsureIndexes). Tenants that
// share a source get "conflict:<tenant>" keys instead: the index stays buildable, ingress keeps
// refusing the shared source (503 source_conflict) and the operator resolves it with a PATCH, which
// then claims the source or is refused with 409. It returns one line per shared source.
func (s *Store) ClaimSources(ctx context.Context) ([]string, error) {
	cur, err := s.c.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("claim tenant sources: %w", err)
	}
	var docs []document
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("claim tenant sources: %w", err)
	}
	want := make([][2]string, len(docs))
	claims := map[string][]string{}
	for i := range docs {
		sf, hs := sourceKeys(&docs[i].Tenant)
		want[i] = [2]string{sf, hs}
		claims["salesforce org "+sf] = append(claims["salesforce org "+sf], docs[i].ID)
		claims["hubspot portal "+hs] = append(claims["hubspot portal "+hs], docs[i].ID)
	}
	var conflicts []string
	for src, ids := range claims {
		if len(ids) > 1 {
			sort.Strings(ids)
			conflicts = append(conflicts, src+": "+strings.Join(ids, ", "))
		}
	}
	sort.Strings(conflicts)
	for i := range docs {
		d := &docs[i]
		sf, hs := want[i][0], want[i][1]
		if len(claims["salesforce org "+sf]) > 1 {
			sf = "conflict:" + d.ID
		}
		if len(claims["hubspot portal "+hs]) > 1 {
			hs = "conflict:" + d.ID
		}
		if sf == d.SFSource && hs == d.HSSource {
			continue
		}
		if _, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: sfSourceField, Value: sf}, {Key: hsSourceField, Value: hs}}}}); err != nil {
			return conflicts, fmt.Errorf("claim sources of tenant %s: %w", d.ID, err)
		}
	}
	return conflicts, nil
}

// Delete removes a tenant.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("tenant %s: %w", id, tenant.ErrNotFound)
	}
	if s.OnChange != nil {
		s.OnChange(ctx, id)
	}
	return nil
}

// SeedFile is the YAML seed (OWNERSYNC_TENANTS_FILE).
type SeedFile struct {
	Tenants []tenant.Tenant `yaml:"tenants"`
}

// LoadSeed reads and validates a seed file; every tenant's problems are reported at once.
func LoadSeed(path string) ([]tenant.Tenant, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tenants file: %w", err)
	}
	var f SeedFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse tenants file %s: %w", path, err)
	}
	var errs []error
	for i := range f.Tenants {
		f.Tenants[i].Normalize()
		if err := f.Tenants[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", f.Tenants[i].ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f.Tenants, nil
}

// Cache serves tenant lookups from memory, refreshed every interval and on a miss (at most once
// per MinRefresh, so a flood of webhooks from an unknown portal cannot hammer MongoDB).
type Cache struct {
	s          *Store
	Interval   time.Duration
	MinRefresh time.Duration
	// Logger, when set, is told of every source that more than one tenant claims, once each time
	// the set of such conflicts changes.
	Logger *slog.Logger

	mu       sync.RWMutex
	byID     map[string]*tenant.Tenant
	byOrg    map[string]*tenant.Tenant
	byPortal map[int64]*tenant.Tenant
	// conflicts names the tenants of every source more than one tenant claims ("salesforce org
	// 00D…", "hubspot portal 123"); lookups of those sources answer tenant.ErrSourceConflict.
	conflicts map[string][]string
	loadedAt  time.Time
	refresh   sync.Mutex
}

// CacheOptions are how often a Cache reloads; the service's configuration holds them
// (servicekit.Config.TenantCache).
type CacheOptions struct {
	// Interval is how often every tenant is reloaded (above zero).
	Interval time.Duration
	// MinRefresh is the least time between the reloads that misses cause (0: none).
	MinRefresh time.Duration
}

// NewCache returns a cache over s that reloads as o says; o is used as it is (an Interval that is
// not above zero is a wiring mistake and panics).
func NewCache(s *Store, o CacheOptions) *Cache {
	if o.Interval <= 0 || o.MinRefresh < 0 {
		panic(fmt.Sprintf("tenantstore.NewCache: options out of range (take them from the configuration): %+v", o))
	}
	return &Cache{s: s, Interval: o.Interval, MinRefresh: o.MinRefresh}
}

// Refresh reloads every tenant.
func (c *Cache) Refresh(ctx context.Context) error {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	ts, err := c.s.List(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]*tenant.Tenant, len(ts))
	byOrg := map[string]*tenant.Tenant{}
	byPortal := map[int64]*tenant.Tenant{}
	conflicts := map[string][]string{}
	// A source claimed twice is held by neither tenant: last-write-wins would hand one tenant's
	// webhooks to whoever wrote the other configuration last (issue 13 item 2).
	claim := func(key string, t *tenant.Tenant, held *tenant.Tenant) bool {
		if held == nil && conflicts[key] == nil {
			return true
		}
		if conflicts[key] == nil {
			conflicts[key] = []string{held.ID}
		}
		conflicts[key] = append(conflicts[key], t.ID)
		return false
	}
	for i := range ts {
		t := &ts[i]
		byID[t.ID] = t
		if t.Salesforce != nil && t.Salesforce.OrgID != "" {
			if id, err := sfid.To18(t.Salesforce.OrgID); err == nil {
				if key := "salesforce org " + id; claim(key, t, byOrg[id]) {
					byOrg[id] = t
				} else {
					delete(byOrg, id)
				}
			}
		}
		if t.HubSpot != nil && t.HubSpot.PortalID != 0 {
			if key := fmt.Sprintf("hubspot portal %d", t.HubSpot.PortalID); claim(key, t, byPortal[t.HubSpot.PortalID]) {
				byPortal[t.HubSpot.PortalID] = t
			} else {
				delete(byPortal, t.HubSpot.PortalID)
			}
		}
	}
	for _, ids := range conflicts {
		sort.Strings(ids)
	}
	c.mu.Lock()
	changed := !maps.EqualFunc(c.conflicts, conflicts, slices.Equal)
	c.byID, c.byOrg, c.byPortal, c.conflicts, c.loadedAt = byID, byOrg, byPortal, conflicts, time.Now()
	c.mu.Unlock()
	if changed && c.Logger != nil {
		for _, key := range slices.Sorted(maps.Keys(conflicts)) {
			c.Logger.ErrorContext(ctx, "a source is claimed by more than one tenant; its webhooks are refused until an operator resolves it",
				"source", key, "tenants", conflicts[key])
		}
	}
	return nil
}

// Run refreshes every Interval until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = c.Refresh(ctx)
		}
	}
}

func (c *Cache) lookup(ctx context.Context, find func() *tenant.Tenant, what string) (*tenant.Tenant, error) {
	c.mu.RLock()
	t := find()
	if t == nil {
		if ids, ok := c.conflicts[what]; ok {
			c.mu.RUnlock()
			return nil, fmt.Errorf("%s claimed by tenants %s: %w", what, strings.Join(ids, ", "), tenant.ErrSourceConflict)
		}
	}
	stale := time.Since(c.loadedAt) > c.MinRefresh
	c.mu.RUnlock()
	if t == nil && stale {
		if err := c.Refresh(ctx); err != nil {
			return nil, err
		}
		c.mu.RLock()
		t = find()
		ids, conflict := c.conflicts[what]
		c.mu.RUnlock()
		if t == nil && conflict {
			return nil, fmt.Errorf("%s claimed by tenants %s: %w", what, strings.Join(ids, ", "), tenant.ErrSourceConflict)
		}
	}
	if t == nil {
		return nil, fmt.Errorf("%s: %w", what, tenant.ErrNotFound)
	}
	return t, nil
}

// Get returns a tenant by id.
func (c *Cache) Get(ctx context.Context, id string) (*tenant.Tenant, error) {
	return c.lookup(ctx, func() *tenant.Tenant { return c.byID[id] }, "tenant "+id)
}

// BySalesforceOrg returns the tenant whose Salesforce org id equals orgID (compared in 18-char form).
func (c *Cache) BySalesforceOrg(ctx context.Context, orgID string) (*tenant.Tenant, error) {
	id, err := sfid.To18(orgID)
	if err != nil {
		return nil, fmt.Errorf("organization %q: %w", orgID, tenant.ErrNotFound)
	}
	return c.lookup(ctx, func() *tenant.Tenant { return c.byOrg[id] }, "salesforce org "+id)
}

// ByHubSpotPortal returns the tenant connected to a HubSpot portal.
func (c *Cache) ByHubSpotPortal(ctx context.Context, portalID int64) (*tenant.Tenant, error) {
	return c.lookup(ctx, func() *tenant.Tenant { return c.byPortal[portalID] }, fmt.Sprintf("hubspot portal %d", portalID))
}

// All returns every cached tenant.
func (c *Cache) All() []*tenant.Tenant {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*tenant.Tenant, 0, len(c.byID))
	for _, t := range c.byID {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ChangedSubject is the core NATS subject (not captured by any stream) on which mapper announces a
// tenant configuration change; the payload is the tenant id.
const ChangedSubject = "ownersync.tenant.changed"

// Announce returns an OnChange hook that publishes on ChangedSubject. A lost announcement only
// delays the change until the caches' next periodic refresh.
func Announce(nc *nats.Conn) func(ctx context.Context, id string) {
	return func(_ context.Context, id string) { _ = nc.Publish(ChangedSubject, []byte(id)) }
}

// Follow refreshes the cache whenever a tenant change is announced, so an admin's settings take
// effect at once rather than at the next periodic refresh. Call the returned function to stop.
func (c *Cache) Follow(nc *nats.Conn) (stop func(), err error) {
	sub, err := nc.Subscribe(ChangedSubject, func(*nats.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Refresh(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("follow tenant changes: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
