package crmwrite

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/retry"
	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/services/writer/internal/batcher"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/ratelimit"
)

// SalesforceAPI is the part of *salesforce.Client a flush uses.
type SalesforceAPI interface {
	UpdateOwners(ctx context.Context, updates []salesforce.OwnerUpdate) ([]salesforce.Result, error)
	FindRecordsByEmail(ctx context.Context, objectType string, emails []string) ([]salesforce.Record, error)
	LimitInfo() (salesforce.LimitInfo, bool)
}

var _ SalesforceAPI = (*salesforce.Client)(nil)

// Config is what both adapters need.
type Config struct {
	// Limiter paces calls per (tenant, provider). Required.
	Limiter *ratelimit.Limiter
	// OnNotice receives daily-quota notices (raise an Alert on QuotaNearExhaustion). Optional.
	OnNotice func(ratelimit.Notice)
	// Retry retries whole requests that failed transiently (5xx, timeouts, network, rate limits
	// shorter than the limiter's MaxWait). Default: 3 attempts within 5 s, starting at 200 ms.
	Retry retry.Policy
	// RecordRetries is how many more times records that failed transiently (UNABLE_TO_LOCK_ROW,
	// ALL_OR_NONE_OPERATION_ROLLED_BACK, HubSpot 423) are sent again within the flush before their
	// transient error is returned. Default 2; negative: none.
	RecordRetries int
	// RecordRetryWait is the first wait before sending failed records again; it doubles each round,
	// with jitter. Default 250 ms (HubSpot's 423 lock lasts 2 s, so its adapter waits at least that).
	RecordRetryWait time.Duration
	// RateLimitPause, when set, is how long a key pauses after a rate-limit answer that names no
	// wait. Unset, a key resumes as soon as the answer's headers allow (issue 18): Salesforce's
	// REQUEST_LIMIT_EXCEEDED names no wait, so when Sforce-Limit-Info shows daily quota left (a
	// per-second or concurrency limit, which clear quickly; an exhausted quota is held separately)
	// the key pauses one call interval of its pace, and 1 s when the answer had no Sforce-Limit-Info;
	// HubSpot's 429 waits one slot of its rolling window (hubspot.RateLimit.SlotWait).
	RateLimitPause time.Duration
	// HubSpotZone returns a tenant's configured HubSpot account time zone (tenant.HSConfig.TimeZone),
	// false when none is configured: the HubSpot adapter then reads it from the account info API.
	// Optional.
	HubSpotZone func(ctx context.Context, tenant string) (*time.Location, bool)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = 3
	}
	if c.Retry.MaxElapsed == 0 {
		c.Retry.MaxElapsed = 5 * time.Second
	}
	if c.RecordRetries == 0 {
		c.RecordRetries = 2
	}
	if c.RecordRetryWait <= 0 {
		c.RecordRetryWait = 250 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Salesforce flushes batches through sObject Collections.
type Salesforce struct {
	cfg    Config
	client func(ctx context.Context, tenant string) (SalesforceAPI, error)
}

// NewSalesforce returns the Salesforce adapter; client returns a tenant's API client (its error is
// returned as a transient failure of the batch unless it is an *Error).
func NewSalesforce(cfg Config, client func(ctx context.Context, tenant string) (SalesforceAPI, error)) *Salesforce {
	cfg = cfg.withDefaults()
	return &Salesforce{cfg: cfg, client: client}
}

var _ batcher.FlushFunc[BatchKey, Write, Written] = (*Salesforce)(nil).Flush

// sfObject is the sObject name of a record type.
func sfObject(t ownership.RecordType) string {
	if t == ownership.Lead {
		return salesforce.Lead
	}
	return salesforce.Contact
}

// Flush writes one batch (at most 200 records of one record type) with one Collections call,
// matching results by position. Records that failed transiently are sent again up to RecordRetries
// times. The error is for the whole batch (no call was possible, or the request failed); otherwise
// each result is the record's own.
func (s *Salesforce) Flush(ctx context.Context, key BatchKey, batch []batcher.Item[Write]) ([]batcher.Result[Written], error) {
	client, err := s.client(ctx, key.Tenant)
	if err != nil {
		return nil, clientError(provider.Salesforce, err)
	}
	results := make([]batcher.Result[Written], len(batch))
	pending := make([]int, len(batch))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; ; round++ {
		updates := make([]salesforce.OwnerUpdate, len(pending))
		for j, i := range pending {
			updates[j] = salesforce.OwnerUpdate{ObjectType: sfObject(key.RecordType), ID: batch[i].Value.RecordID, OwnerID: batch[i].Value.OwnerID}
		}
		res, err := s.send(ctx, key, client, updates)
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
			if res[j].Success {
				results[i] = batcher.Result[Written]{Value: Written{RecordID: w.RecordID, OwnerID: w.OwnerID}}
				continue
			}
			e := sfError(res[j].Err(), w.RecordID)
			results[i] = batcher.Result[Written]{Err: e}
			if e.Class.Class == ownership.Transient {
				again = append(again, i)
			}
		}
		if len(again) == 0 || round >= s.cfg.RecordRetries {
			return results, nil
		}
		if err := sleep(ctx, backoffWait(s.cfg.RecordRetryWait, round)); err != nil {
			return results, nil
		}
		pending = again
	}
}

// send makes one Collections call, paced by the limiter and retried when the whole request failed
// transiently.
func (s *Salesforce) send(ctx context.Context, key BatchKey, client SalesforceAPI, updates []salesforce.OwnerUpdate) ([]salesforce.Result, error) {
	var out []salesforce.Result
	err := s.call(ctx, key, client, func(ctx context.Context) error {
		res, err := client.UpdateOwners(ctx, updates)
		if err != nil {
			return err
		}
		if len(res) != len(updates) {
			return retry.Permanent(&Error{Provider: provider.Salesforce, Class: ownership.Classification{Class: ownership.Transient},
				Message: "salesforce answered a different number of results than records sent"})
		}
		out = res
		return nil
	})
	return out, err
}

// call makes one API call with fn — owner writes and record lookups alike: it waits for the
// key's limiter, feeds the answer's API usage back to it, pauses the key on REQUEST_LIMIT_EXCEEDED,
// and retries whole-request transient failures. The error is an *Error.
func (s *Salesforce) call(ctx context.Context, key BatchKey, client SalesforceAPI, fn func(ctx context.Context) error) error {
	p := s.cfg.Retry
	p.Retryable = salesforce.Transient
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		for limited := 0; ; limited++ {
			if err := s.cfg.Limiter.Wait(ctx, limitKey(key)); err != nil {
				return retry.Permanent(err)
			}
			err := fn(ctx)
			s.observe(key, client)
			var ae *salesforce.APIError
			if errors.As(err, &ae) && ae.Code == salesforce.CodeRequestLimitExceeded {
				// The key is paused as long as the answer asks; the limiter's wait is the whole
				// delay before the call goes again — the retry policy's backoff on top of it cost a
				// burst 0.3-1 s per refusal (issue 18). Past a few refusals in a row the policy
				// backs off as for any transient failure.
				if s.rateLimited(key, client, ae) && limited < pacedRateLimitRetries {
					continue
				}
			}
			return err
		}
	})
	if err != nil {
		return s.batchError(key, err)
	}
	return nil
}

// observe feeds the org's API usage to the limiter.
func (s *Salesforce) observe(key BatchKey, client SalesforceAPI) {
	info, ok := client.LimitInfo()
	if !ok {
		return
	}
	if n := s.cfg.Limiter.ObserveSalesforceUsage(limitKey(key), info.Used, info.Max); n != nil && s.cfg.OnNotice != nil {
		s.cfg.OnNotice(*n)
	}
}

// pacedRateLimitRetries is how many REQUEST_LIMIT_EXCEEDED answers in a row a call goes again
// after the key's pause alone.
const pacedRateLimitRetries = 3

// rateLimited reacts to REQUEST_LIMIT_EXCEEDED: an exhausted daily quota holds the key until the
// quota recovers (false), anything else (concurrency or burst limits) pauses it briefly (true).
func (s *Salesforce) rateLimited(key BatchKey, client SalesforceAPI, ae *salesforce.APIError) (paused bool) {
	if info, ok := client.LimitInfo(); ok && info.Max > 0 && info.Used >= info.Max {
		if n := s.cfg.Limiter.ExhaustedDaily(limitKey(key)); n != nil && s.cfg.OnNotice != nil {
			s.cfg.OnNotice(*n)
		}
		return false
	}
	wait := ae.RetryAfter()
	if wait <= 0 {
		wait = s.cfg.RateLimitPause
	}
	if wait <= 0 {
		wait = time.Second // nothing known
		if _, ok := client.LimitInfo(); ok {
			// The daily quota allows more: a per-second or concurrency limit. One call interval of
			// the key's pace, and the limiter paces from there.
			if r := s.cfg.Limiter.Limits(limitKey(key)).Rate; r > 0 {
				wait = min(max(time.Duration(float64(time.Second)/r), 10*time.Millisecond), time.Second)
			}
		}
	}
	s.cfg.Limiter.Pause(limitKey(key), s.cfg.Now().Add(wait))
	return true
}

// batchError turns the error of a whole request into an *Error.
func (s *Salesforce) batchError(key BatchKey, err error) *Error {
	var held *ratelimit.HeldError
	if errors.As(err, &held) {
		return heldError(provider.Salesforce, held, s.cfg.Now())
	}
	if e, ok := AsError(err); ok {
		return e
	}
	e := sfError(err, "")
	if e.Class.Class == ownership.RateLimited {
		if until := s.cfg.Limiter.PausedUntil(limitKey(key)); !until.IsZero() {
			e.RetryAfter = until.Sub(s.cfg.Now())
		}
	}
	return e
}

// sfError classifies a Salesforce error.
func sfError(err error, recordID string) *Error {
	e := &Error{Provider: provider.Salesforce, RecordID: recordID, Err: err}
	var ae *salesforce.APIError
	if errors.As(err, &ae) {
		e.HTTPStatus, e.Code, e.Message, e.RetryAfter = ae.HTTPStatus, ae.Code, ae.Message, ae.RetryAfter()
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Class = ownership.Classification{Class: ownership.Transient}
	default:
		e.Class = ownership.ClassifySalesforce(e.HTTPStatus, e.Code)
	}
	return e
}

// backoffWait is base·2^round with ±50 % jitter.
func backoffWait(base time.Duration, round int) time.Duration {
	d := base << round
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
