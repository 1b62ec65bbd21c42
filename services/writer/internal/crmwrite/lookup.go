package crmwrite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

// ErrAmbiguousEmail: several CRM records have the email, so none is picked.
var ErrAmbiguousEmail = ownership.ErrAmbiguousEmail

// LookupBy says what a lookup knows of the record.
type LookupBy string

// Lookup kinds.
const (
	// ByEmail finds the records with an email (a platform change that names no CRM record).
	ByEmail LookupBy = "email"
	// ByID reads a record's email (a CRM change the platform can only apply by email; HubSpot).
	ByID LookupBy = "id"
)

// LookupKey groups lookups that can share one CRM call.
type LookupKey struct {
	BatchKey
	By LookupBy
}

// Match is what one lookup found: the ids of the records with the email (ByEmail; none, one or,
// in Salesforce, several), or the record's email (ByID; empty when there is no such record).
type Match struct {
	IDs   []string
	Email string
}

var (
	_ batcher.FlushFunc[LookupKey, string, Match] = (*Salesforce)(nil).Lookup
	_ batcher.FlushFunc[LookupKey, string, Match] = (*HubSpot)(nil).Lookup
)

// Lookup finds the records of a batch of emails with as few queries as the query length allows
// (salesforce.SplitEmails: normally one SOQL query with Email IN (…) for up to 200 emails), each
// paced, fed back and paused like a write. Deleted records do not count.
func (s *Salesforce) Lookup(ctx context.Context, key LookupKey, batch []batcher.Item[string]) ([]batcher.Result[Match], error) {
	if key.By != ByEmail {
		return nil, &Error{Provider: provider.Salesforce, Class: ownership.Classification{Class: ownership.Permanent},
			Message: fmt.Sprintf("salesforce lookups are by email, not %s", key.By)}
	}
	client, err := s.client(ctx, key.Tenant)
	if err != nil {
		return nil, clientError(provider.Salesforce, err)
	}
	emails := make([]string, len(batch))
	for i, it := range batch {
		emails[i] = it.Value
	}
	byEmail := map[string][]string{}
	for _, group := range salesforce.SplitEmails(emails) {
		var recs []salesforce.Record
		err := s.call(ctx, key.BatchKey, client, func(ctx context.Context) error {
			var err error
			recs, err = client.FindRecordsByEmail(ctx, sfObject(key.RecordType), group)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			k := foldEmail(r.Email)
			byEmail[k] = append(byEmail[k], r.ID)
		}
	}
	return matches(batch, func(email string) Match { return Match{IDs: byEmail[foldEmail(email)]} }), nil
}

// Lookup reads a batch of contacts with one batch read call (at most 100): by email
// (idProperty=email) to find their ids, or by id to read their emails; paced, fed back and paused
// like a write. Archived contacts do not count. HubSpot writes contacts only, so other record types
// find nothing without a call.
func (h *HubSpot) Lookup(ctx context.Context, key LookupKey, batch []batcher.Item[string]) ([]batcher.Result[Match], error) {
	if key.RecordType != ownership.Contact {
		return matches(batch, func(string) Match { return Match{} }), nil
	}
	client, err := h.client(ctx, key.Tenant)
	if err != nil {
		return nil, clientError(provider.HubSpot, err)
	}
	h.accountZone(ctx, key.BatchKey, client)
	var ids []string
	seen := map[string]bool{}
	for _, it := range batch {
		v := it.Value
		if key.By == ByEmail {
			v = foldEmail(v)
		}
		if !seen[v] {
			seen[v] = true
			ids = append(ids, v)
		}
	}
	idProperty := ""
	if key.By == ByEmail {
		idProperty = "email"
	}
	found := map[string]Match{}
	for start := 0; start < len(ids); start += hubspot.MaxBatchInputs {
		chunk := ids[start:min(start+hubspot.MaxBatchInputs, len(ids))]
		var contacts []hubspot.Contact
		err := h.call(ctx, key.BatchKey, client, func(ctx context.Context) error {
			var err error
			contacts, err = client.BatchReadContacts(ctx, idProperty, chunk)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range contacts {
			if c.Archived {
				continue
			}
			if key.By == ByEmail {
				m := found[foldEmail(c.Email)]
				m.IDs = append(m.IDs, c.ID)
				found[foldEmail(c.Email)] = m
			} else {
				found[c.ID] = Match{Email: c.Email}
			}
		}
	}
	return matches(batch, func(v string) Match {
		if key.By == ByEmail {
			return found[foldEmail(v)]
		}
		return found[v]
	}), nil
}

func matches(batch []batcher.Item[string], of func(string) Match) []batcher.Result[Match] {
	out := make([]batcher.Result[Match], len(batch))
	for i, it := range batch {
		out[i] = batcher.Result[Match]{Value: of(it.Value)}
	}
	return out
}

func foldEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Finder finds CRM records by email, and reads a HubSpot contact's email, for the writeback engine.
// Lookups of many concurrent changes share calls: they are batched per (tenant, provider, record
// type, kind) like writes — up to one SOQL query (200 emails) or one HubSpot batch read (100) — and
// go through the same per-tenant limiter and rate-limit pauses as writes.
type Finder struct {
	b   *batcher.Batcher[LookupKey, string, Match]
	seq atomic.Uint64
}

// FinderOptions tune a Finder; zero values take the defaults.
type FinderOptions struct {
	// Idle flushes a partial batch of lookups once no lookup has joined it for that long (default
	// 50 ms); Linger is the longest a lookup waits (default 1 s). A burst of changes thus shares
	// full batches, one call per 200 (Salesforce) or 100 (HubSpot) emails, while a lone change
	// waits only Idle.
	Idle, Linger time.Duration
	// MaxInFlight is the concurrent lookup calls per key (default 1).
	MaxInFlight int
}

// NewFinder returns a Finder that looks records up through the adapters; either may be nil when
// that CRM is not used. Close it to flush pending lookups.
func NewFinder(sf *Salesforce, hs *HubSpot, o FinderOptions) *Finder {
	if o.Idle <= 0 {
		o.Idle = 100 * time.Millisecond
	}
	if o.Linger <= 0 {
		o.Linger = time.Second
	}
	flush := func(ctx context.Context, k LookupKey, b []batcher.Item[string]) ([]batcher.Result[Match], error) {
		switch {
		case k.Provider == provider.Salesforce && sf != nil:
			return sf.Lookup(ctx, k, b)
		case k.Provider == provider.HubSpot && hs != nil:
			return hs.Lookup(ctx, k, b)
		}
		return nil, &Error{Provider: k.Provider, Class: ownership.Classification{Class: ownership.Permanent},
			Message: fmt.Sprintf("no %s client for record lookups", k.Provider)}
	}
	return &Finder{b: batcher.New(flush, batcher.Options[LookupKey, string]{
		MaxSize: func(k LookupKey) int {
			if k.Provider == provider.Salesforce {
				return salesforce.MaxQueryEmails
			}
			return hubspot.MaxBatchInputs
		},
		Linger: o.Linger, Idle: o.Idle, HoldPartial: true, MaxInFlight: o.MaxInFlight,
	})}
}

// lookup submits one lookup and waits for its match. Every submission is its own batch item (the
// batcher would otherwise coalesce two lookups of one email and answer only the later); the flush
// queries each value once.
func (f *Finder) lookup(ctx context.Context, key LookupKey, value string) (Match, error) {
	id := strconv.FormatUint(f.seq.Add(1), 10)
	res, err := f.b.Submit(ctx, key, id, value).Wait(ctx)
	if err != nil {
		return Match{}, err
	}
	return res.Value, res.Err
}

// FindRecord returns the id of the one record of type rt with email, false when there is none, or
// ErrAmbiguousEmail when there are several (Salesforce; HubSpot contact emails are unique).
// Archived HubSpot contacts and deleted Salesforce records do not count.
func (f *Finder) FindRecord(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, email string) (string, bool, error) {
	m, err := f.lookup(ctx, LookupKey{BatchKey: BatchKey{Tenant: tenant, Provider: p, RecordType: rt}, By: ByEmail}, email)
	if err != nil {
		return "", false, err
	}
	switch len(m.IDs) {
	case 0:
		return "", false, nil
	case 1:
		return m.IDs[0], true, nil
	}
	return "", false, fmt.Errorf("%d %s %ss with email %s: %w", len(m.IDs), p, rt, email, ErrAmbiguousEmail)
}

// RecordEmail returns the email of CRM record id of type rt, false when the record does not exist
// or has no email. Only HubSpot contacts are read (a Salesforce change carries the email).
func (f *Finder) RecordEmail(ctx context.Context, tenant string, p provider.Provider, rt ownership.RecordType, id string) (string, bool, error) {
	m, err := f.lookup(ctx, LookupKey{BatchKey: BatchKey{Tenant: tenant, Provider: p, RecordType: rt}, By: ByID}, id)
	if err != nil {
		return "", false, err
	}
	return m.Email, m.Email != "", nil
}

// Close flushes pending lookups and waits for them (see batcher.Batcher.Close).
func (f *Finder) Close(ctx context.Context) error { return f.b.Close(ctx) }
