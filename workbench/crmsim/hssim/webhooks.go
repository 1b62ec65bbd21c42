package hssim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// MaxEventsPerRequest is the most events one webhook request carries
// (docs/crm-protocols.md#hubspot-webhook-batches).
const MaxEventsPerRequest = 100

// WebhookConfig configures webhook delivery. With no TargetURL nothing is sent.
type WebhookConfig struct {
	// TargetURL is the app's webhook target URL, signed as given (v3 decodes a few escapes).
	TargetURL string `json:"targetUrl,omitempty" yaml:"targetUrl,omitempty"`
	// SubscriptionID is the contact.propertyChange (hubspot_owner_id) subscription's id
	// (default 2730011).
	SubscriptionID int64 `json:"subscriptionId,omitempty" yaml:"subscriptionId,omitempty"`
	// MaxRetries is how many times a failed batch is retried (default 10; negative: none).
	MaxRetries int `json:"maxRetries,omitempty" yaml:"maxRetries,omitempty"`
	// BaseDelay is the first retry wait (default 1 s); each retry doubles it up to MaxDelay
	// (default 1 h), then adds up to Jitter × the delay of random jitter (default 0.5).
	BaseDelay time.Duration `json:"baseDelay,omitempty" yaml:"baseDelay,omitempty"`
	MaxDelay  time.Duration `json:"maxDelay,omitempty" yaml:"maxDelay,omitempty"`
	Jitter    float64       `json:"jitter,omitempty" yaml:"jitter,omitempty"`
	// Timeout is how long one delivery may take before it counts as failed (default 5 s).
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// BatchDelay is how long events are collected before a request is sent (default 20 ms).
	BatchDelay time.Duration `json:"batchDelay,omitempty" yaml:"batchDelay,omitempty"`
	// MaxConcurrent caps requests in flight (default 10).
	MaxConcurrent int `json:"maxConcurrent,omitempty" yaml:"maxConcurrent,omitempty"`
	// DisableV1 leaves out the v1 X-HubSpot-Signature headers.
	DisableV1 bool `json:"disableV1,omitempty" yaml:"disableV1,omitempty"`
}

func (c *WebhookConfig) defaults() {
	if c.SubscriptionID == 0 {
		c.SubscriptionID = 2730011
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 10
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = time.Hour
	}
	if c.Jitter <= 0 {
		c.Jitter = 0.5
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.BatchDelay <= 0 {
		c.BatchDelay = 20 * time.Millisecond
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 10
	}
}

// Event is one webhook event, fields in HubSpot's order (§3.2).
type Event struct {
	EventID          int64  `json:"eventId"`
	SubscriptionID   int64  `json:"subscriptionId"`
	PortalID         int64  `json:"portalId"`
	AppID            int64  `json:"appId"`
	OccurredAt       int64  `json:"occurredAt"`
	SubscriptionType string `json:"subscriptionType"`
	AttemptNumber    int    `json:"attemptNumber"`
	ObjectID         int64  `json:"objectId"`
	PropertyName     string `json:"propertyName"`
	PropertyValue    string `json:"propertyValue"`
	ChangeSource     string `json:"changeSource"`
	SourceID         string `json:"sourceId"`
}

// WebhookDelivery is one delivery attempt of a batch.
type WebhookDelivery struct {
	AttemptNumber int         `json:"attemptNumber"`
	EventIDs      []int64     `json:"eventIds"`
	Time          time.Time   `json:"time"`
	Status        int         `json:"status,omitempty"`
	Error         string      `json:"error,omitempty"`
	Delivered     bool        `json:"delivered"`
	GaveUp        bool        `json:"gaveUp,omitempty"`
	Body          []byte      `json:"-"`
	Header        http.Header `json:"-"`
}

// WebhookStats counts webhook traffic.
type WebhookStats struct {
	Pending   int `json:"pending"`   // events not yet in a request
	Active    int `json:"active"`    // batches being delivered or waiting to be retried
	Delivered int `json:"delivered"` // batches answered with 2xx
	Failed    int `json:"failed"`    // batches given up after the last retry
	Attempts  int `json:"attempts"`  // requests sent
}

type webhooks struct {
	acct   *Account
	cfg    WebhookConfig
	client *http.Client

	targetMu sync.RWMutex // guards cfg.TargetURL

	mu         sync.Mutex
	pending    []Event
	timer      *time.Timer
	seq        int64
	deliveries []WebhookDelivery
	stats      WebhookStats
	rnd        *rand.Rand
	retryNow   chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
}

const maxWebhookDeliveriesKept = 1000

func newWebhooks(a *Account) *webhooks {
	ctx, cancel := context.WithCancel(context.Background())
	wh := &webhooks{
		acct: a, cfg: a.cfg.Webhooks, client: a.cfg.HTTPClient, ctx: ctx, cancel: cancel,
		sem:      make(chan struct{}, a.cfg.Webhooks.MaxConcurrent),
		rnd:      rand.New(rand.NewPCG(a.cfg.RandSeed, 0x5deece66d)),
		seq:      1849302000,
		retryNow: make(chan struct{}),
	}
	if wh.client == nil {
		wh.client = &http.Client{Timeout: wh.cfg.Timeout}
	}
	return wh
}

func (wh *webhooks) target() string {
	wh.targetMu.RLock()
	defer wh.targetMu.RUnlock()
	return wh.cfg.TargetURL
}

func (wh *webhooks) close() {
	wh.cancel()
	wh.mu.Lock()
	if wh.timer != nil {
		wh.timer.Stop()
	}
	wh.mu.Unlock()
	wh.wg.Wait()
}

// enqueue records a property change of contact id. Called with the account lock held.
func (wh *webhooks) enqueue(contactID, prop, value, source, sourceID string, now time.Time) {
	if wh.target() == "" {
		return
	}
	subID := wh.cfg.SubscriptionID
	if wh.acct.cfg.App.DeveloperAPIKey != "" {
		// The app manages its subscriptions through the webhooks API: only subscribed changes go out.
		subID = 0
		for _, s := range wh.acct.subs {
			if s.Active && s.EventType == "contact.propertyChange" && s.PropertyName == prop {
				subID = s.ID
			}
		}
		if subID == 0 {
			return
		}
	}
	oid, _ := strconv.ParseInt(contactID, 10, 64)
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if wh.ctx.Err() != nil {
		return
	}
	wh.seq++
	wh.pending = append(wh.pending, Event{
		EventID: wh.seq, SubscriptionID: subID, PortalID: wh.acct.cfg.PortalID, AppID: wh.acct.cfg.AppID,
		OccurredAt: now.UnixMilli(), SubscriptionType: "contact.propertyChange", ObjectID: oid,
		PropertyName: prop, PropertyValue: value, ChangeSource: source, SourceID: sourceID,
	})
	wh.stats.Pending++
	if len(wh.pending) >= MaxEventsPerRequest {
		wh.flushLocked()
		return
	}
	if wh.timer == nil {
		wh.timer = time.AfterFunc(wh.cfg.BatchDelay, wh.flush)
	}
}

func (wh *webhooks) flush() {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	wh.flushLocked()
}

// flushLocked starts delivering every pending event in batches of ≤ 100; wh.mu held.
func (wh *webhooks) flushLocked() {
	if wh.timer != nil {
		wh.timer.Stop()
		wh.timer = nil
	}
	if wh.ctx.Err() != nil {
		return
	}
	for len(wh.pending) > 0 {
		n := min(len(wh.pending), MaxEventsPerRequest)
		batch := append([]Event(nil), wh.pending[:n]...)
		wh.pending = wh.pending[n:]
		wh.stats.Pending -= n
		wh.stats.Active++
		wh.wg.Add(1)
		go wh.deliver(batch)
	}
	wh.pending = nil
}

func (wh *webhooks) delay(retry int) time.Duration {
	d := wh.cfg.BaseDelay
	for i := 0; i < retry && d < wh.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, wh.cfg.MaxDelay)
	wh.mu.Lock()
	j := time.Duration(wh.rnd.Float64() * wh.cfg.Jitter * float64(d))
	wh.mu.Unlock()
	return d + j
}

func (wh *webhooks) deliver(batch []Event) {
	defer wh.wg.Done()
	ids := make([]int64, len(batch))
	for i, ev := range batch {
		ids[i] = ev.EventID
	}
	for attempt := 0; ; attempt++ {
		for i := range batch {
			batch[i].AttemptNumber = attempt
		}
		body, _ := json.Marshal(batch)
		select {
		case wh.sem <- struct{}{}:
		case <-wh.ctx.Done():
			return
		}
		status, hdr, err := wh.post(body)
		<-wh.sem
		ok := err == nil && status >= 200 && status < 300
		d := WebhookDelivery{AttemptNumber: attempt, EventIDs: ids, Time: time.Now(), Status: status, Delivered: ok, Body: body, Header: hdr}
		if err != nil {
			d.Error = err.Error()
		} else if !ok {
			d.Error = fmt.Sprintf("status %d", status)
		}
		last := !ok && attempt >= wh.cfg.MaxRetries
		d.GaveUp = last
		wh.mu.Lock()
		wh.stats.Attempts++
		if len(wh.deliveries) >= maxWebhookDeliveriesKept {
			wh.deliveries = append(wh.deliveries[:0], wh.deliveries[len(wh.deliveries)/2:]...)
		}
		wh.deliveries = append(wh.deliveries, d)
		if ok || last {
			wh.stats.Active--
			if ok {
				wh.stats.Delivered++
			} else {
				wh.stats.Failed++
			}
		}
		retryNow := wh.retryNow
		wh.mu.Unlock()
		if ok || last {
			if last {
				wh.acct.logger.Warn("webhook batch given up", "events", len(batch), "attempts", attempt+1)
			}
			return
		}
		t := time.NewTimer(wh.delay(attempt))
		select {
		case <-t.C:
		case <-retryNow:
			t.Stop()
		case <-wh.ctx.Done():
			t.Stop()
			return
		}
	}
}

// post sends one signed request (§3.5): v3 signature and timestamp, plus v1 for compatibility.
func (wh *webhooks) post(body []byte) (int, http.Header, error) {
	ctx, cancel := context.WithTimeout(wh.ctx, wh.cfg.Timeout)
	defer cancel()
	target := wh.target()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	secret := wh.acct.cfg.ClientSecret
	ts := strconv.FormatInt(wh.acct.now().UnixMilli(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon (crmsim)")
	req.Header.Set("X-HubSpot-Request-Timestamp", ts)
	req.Header.Set("X-HubSpot-Signature-v3", SignV3(secret, http.MethodPost, target, body, ts))
	if !wh.cfg.DisableV1 {
		req.Header.Set("X-HubSpot-Signature-Version", "v1")
		req.Header.Set("X-HubSpot-Signature", SignV1(secret, body))
	}
	hdr := req.Header.Clone()
	resp, err := wh.client.Do(req)
	if err != nil {
		return 0, hdr, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, hdr, nil
}

// WebhookDeliveries returns the webhook requests sent so far, oldest first.
func (a *Account) WebhookDeliveries() []WebhookDelivery {
	a.wh.mu.Lock()
	defer a.wh.mu.Unlock()
	return append([]WebhookDelivery(nil), a.wh.deliveries...)
}

// WebhookStats returns webhook counters.
func (a *Account) WebhookStats() WebhookStats {
	a.wh.mu.Lock()
	defer a.wh.mu.Unlock()
	return a.wh.stats
}

// SetWebhookTarget changes the app's webhook target URL at run time (empty: stop sending new
// events), e.g. once the receiver's port is known. Batches being retried go to the new URL.
func (a *Account) SetWebhookTarget(url string) {
	a.wh.targetMu.Lock()
	a.wh.cfg.TargetURL = url
	a.wh.targetMu.Unlock()
}

// FlushWebhooks sends pending events now and cuts every retry wait short.
func (a *Account) FlushWebhooks() {
	a.wh.mu.Lock()
	a.wh.flushLocked()
	close(a.wh.retryNow)
	a.wh.retryNow = make(chan struct{})
	a.wh.mu.Unlock()
}
