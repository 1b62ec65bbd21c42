package crmwrite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ownersync/ownersync/libs/hubspot"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/retry"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// HubSpotAPI is the part of *hubspot.Client a flush uses.
type HubSpotAPI interface {
	BatchUpdateOwners(ctx context.Context, updates []hubspot.OwnerUpdate) (hubspot.BatchResult, error)
	BatchReadContacts(ctx context.Context, idProperty string, ids []string) ([]hubspot.Contact, error)
	AccountDetails(ctx context.Context) (hubspot.AccountDetails, error)
	RateLimitInfo() (hubspot.RateLimit, bool)
}

var _ HubSpotAPI = (*hubspot.Client)(nil)

// HubSpot flushes batches through the contacts batch update.
type HubSpot struct {
	cfg    Config
	client func(ctx context.Context, tenant string) (HubSpotAPI, error)

	mu        sync.Mutex
	zones     map[string]zone        // per tenant
	zoneLocks map[string]*sync.Mutex // per tenant: one reader of the account's zone at a time
}

// zone is a tenant's account time zone, as known for one client (a new client, built after the
// tenant's configuration changed, reads it again).
type zone struct {
	client HubSpotAPI
	loc    *time.Location
}

// NewHubSpot returns the HubSpot adapter; client returns a tenant's API client (its error is
// returned as a transient failure of the batch unless it is an *Error).
func NewHubSpot(cfg Config, client func(ctx context.Context, tenant string) (HubSpotAPI, error)) *HubSpot {
	cfg = cfg.withDefaults()
	if cfg.RateLimitPause <= 0 {
		cfg.RateLimitPause = hubspot.DefaultRateWindow
	}
	if cfg.RecordRetryWait < hubspot.LockWait {
		// A locked record stays locked for 2 s.
		cfg.RecordRetryWait = hubspot.LockWait
	}
	return &HubSpot{cfg: cfg, client: client, zones: map[string]zone{}, zoneLocks: map[string]*sync.Mutex{}}
}

// accountZone makes sure the limiter resets the tenant's daily quota at midnight in the account's
// time zone: the configured one (Config.HubSpotZone), else the one the account info API names,
// read once per client through the limiter. A failed read is tried again at the next flush;
// meanwhile the limiter's default zone applies.
func (h *HubSpot) accountZone(ctx context.Context, key BatchKey, client HubSpotAPI) {
	h.mu.Lock()
	z, ok := h.zones[key.Tenant]
	if ok && z.client == client {
		h.mu.Unlock()
		return
	}
	// One flush per tenant reads the zone; the tenant's other flushes wait for it.
	lock := h.zoneLocks[key.Tenant]
	if lock == nil {
		lock = &sync.Mutex{}
		h.zoneLocks[key.Tenant] = lock
	}
	h.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()
	h.mu.Lock()
	z, ok = h.zones[key.Tenant]
	h.mu.Unlock()
	if ok && z.client == client {
		return
	}
	loc, configured := (*time.Location)(nil), false
	if h.cfg.HubSpotZone != nil {
		loc, configured = h.cfg.HubSpotZone(ctx, key.Tenant)
	}
	if !configured {
		if err := h.cfg.Limiter.Wait(ctx, limitKey(key)); err != nil {
			return
		}
		d, err := client.AccountDetails(ctx)
		h.observe(key, client)
		if err != nil {
			return
		}
		loc = d.Location()
	}
	h.cfg.Limiter.SetLocation(limitKey(key), loc)
	h.mu.Lock()
	h.zones[key.Tenant] = zone{client: client, loc: loc}
	h.mu.Unlock()
}

var _ batcher.FlushFunc[BatchKey, Write, Written] = (*HubSpot)(nil).Flush

// Flush writes one batch (at most 100 contacts) with one batch update call, each input carrying
// an objectWriteTraceId that matches a 207 error back to its record. Records that failed
// transiently are sent again up to RecordRetries times. The error is for the whole batch;
// otherwise each result is the record's own.
func (h *HubSpot) Flush(ctx context.Context, key BatchKey, batch []batcher.Item[Write]) ([]batcher.Result[Written], error) {
	if key.RecordType != ownership.Contact {
		return nil, &Error{Provider: provider.HubSpot, Class: ownership.Classification{Class: ownership.Permanent},
			Message: fmt.Sprintf("hubspot owner writeback supports contacts, not %s", key.RecordType)}
	}
	client, err := h.client(ctx, key.Tenant)
	if err != nil {
		return nil, clientError(provider.HubSpot, err)
	}
	h.accountZone(ctx, key, client)
	traces := traceIDs(batch)
	results := make([]batcher.Result[Written], len(batch))
	pending := make([]int, len(batch))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; ; round++ {
		updates := make([]hubspot.OwnerUpdate, len(pending))
		for j, i := range pending {
			updates[j] = hubspot.OwnerUpdate{ContactID: batch[i].Value.RecordID, OwnerID: batch[i].Value.OwnerID, TraceID: traces[i]}
		}
		res, err := h.send(ctx, key, client, updates)
		if err != nil {
			if round == 0 {
				return nil, err
			}
			for _, i := range pending {
				results[i] = batcher.Result[Written]{Err: err}
			}
			return results, nil
		}
		var again []int
		for j, i := range pending {
			w := batch[i].Value
			if res.Items[j].Err == nil {
				results[i] = batcher.Result[Written]{Value: Written{RecordID: w.RecordID, OwnerID: w.OwnerID}}
				continue
			}
			e := hsError(res.Items[j].Err, w.RecordID)
			results[i] = batcher.Result[Written]{Err: e}
			if e.Class.Class == ownership.Transient {
				again = append(again, i)
			}
		}
		if len(again) == 0 || round >= h.cfg.RecordRetries {
			return results, nil
		}
		if err := sleep(ctx, backoffWait(h.cfg.RecordRetryWait, round)); err != nil {
			return results, nil
		}
		pending = again
	}
}

// traceIDs returns a distinct objectWriteTraceId per item.
func traceIDs(batch []batcher.Item[Write]) []string {
	out := make([]string, len(batch))
	seen := make(map[string]bool, len(batch))
	for i, it := range batch {
		t := it.Value.TraceID
		if t == "" {
			t = it.Value.RecordID
		}
		if seen[t] {
			t += "#" + strconv.Itoa(i)
		}
		seen[t] = true
		out[i] = t
	}
	return out
}

// send makes one batch update call, paced by the limiter and retried when the whole request failed
// transiently.
func (h *HubSpot) send(ctx context.Context, key BatchKey, client HubSpotAPI, updates []hubspot.OwnerUpdate) (hubspot.BatchResult, error) {
	var out hubspot.BatchResult
	err := h.call(ctx, key, client, func(ctx context.Context) error {
		res, err := client.BatchUpdateOwners(ctx, updates)
		if err != nil {
			return err
		}
		if len(res.Items) != len(updates) {
			return retry.Permanent(&Error{Provider: provider.HubSpot, Class: ownership.Classification{Class: ownership.Transient},
				Message: "hubspot answered a different number of results than inputs sent"})
		}
		out = res
		return nil
	})
	return out, err
}

// call makes one API call with fn — owner writes and record lookups alike: it waits for the
// key's limiter, feeds the answer's rate-limit headers back to it, pauses or holds the key on a
// 429, and retries whole-request transient failures. The error is an *Error.
func (h *HubSpot) call(ctx context.Context, key BatchKey, client HubSpotAPI, fn func(ctx context.Context) error) error {
	p := h.cfg.Retry
	p.Retryable = hubspot.Transient
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		if err := h.cfg.Limiter.Wait(ctx, limitKey(key)); err != nil {
			return retry.Permanent(err)
		}
		err := fn(ctx)
		h.observe(key, client)
		var ae *hubspot.APIError
		if errors.As(err, &ae) && ae.HTTPStatus == http.StatusTooManyRequests {
			h.rateLimited(key, ae)
		}
		return err
	})
	if err != nil {
		return h.batchError(key, err)
	}
	return nil
}

// observe feeds the latest rate-limit headers to the limiter.
func (h *HubSpot) observe(key BatchKey, client HubSpotAPI) {
	rl, ok := client.RateLimitInfo()
	if !ok {
		return
	}
	n := h.cfg.Limiter.ObserveHubSpotReading(limitKey(key), ratelimit.HubSpotReading{
		Max: rl.Max, Remaining: rl.Remaining, HasRemaining: rl.Max > 0, Interval: rl.Interval,
		Daily: rl.Daily, DailyRemaining: rl.DailyRemaining, HasDaily: rl.HasDaily,
	})
	if n != nil && h.cfg.OnNotice != nil {
		h.cfg.OnNotice(*n)
	}
}

// rateLimited reacts to a 429: DAILY holds the key until the account's midnight, the rolling
// window pauses it for the window.
func (h *HubSpot) rateLimited(key BatchKey, ae *hubspot.APIError) {
	if errors.Is(ae, hubspot.ErrDailyLimit) {
		if n := h.cfg.Limiter.ExhaustedDaily(limitKey(key)); n != nil && h.cfg.OnNotice != nil {
			h.cfg.OnNotice(*n)
		}
		return
	}
	wait := ae.RetryAfter()
	if wait <= 0 {
		wait = h.cfg.RateLimitPause
	}
	h.cfg.Limiter.Pause(limitKey(key), h.cfg.Now().Add(wait))
}

// batchError turns the error of a whole request into an *Error.
func (h *HubSpot) batchError(key BatchKey, err error) *Error {
	var held *ratelimit.HeldError
	if errors.As(err, &held) {
		return heldError(provider.HubSpot, held, h.cfg.Now())
	}
	if e, ok := AsError(err); ok {
		return e
	}
	e := hsError(err, "")
	if e.Class.Class == ownership.RateLimited {
		if until := h.cfg.Limiter.PausedUntil(limitKey(key)); !until.IsZero() {
			e.RetryAfter = until.Sub(h.cfg.Now())
		}
	}
	return e
}

// hsError classifies a HubSpot error: a whole-request error by status, a 207 per-input error by
// category and sub-error code.
func hsError(err error, recordID string) *Error {
	e := &Error{Provider: provider.HubSpot, RecordID: recordID, Err: err}
	var ae *hubspot.APIError
	switch {
	case errors.As(err, &ae):
		e.HTTPStatus, e.Code, e.Message, e.RetryAfter = ae.HTTPStatus, ae.Category, ae.Message, ae.RetryAfter()
		status, sub := ae.HTTPStatus, ""
		if len(ae.Errors) > 0 {
			sub = ae.Errors[0].Code
		}
		if status == http.StatusMultiStatus {
			status = 0 // one input's error
			if sub != "" {
				e.Code = sub
			}
		}
		if errors.Is(ae, hubspot.ErrDailyLimit) {
			e.Code = hubspot.PolicyDaily
		}
		category := ae.Category
		if status == 0 && category == "" {
			category = "UNKNOWN" // an input HubSpot refused without saying why: sending it again will not help
		}
		e.Class = ownership.ClassifyHubSpot(status, category, sub)
	case errors.Is(err, hubspot.ErrNoResult), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Class = ownership.Classification{Class: ownership.Transient}
	default:
		e.Class = ownership.ClassifyHubSpot(0, "", "")
	}
	return e
}
