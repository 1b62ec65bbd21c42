package domain

import (
	"context"
	"time"
)

// DeadLetters lists and replays the dead letters of one tenant (the DLQ stream; httpapi/dlq
// implements it over JetStream).
type DeadLetters interface {
	List(ctx context.Context, tenant string, f DLQFilter) ([]DeadLetter, error)
	Replay(ctx context.Context, tenant string, f DLQFilter) (ReplayResult, error)
}

// DLQFilter selects dead letters of one tenant. Empty fields do not filter.
type DLQFilter struct {
	Service string   // consumer service (the <service> token of dlq.<service>.<tenant>)
	Subject string   // NATS subject filter on the original subject (wildcards * and >)
	IDs     []uint64 // DLQ stream sequences
	Limit   int      // listing only; 0 = default
}

// DeadLetter is one message in the DLQ stream.
type DeadLetter struct {
	ID             uint64 // DLQ stream sequence
	Service        string
	Subject        string // the original subject
	Stream         string
	StreamSequence uint64
	MsgID          string
	Error          string
	At             time.Time
	EventType      string
	Size           int
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	Replayed []ReplayedLetter
	Failed   []ReplayFailure
}

// ReplayedLetter is one republished dead letter.
type ReplayedLetter struct {
	ID      uint64
	Subject string
	MsgID   string // "replay:<dlq seq>"
}

// ReplayFailure is one dead letter that could not be republished (it stays in the DLQ).
type ReplayFailure struct {
	ID    uint64
	Error string
}
