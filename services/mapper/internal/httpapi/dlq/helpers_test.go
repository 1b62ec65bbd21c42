package dlq_test

import (
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ownersync/ownersync/libs/streams"
)

// natsMsg builds a dead letter the way libs/natsbus does, for an original subject.
func natsMsg(dlqSubject, original, stream string) *nats.Msg {
	m := nats.NewMsg(dlqSubject)
	m.Data = []byte("payload")
	if original != "" {
		m.Header.Set(streams.HeaderDLQSubject, original)
	}
	m.Header.Set(streams.HeaderDLQStream, stream)
	m.Header.Set(streams.HeaderDLQSequence, "1")
	m.Header.Set(streams.HeaderDLQError, "permanent: smtp 550")
	m.Header.Set(streams.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	return m
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
