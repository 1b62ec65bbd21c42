// Package logctx carries log attributes in a context: the logger of every service
// (telemetry.Setup) adds them, as it adds trace_id and span_id, to each line logged with the
// context (InfoContext …) that does not already name the key. A consumer puts the message's
// tenant, provider and event id in its handler's context, and a Sync Users run its tenant and run
// id, so that every line about the message or the run says which it is, whichever logger writes
// it. It depends on nothing but log/slog, so that pure packages may use it.
package logctx

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns ctx carrying attrs; an attribute replaces one of the same key ctx already carried.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev := Attrs(ctx)
	merged := make([]slog.Attr, 0, len(prev)+len(attrs))
	for _, p := range prev {
		replaced := false
		for _, a := range attrs {
			replaced = replaced || a.Key == p.Key
		}
		if !replaced {
			merged = append(merged, p)
		}
	}
	return context.WithValue(ctx, key{}, append(merged, attrs...))
}

// Attrs returns the attributes With put in ctx.
func Attrs(ctx context.Context) []slog.Attr {
	a, _ := ctx.Value(key{}).([]slog.Attr)
	return a
}
