package mongodb

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The contrib instrumentation (otelmongo) is not available for driver v2 in the module versions
// this project may use, so the spans come from the driver's own command monitor.

// untraced are commands that would only add noise: readiness pings every few seconds,
// handshakes, session ends and authentication (whose bodies the driver redacts anyway).
var untraced = map[string]bool{
	"ping": true, "hello": true, "ismaster": true, "isMaster": true, "endSessions": true,
	"saslStart": true, "saslContinue": true, "authenticate": true, "getnonce": true, "buildInfo": true,
}

// commandKey identifies a command in flight: request ids are unique per connection.
type commandKey struct {
	conn string
	req  int64
}

// CommandTracer makes one client span per MongoDB command, a child of the span in the command's
// context. A span names the operation and the collection ("find mappings") and carries
// db.system, db.operation, db.collection, db.namespace (the database) and server.address /
// server.port; it never carries the command or its reply, which hold tenants' data.
type CommandTracer struct {
	tracer trace.Tracer
	spans  sync.Map // commandKey -> trace.Span
}

// NewCommandTracer returns a tracer of commands that uses tp.
func NewCommandTracer(tp trace.TracerProvider) *CommandTracer {
	return &CommandTracer{tracer: tp.Tracer("github.com/ownersync/ownersync/libs/mongodb")}
}

// Monitor is the driver's command monitor that feeds the tracer.
func (c *CommandTracer) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: c.started, Succeeded: c.succeeded, Failed: c.failed}
}

func (c *CommandTracer) started(ctx context.Context, e *event.CommandStartedEvent) {
	if untraced[e.CommandName] {
		return
	}
	coll := collectionOf(e.CommandName, e.Command)
	name := e.CommandName
	if coll != "" {
		name += " " + coll
	}
	attrs := []attribute.KeyValue{
		attribute.String("db.system", "mongodb"),
		attribute.String("db.operation", e.CommandName),
		attribute.String("db.namespace", e.DatabaseName),
	}
	if coll != "" {
		attrs = append(attrs, attribute.String("db.collection", coll))
	}
	if host, port, ok := peerOf(e.ConnectionID); ok {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	}
	_, span := c.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	c.spans.Store(commandKey{e.ConnectionID, e.RequestID}, span)
}

func (c *CommandTracer) end(conn string, req int64) (trace.Span, bool) {
	v, ok := c.spans.LoadAndDelete(commandKey{conn, req})
	if !ok {
		return nil, false
	}
	return v.(trace.Span), true
}

func (c *CommandTracer) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	if span, ok := c.end(e.ConnectionID, e.RequestID); ok {
		span.End()
	}
}

func (c *CommandTracer) failed(_ context.Context, e *event.CommandFailedEvent) {
	span, ok := c.end(e.ConnectionID, e.RequestID)
	if !ok {
		return
	}
	// The failure's message can quote a document (a duplicate key names the key's value), so only
	// the server's code and code name go on the span.
	span.SetStatus(codes.Error, "mongodb command failed")
	var de driver.Error
	if errors.As(e.Failure, &de) && de.Code != 0 {
		span.SetAttributes(attribute.String("db.response.status_code", strconv.Itoa(int(de.Code))))
		if de.Name != "" {
			span.SetAttributes(attribute.String("error.type", de.Name))
		}
	}
	span.End()
}

// collectionCommands name their collection in their first element. Other commands' first values
// are not read: an unknown command's could be anything.
var collectionCommands = map[string]bool{
	"find": true, "insert": true, "update": true, "delete": true, "aggregate": true, "count": true,
	"distinct": true, "findAndModify": true, "createIndexes": true, "listIndexes": true,
	"dropIndexes": true, "drop": true, "create": true, "collMod": true,
}

// collectionOf is the collection a command works on: the value of its first element for the CRUD
// and index commands, "collection" for getMore.
func collectionOf(name string, cmd bson.Raw) string {
	if !collectionCommands[name] && name != "getMore" {
		return ""
	}
	if name == "getMore" {
		if v, err := cmd.LookupErr("collection"); err == nil {
			if s, ok := v.StringValueOK(); ok {
				return s
			}
		}
		return ""
	}
	elems, err := cmd.Elements()
	if err != nil || len(elems) == 0 {
		return ""
	}
	if elems[0].Key() != name {
		return ""
	}
	s, _ := elems[0].Value().StringValueOK()
	return s
}

// peerOf splits a driver connection id ("host:port[-7]") into host and port.
func peerOf(connID string) (host, port string, ok bool) {
	if i := strings.LastIndex(connID, "["); i > 0 {
		connID = connID[:i]
	}
	host, port, err := net.SplitHostPort(connID)
	return host, port, err == nil
}
