package events

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/natsbus"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
)

// Engine handles owner changes; *writeback.Engine implements it.
type Engine interface {
	CRMChange(ctx context.Context, ch ownership.CRMOwnerChange, deliveries uint64) error
	PlatformChange(ctx context.Context, ch ownership.PlatformOwnerChange) error
}

var _ Engine = (*writeback.Engine)(nil)

// CRMHandler is the consumer handler of crm.owner.changed.>: it decodes, checks and converts the
// message and lets the engine decide; a message that is not a valid change, or whose tenant differs
// from its subject's, is permanent (dead-lettered).
func CRMHandler(e Engine) natsbus.Handler {
	return func(ctx context.Context, m *natsbus.Message) error {
		return HandleCRM(ctx, e, m.Tenant(), m.Data(), m.Meta.NumDelivered)
	}
}

// PlatformHandler is the consumer handler of platform.owner.changed.>, like CRMHandler.
func PlatformHandler(e Engine) natsbus.Handler {
	return func(ctx context.Context, m *natsbus.Message) error {
		return HandlePlatform(ctx, e, m.Tenant(), m.Data())
	}
}

// HandleCRM handles the payload of one crm.owner.changed.<tenant>.<provider> message, delivered
// for the deliveries-th time.
func HandleCRM(ctx context.Context, e Engine, subjectTenant string, data []byte, deliveries uint64) error {
	var pb ownersyncv1.CrmOwnerChanged
	if err := proto.Unmarshal(data, &pb); err != nil {
		return natsbus.Permanent(fmt.Errorf("decode CrmOwnerChanged: %w", err))
	}
	ch, err := CRMChange(&pb)
	if err != nil {
		return natsbus.Permanent(err)
	}
	if ch.Tenant != subjectTenant {
		return natsbus.Permanent(fmt.Errorf("%w: event %s names tenant %q on a subject of tenant %q", ErrInvalid, ch.EventID, ch.Tenant, subjectTenant))
	}
	return Fate(e.CRMChange(ctx, ch, deliveries))
}

// HandlePlatform handles the payload of one platform.owner.changed.<tenant> message.
func HandlePlatform(ctx context.Context, e Engine, subjectTenant string, data []byte) error {
	var pb ownersyncv1.PlatformOwnerChanged
	if err := proto.Unmarshal(data, &pb); err != nil {
		return natsbus.Permanent(fmt.Errorf("decode PlatformOwnerChanged: %w", err))
	}
	ch, err := PlatformChange(&pb)
	if err != nil {
		return natsbus.Permanent(err)
	}
	if ch.Tenant != subjectTenant {
		return natsbus.Permanent(fmt.Errorf("%w: event %s names tenant %q on a subject of tenant %q", ErrInvalid, ch.EventID, ch.Tenant, subjectTenant))
	}
	return Fate(e.PlatformChange(ctx, ch))
}

// Fate maps the engine's error to what the consume loop does with the message
// (docs/architecture.md#acks-retries-and-dead-letters): nil acknowledges, an unretryable error is
// dead-lettered (natsbus.Permanent), a RetryError is redelivered after its delay
// (natsbus.RetryAfter), and any other error after the consumer's back-off.
func Fate(err error) error {
	switch {
	case err == nil:
		return nil
	case ownership.IsUnretryable(err):
		return natsbus.Permanent(err)
	}
	if d, ok := ownership.RetryDelay(err); ok {
		return natsbus.RetryAfter(err, d)
	}
	return err
}
