package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/tenant"
)

// published is one message the fake publisher stored.
type published struct {
	Subject string
	ID      string
	Msg     proto.Message
}

// fakePublisher behaves like JetStream with a duplicate window: a known id is a duplicate and
// stores nothing. fail, when set, decides per message whether publishing fails.
type fakePublisher struct {
	mu    sync.Mutex
	seen  map[string]bool
	msgs  []published
	fail  func(subject, id string) error
	block bool // wait for the context to end, like a JetStream that never acks
	// delay, when set, holds a publish before it is stored (to shuffle concurrent publishes).
	delay func(id string) time.Duration
}

func (p *fakePublisher) Publish(ctx context.Context, subject, msgID string, m proto.Message) (bool, error) {
	if p.block {
		<-ctx.Done()
		return false, ctx.Err()
	}
	if p.delay != nil {
		time.Sleep(p.delay(msgID))
	}
	if p.fail != nil {
		if err := p.fail(subject, msgID); err != nil {
			return false, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if p.seen[msgID] {
		return true, nil
	}
	p.seen[msgID] = true
	p.msgs = append(p.msgs, published{subject, msgID, proto.Clone(m)})
	return false, nil
}

// inOrder returns the stored messages in the order they were stored.
func (p *fakePublisher) inOrder() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]published(nil), p.msgs...)
}

// stored returns the stored messages sorted by id (publishing is concurrent).
func (p *fakePublisher) stored() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]published(nil), p.msgs...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

type fakeTenants struct {
	byOrg    map[string]*tenant.Tenant
	byPortal map[int64]*tenant.Tenant
	err      error
}

func (f *fakeTenants) BySalesforceOrg(_ context.Context, org string) (*tenant.Tenant, error) {
	if f.err != nil {
		return nil, f.err
	}
	if t, ok := f.byOrg[org]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("org %s: %w", org, tenant.ErrNotFound)
}

func (f *fakeTenants) ByHubSpotPortal(_ context.Context, portal int64) (*tenant.Tenant, error) {
	if f.err != nil {
		return nil, f.err
	}
	if t, ok := f.byPortal[portal]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("portal %d: %w", portal, tenant.ErrNotFound)
}

type envSecrets map[string]string

func (e envSecrets) Resolve(ref string) (string, error) {
	if v, ok := e[strings.TrimPrefix(ref, "env:")]; ok && strings.HasPrefix(ref, "env:") {
		return v, nil
	}
	return "", errors.New("secret missing")
}

type fakeAlerts struct {
	mu      sync.Mutex
	sources []string
}

func (a *fakeAlerts) UnknownSource(_ context.Context, p provider.Provider, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sources = append(a.sources, string(p)+":"+id)
}

// fakeMeter records counter sums and histogram counts by "name{k=v,…}".
type fakeMeter struct {
	noop.Meter
	mu   sync.Mutex
	sums map[string]float64
}

func (m *fakeMeter) add(name string, v float64, opts []metric.AddOption, ropts []metric.RecordOption) {
	var set attribute.Set
	if opts != nil {
		set = metric.NewAddConfig(opts).Attributes()
	} else {
		set = metric.NewRecordConfig(ropts).Attributes()
	}
	var kv []string
	for _, a := range set.ToSlice() {
		kv = append(kv, string(a.Key)+"="+a.Value.String())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sums == nil {
		m.sums = map[string]float64{}
	}
	m.sums[name+"{"+strings.Join(kv, ",")+"}"] += v
}

func (m *fakeMeter) get(key string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sums[key]
}

type fakeCounter struct {
	noop.Int64Counter
	m    *fakeMeter
	name string
}

func (c fakeCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	c.m.add(c.name, float64(v), opts, nil)
}

type fakeHistogram struct {
	noop.Float64Histogram
	m    *fakeMeter
	name string
}

func (h fakeHistogram) Record(_ context.Context, _ float64, opts ...metric.RecordOption) {
	h.m.add(h.name+".count", 1, nil, opts)
}

func (m *fakeMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return fakeCounter{m: m, name: name}, nil
}

func (m *fakeMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return fakeHistogram{m: m, name: name}, nil
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lockedWriter serialises writes from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
