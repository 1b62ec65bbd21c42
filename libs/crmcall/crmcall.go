// Package crmcall measures the calls ownersync makes to a CRM: count and latency by provider,
// operation and outcome, rate-limit pauses, the daily quota and the rate-limit window the CRM
// reports, and records per call. The Salesforce and HubSpot clients wrap their transport with
// Metrics.Transport and report quota readings and record counts as they parse them.
//
// Every label value is bounded: provider and operation are fixed names chosen by the client,
// outcome is one of 2xx, 207, 429, 5xx, timeout, error or a 4xx status code, and tenant is bounded
// by the number of tenants (telemetry can drop it).
package crmcall

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Metric names, registered by NewMetrics (dashboards and alert rules refer to them).
const (
	CallsTotal        = "ownersync_crm_calls_total"
	CallDuration      = "ownersync_crm_call_duration_seconds"
	PausesTotal       = "ownersync_crm_rate_limit_pauses_total"
	PauseSeconds      = "ownersync_crm_rate_limit_pause_seconds"
	QuotaUsed         = "ownersync_crm_quota_used"
	QuotaRemaining    = "ownersync_crm_quota_remaining"
	QuotaLimit        = "ownersync_crm_quota_limit"
	WindowRemaining   = "ownersync_crm_rate_limit_remaining"
	WindowMax         = "ownersync_crm_rate_limit_max"
	RecordsPerCall    = "ownersync_crm_records_per_call"
	defaultPauseAfter = 10 * time.Second
)

// Metrics holds the instruments. A nil *Metrics records nothing.
type Metrics struct {
	calls          metric.Int64Counter
	duration       metric.Float64Histogram
	pauses         metric.Int64Counter
	pauseSeconds   metric.Float64Histogram
	quotaUsed      metric.Int64Gauge
	quotaRemaining metric.Int64Gauge
	quotaLimit     metric.Int64Gauge
	winRemaining   metric.Int64Gauge
	winMax         metric.Int64Gauge
	records        metric.Int64Histogram
}

// NewMetrics creates the instruments on mp (nil: a no-op provider).
func NewMetrics(mp metric.MeterProvider) *Metrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/ownersync/ownersync/libs/crmcall")
	var x Metrics
	x.calls, _ = m.Int64Counter(CallsTotal, metric.WithDescription("CRM HTTP calls by provider, operation and outcome (2xx, 207, 4xx code, 429, 5xx, timeout, error)."))
	x.duration, _ = m.Float64Histogram(CallDuration, metric.WithUnit("s"), metric.WithDescription("CRM HTTP call latency, headers received."))
	x.pauses, _ = m.Int64Counter(PausesTotal, metric.WithDescription("429 answers: each pauses the tenant's calls to that CRM."))
	x.pauseSeconds, _ = m.Float64Histogram(PauseSeconds, metric.WithUnit("s"), metric.WithDescription("Pause asked by a 429 (Retry-After, else 10 s)."))
	x.quotaUsed, _ = m.Int64Gauge(QuotaUsed, metric.WithDescription("Daily API quota used, as the CRM last reported it."))
	x.quotaRemaining, _ = m.Int64Gauge(QuotaRemaining, metric.WithDescription("Daily API quota remaining, as the CRM last reported it."))
	x.quotaLimit, _ = m.Int64Gauge(QuotaLimit, metric.WithDescription("Daily API quota, as the CRM last reported it."))
	x.winRemaining, _ = m.Int64Gauge(WindowRemaining, metric.WithDescription("Calls left in the CRM's rolling rate-limit window (HubSpot)."))
	x.winMax, _ = m.Int64Gauge(WindowMax, metric.WithDescription("Calls allowed in the CRM's rolling rate-limit window (HubSpot)."))
	x.records, _ = m.Int64Histogram(RecordsPerCall, metric.WithUnit("{record}"), metric.WithDescription("Records one CRM call read or wrote."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 2000))
	return &x
}

// Outcome classifies one exchange: its status class, a 4xx code, 207, 429, or timeout/error when no
// response came.
func Outcome(status int, err error) string {
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return "timeout"
		}
		return "error"
	}
	switch {
	case status == http.StatusMultiStatus:
		return "207"
	case status == http.StatusTooManyRequests:
		return "429"
	case status >= 200 && status < 300:
		return "2xx"
	case status >= 400 && status < 500:
		return strconv.Itoa(status)
	case status >= 500:
		return "5xx"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Transport wraps base so that every exchange is counted and timed. operation names a request
// with one of a fixed set of names (e.g. "query", "composite_update", "token").
func (m *Metrics) Transport(base http.RoundTripper, provider, tenant string, operation func(*http.Request) string) http.RoundTripper {
	if m == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{m: m, base: base, provider: provider, tenant: tenant, op: operation}
}

type transport struct {
	m                *Metrics
	base             http.RoundTripper
	provider, tenant string
	op               func(*http.Request) string
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	outcome := Outcome(status, err)
	ctx := r.Context()
	attrs := metric.WithAttributes(attribute.String("provider", t.provider), attribute.String("tenant", t.tenant),
		attribute.String("operation", t.op(r)), attribute.String("outcome", outcome))
	t.m.calls.Add(ctx, 1, attrs)
	t.m.duration.Record(ctx, time.Since(start).Seconds(), attrs)
	if status == http.StatusTooManyRequests {
		pause := defaultPauseAfter
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
			pause = time.Duration(s) * time.Second
		}
		kv := metric.WithAttributes(attribute.String("provider", t.provider), attribute.String("tenant", t.tenant))
		t.m.pauses.Add(ctx, 1, kv)
		t.m.pauseSeconds.Record(ctx, pause.Seconds(), kv)
	}
	return resp, err
}

func (m *Metrics) kv(provider, tenant string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("provider", provider), attribute.String("tenant", tenant))
}

// Quota records a daily quota reading.
func (m *Metrics) Quota(ctx context.Context, provider, tenant string, used, limit int64) {
	if m == nil || limit <= 0 {
		return
	}
	kv := m.kv(provider, tenant)
	remaining := max(limit-used, 0)
	m.quotaUsed.Record(ctx, used, kv)
	m.quotaRemaining.Record(ctx, remaining, kv)
	m.quotaLimit.Record(ctx, limit, kv)
}

// Window records a rolling rate-limit window reading (calls left of max).
func (m *Metrics) Window(ctx context.Context, provider, tenant string, remaining, maxCalls int64) {
	if m == nil || maxCalls <= 0 {
		return
	}
	kv := m.kv(provider, tenant)
	m.winRemaining.Record(ctx, remaining, kv)
	m.winMax.Record(ctx, maxCalls, kv)
}

// Records records how many records one call carried.
func (m *Metrics) Records(ctx context.Context, provider, tenant, operation string, n int) {
	if m == nil {
		return
	}
	m.records.Record(ctx, int64(n), metric.WithAttributes(attribute.String("provider", provider), attribute.String("tenant", tenant),
		attribute.String("operation", operation)))
}
