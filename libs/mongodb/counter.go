package mongodb

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// CommandKind names a command and the collection it works on ("find", "mappings").
type CommandKind struct {
	Name       string
	Collection string
}

// CommandCount is how many commands of a kind ran and the documents they carried (insert, update,
// delete: the documents or statements sent) or returned (find, getMore, aggregate: the documents
// of the reply's batch). Failed commands count in Failed, not in Commands.
type CommandCount struct {
	Commands     int
	Failed       int
	Documents    int
	MaxDocuments int // the most documents in one command
}

// Writes are the command names that change data.
var Writes = map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true}

// Reads are the command names that start reading a collection (getMore continues a read).
var Reads = map[string]bool{"find": true, "aggregate": true, "count": true, "distinct": true}

// CommandCounter counts the commands a client sends, by kind, with the documents per command, from
// the driver's command monitor. It keeps no command or reply, only names, collections and counts.
// The Sync Users benchmark reports its counts per run, and tests assert that a piece of work costs
// a bounded number of commands.
type CommandCounter struct {
	mu       sync.Mutex
	counts   map[CommandKind]*CommandCount
	inFlight map[commandKey]inFlight
}

type inFlight struct {
	kind CommandKind
	docs int // documents sent (writes); -1 for reads, whose documents come with the reply
}

// NewCommandCounter returns an empty counter.
func NewCommandCounter() *CommandCounter {
	return &CommandCounter{counts: map[CommandKind]*CommandCount{}, inFlight: map[commandKey]inFlight{}}
}

// Monitor is the driver's command monitor that feeds the counter (ComposeMonitors combines it with
// the tracer's).
func (c *CommandCounter) Monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: c.started, Succeeded: c.succeeded, Failed: c.failed}
}

// statementArrays are the arrays of a write command that hold its documents or statements.
var statementArrays = map[string]string{"insert": "documents", "update": "updates", "delete": "deletes"}

// replyBatches are the arrays of a read command's reply that hold its documents.
var replyBatches = map[string]string{"find": "firstBatch", "aggregate": "firstBatch", "getMore": "nextBatch"}

func (c *CommandCounter) started(_ context.Context, e *event.CommandStartedEvent) {
	if untraced[e.CommandName] {
		return
	}
	f := inFlight{kind: CommandKind{Name: e.CommandName, Collection: collectionOf(e.CommandName, e.Command)}}
	switch {
	case statementArrays[e.CommandName] != "":
		f.docs = arrayLen(e.Command, statementArrays[e.CommandName])
	case e.CommandName == "findAndModify":
		f.docs = 1
	case replyBatches[e.CommandName] != "":
		f.docs = -1
	}
	c.mu.Lock()
	c.inFlight[commandKey{e.ConnectionID, e.RequestID}] = f
	c.mu.Unlock()
}

func (c *CommandCounter) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	c.finish(e.ConnectionID, e.RequestID, e.Reply, true)
}

func (c *CommandCounter) failed(_ context.Context, e *event.CommandFailedEvent) {
	c.finish(e.ConnectionID, e.RequestID, nil, false)
}

func (c *CommandCounter) finish(conn string, req int64, reply bson.Raw, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, found := c.inFlight[commandKey{conn, req}]
	if !found {
		return
	}
	delete(c.inFlight, commandKey{conn, req})
	cc, exists := c.counts[f.kind]
	if !exists {
		cc = &CommandCount{}
		c.counts[f.kind] = cc
	}
	if !ok {
		cc.Failed++
		return
	}
	docs := f.docs
	if docs < 0 {
		docs = 0
		if cur, err := reply.LookupErr("cursor"); err == nil {
			if d, isDoc := cur.DocumentOK(); isDoc {
				docs = arrayLen(d, replyBatches[f.kind.Name])
			}
		}
	}
	cc.Commands++
	cc.Documents += docs
	cc.MaxDocuments = max(cc.MaxDocuments, docs)
}

func arrayLen(doc bson.Raw, field string) int {
	v, err := doc.LookupErr(field)
	if err != nil {
		return 0
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return 0
	}
	vals, err := arr.Values()
	if err != nil {
		return 0
	}
	return len(vals)
}

// Snapshot returns the counts so far.
func (c *CommandCounter) Snapshot() map[CommandKind]CommandCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[CommandKind]CommandCount, len(c.counts))
	for k, v := range c.counts {
		out[k] = *v
	}
	return out
}

// Reset forgets the counts (commands in flight still finish into the new counts).
func (c *CommandCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = map[CommandKind]*CommandCount{}
}

// Fprint writes counts as a table sorted by collection and command.
func Fprint(w io.Writer, counts map[CommandKind]CommandCount) {
	keys := make([]CommandKind, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b CommandKind) int {
		if a.Collection != b.Collection {
			if a.Collection < b.Collection {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	for _, k := range keys {
		v := counts[k]
		fmt.Fprintf(w, "%s %s: %d commands, %d documents (max %d per command)\n", k.Collection, k.Name, v.Commands, v.Documents, v.MaxDocuments)
	}
}

// ComposeMonitors returns a monitor that hands every event to each of ms in order (nil monitors and
// nil callbacks are skipped), so the tracer's spans and a counter watch the same client.
func ComposeMonitors(ms ...*event.CommandMonitor) *event.CommandMonitor {
	var live []*event.CommandMonitor
	for _, m := range ms {
		if m != nil {
			live = append(live, m)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			for _, m := range live {
				if m.Started != nil {
					m.Started(ctx, e)
				}
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			for _, m := range live {
				if m.Succeeded != nil {
					m.Succeeded(ctx, e)
				}
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			for _, m := range live {
				if m.Failed != nil {
					m.Failed(ctx, e)
				}
			}
		},
	}
}

// Total is the number of successful commands whose name is in names (Writes, Reads).
func Total(counts map[CommandKind]CommandCount, names map[string]bool) int {
	n := 0
	for k, v := range counts {
		if names[k.Name] {
			n += v.Commands
		}
	}
	return n
}
