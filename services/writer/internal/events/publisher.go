package events

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// ProtoPublisher publishes one protobuf message with a Nats-Msg-Id; *natsbus.Publisher implements it.
type ProtoPublisher interface {
	Publish(ctx context.Context, subject, msgID string, m proto.Message) (duplicate bool, err error)
}

var _ ProtoPublisher = (*natsbus.Publisher)(nil)

// Publisher is the writer's writeback.Publisher on JetStream: OwnerAssign on owner.assign.<tenant>,
// UserRefresh on user.refresh.<tenant>.<provider> and Alert on alert.<tenant>, each with a
// deterministic message id so that repeats inside the SYNC stream's duplicate window are dropped.
type Publisher struct {
	pub ProtoPublisher
	now func() time.Time
}

// NewPublisher returns a Publisher; now defaults to time.Now.
func NewPublisher(pub ProtoPublisher, now func() time.Time) *Publisher {
	if now == nil {
		now = time.Now
	}
	return &Publisher{pub: pub, now: now}
}

var _ writeback.Publisher = (*Publisher)(nil)

// Assign publishes the OwnerAssign of a CRM change.
func (p *Publisher) Assign(ctx context.Context, ch ownership.CRMOwnerChange, a ownership.Assignment) error {
	m := OwnerAssign(ch, a, p.now())
	if _, err := p.pub.Publish(ctx, streams.OwnerAssign(ch.Tenant), m.GetMeta().GetEventId(), m); err != nil {
		return fmt.Errorf("publish owner assignment %s: %w", m.GetMeta().GetEventId(), err)
	}
	return nil
}

// RefreshUser asks mapper to re-read a CRM user. Requests for one user within the same minute share
// a message id, so a burst of refused writes asks once.
func (p *Publisher) RefreshUser(ctx context.Context, tenant string, pr provider.Provider, crmUserID, reason string) error {
	now := p.now()
	m := UserRefresh(tenant, pr, crmUserID, reason, now.UTC().Truncate(time.Minute).Format("200601021504"), now)
	if _, err := p.pub.Publish(ctx, streams.UserRefresh(tenant, pr), m.GetMeta().GetEventId(), m); err != nil {
		return fmt.Errorf("publish user refresh %s: %w", m.GetMeta().GetEventId(), err)
	}
	return nil
}

// Alert publishes an Alert.
func (p *Publisher) Alert(ctx context.Context, a writeback.Alert) error {
	m := Alert(a, p.now())
	if _, err := p.pub.Publish(ctx, streams.Alert(a.Tenant), m.GetMeta().GetEventId(), m); err != nil {
		return fmt.Errorf("publish alert %s: %w", m.GetMeta().GetEventId(), err)
	}
	return nil
}
