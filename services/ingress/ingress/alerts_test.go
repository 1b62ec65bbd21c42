package ingress

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ownersync/ownersync/libs/provider"
)

// TestUnknownSourcesStayBounded covers issue 13 item 12 for the unknown-source alerts: a flood of
// made-up org ids neither grows the per-source map without bound nor writes a line per id.
func TestUnknownSourcesStayBounded(t *testing.T) {
	var logs bytes.Buffer
	a := newUnknownSourceAlerts(slog.New(slog.NewTextHandler(&logs, nil)), noop.NewMeterProvider().Meter(""))
	ctx := context.Background()
	for i := range 50_000 {
		a.UnknownSource(ctx, provider.Salesforce, "00D"+strconv.Itoa(i))
	}
	a.mu.Lock()
	n := len(a.last)
	a.mu.Unlock()
	if n > maxUnknownSources {
		t.Errorf("%d sources remembered, want at most %d", n, maxUnknownSources)
	}
	if lines := strings.Count(logs.String(), "\n"); lines > 2*unknownSourceLogBurst {
		t.Errorf("50,000 unknown sources logged %d lines, want at most %d", lines, 2*unknownSourceLogBurst)
	}
	if !strings.Contains(logs.String(), "00D0") {
		t.Errorf("the first unknown source was not logged:\n%.500s", logs.String())
	}
}
