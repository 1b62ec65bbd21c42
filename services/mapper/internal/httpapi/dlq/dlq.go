// Package dlq lists and replays the dead letters of one tenant held in the DLQ stream
// (dlq.<service>.<tenant>, written by libs/natsbus). It implements domain.DeadLetters.
//
// Replay republishes a dead letter's data and original headers (without the Ownersync-Dlq-*
// ones) to its original subject with Nats-Msg-Id "replay:<dlq sequence>" and then deletes it
// from the DLQ. If the delete fails after a successful publish, a second replay publishes the
// same message id again and the target stream's duplicate window drops it, so replay is
// idempotent; the consumers' own handlers are idempotent as well.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/streams"
	libtenant "github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
)

// HeaderReplayOf names the DLQ sequence a replayed message came from.
const HeaderReplayOf = "Ownersync-Replay-Of"

// DLQ reads and replays the DLQ stream.
type DLQ struct {
	js     jetstream.JetStream
	stream string
}

// New returns a DLQ over js's streams.DLQ stream.
func New(js jetstream.JetStream) *DLQ { return &DLQ{js: js, stream: streams.DLQ} }

var _ domain.DeadLetters = (*DLQ)(nil)

func (d *DLQ) dlqSubject(tenant, service string) string {
	if service == "" {
		service = "*"
	}
	return streams.DeadLetter(service, tenant)
}

// List returns the tenant's dead letters matching f, oldest first, at most f.Limit (default 100).
func (d *DLQ) List(ctx context.Context, tenant string, f domain.DLQFilter) ([]domain.DeadLetter, error) {
	msgs, err := d.find(ctx, tenant, f)
	if err != nil {
		return nil, err
	}
	out := make([]domain.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, describe(m))
	}
	return out, nil
}

// find returns the raw dead letters selected by f.
func (d *DLQ) find(ctx context.Context, tenant string, f domain.DLQFilter) ([]*jetstream.RawStreamMsg, error) {
	if !libtenant.ValidID(tenant) {
		return nil, domain.Errorf(domain.CodeInvalid, "invalid tenant id")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w", err)
	}
	filter := d.dlqSubject(tenant, f.Service)
	var out []*jetstream.RawStreamMsg
	keep := func(m *jetstream.RawStreamMsg) bool {
		return subjectMatches(filter, m.Subject) &&
			(f.Subject == "" || subjectMatches(f.Subject, m.Header.Get(streams.HeaderDLQSubject)))
	}
	if len(f.IDs) > 0 {
		ids := append([]uint64(nil), f.IDs...)
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for i, id := range ids {
			if i > 0 && ids[i-1] == id {
				continue
			}
			m, err := s.GetMsg(ctx, id)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("get dead letter %d: %w", id, err)
			}
			// Another tenant's sequence is skipped exactly like a missing one.
			if keep(m) {
				out = append(out, m)
			}
		}
		return out, nil
	}
	seq := uint64(1)
	for len(out) < limit {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		if keep(m) {
			out = append(out, m)
		}
		seq = m.Sequence + 1
	}
	return out, nil
}

// Replay republishes the selected dead letters and removes them from the DLQ.
func (d *DLQ) Replay(ctx context.Context, tenant string, f domain.DLQFilter) (domain.ReplayResult, error) {
	msgs, err := d.find(ctx, tenant, f)
	if err != nil {
		return domain.ReplayResult{}, err
	}
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return domain.ReplayResult{}, fmt.Errorf("dlq stream: %w", err)
	}
	res := domain.ReplayResult{Replayed: []domain.ReplayedLetter{}}
	for _, m := range msgs {
		subject := m.Header.Get(streams.HeaderDLQSubject)
		// A dead letter may only go back to a subject of its own tenant.
		if subject == "" || streams.TenantOf(subject) != tenant {
			res.Failed = append(res.Failed, domain.ReplayFailure{ID: m.Sequence, Error: "the dead letter has no original subject of this tenant"})
			continue
		}
		msg := nats.NewMsg(subject)
		msg.Data = m.Data
		for k, v := range m.Header {
			if strings.HasPrefix(k, "Ownersync-Dlq-") || k == jetstream.MsgIDHeader {
				continue
			}
			msg.Header[k] = append([]string(nil), v...)
		}
		id := "replay:" + strconv.FormatUint(m.Sequence, 10)
		msg.Header.Set(HeaderReplayOf, strconv.FormatUint(m.Sequence, 10))
		if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
			res.Failed = append(res.Failed, domain.ReplayFailure{ID: m.Sequence, Error: "publish: " + err.Error()})
			continue
		}
		if err := s.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			res.Failed = append(res.Failed, domain.ReplayFailure{ID: m.Sequence, Error: "republished, but not removed from the DLQ: " + err.Error()})
			continue
		}
		res.Replayed = append(res.Replayed, domain.ReplayedLetter{ID: m.Sequence, Subject: subject, MsgID: id})
	}
	return res, nil
}

func describe(m *jetstream.RawStreamMsg) domain.DeadLetter {
	h := m.Header
	seq, _ := strconv.ParseUint(h.Get(streams.HeaderDLQSequence), 10, 64)
	at := m.Time.UTC()
	if t, err := time.Parse(time.RFC3339Nano, h.Get(streams.HeaderDLQTime)); err == nil {
		at = t.UTC()
	}
	service := h.Get(streams.HeaderDLQService)
	if service == "" {
		if p := strings.Split(m.Subject, "."); len(p) == 3 {
			service = p[1]
		}
	}
	return domain.DeadLetter{
		ID:             m.Sequence,
		Service:        service,
		Subject:        h.Get(streams.HeaderDLQSubject),
		Stream:         h.Get(streams.HeaderDLQStream),
		StreamSequence: seq,
		MsgID:          h.Get(streams.HeaderDLQMsgID),
		Error:          h.Get(streams.HeaderDLQError),
		At:             at,
		EventType:      h.Get(streams.HeaderEventType),
		Size:           len(m.Data),
	}
}

// subjectMatches reports whether subject matches the NATS filter (* one token, > the rest).
func subjectMatches(filter, subject string) bool {
	f := strings.Split(filter, ".")
	s := strings.Split(subject, ".")
	for i, t := range f {
		if t == ">" {
			return len(s) > i
		}
		if i >= len(s) || (t != "*" && t != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}
