package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
)

// Two consumer contracts. No consumer sets BackOff: with BackOff the server uses its first step as
// the first delivery's AckWait, which would redeliver a message still being handled. Failed
// handlings are retried by the loop's NakWithDelay (NakBase doubling to NakMax, or a handler's
// RetryAfter) instead, and natsbus marks slow handlings in progress every AckWait/3.
var (
	// storeWork — a few MongoDB lookups and writes per event: AckWait 30 s covers a slow MongoDB
	// write plus the rule run of every connected provider (and config.EventLockWait, at most 25 s,
	// spent waiting for a Sync Users run); MaxDeliver 10 with NAK delays doubling from 1 s to a
	// minute rides out a MongoDB failover before dead-lettering (the DLQ is replayable, and
	// Salesforce's own retry window is 24 h); MaxAckPending 256 keeps a burst (a directory import)
	// flowing while the per-tenant lock serialises the writes.
	storeWork = natsbus.ConsumerOptions{
		Config:      jetstream.ConsumerConfig{AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 256},
		Concurrency: 8, NakBase: time.Second, NakMax: time.Minute,
	}
	// crmCalls — work that may call the CRM: AckWait 2 min covers the client's 30 s timeout with a
	// token refresh and a retry; MaxDeliver 8 with NAK delays doubling from 5 s to 5 minutes rides
	// out a CRM outage or a rate-limit pause of several minutes; MaxAckPending is kept small (set
	// per consumer) because these calls share the tenant's API quota with the writer.
	crmCalls = natsbus.ConsumerOptions{
		Config:  jetstream.ConsumerConfig{AckWait: 2 * time.Minute, MaxDeliver: 8},
		NakBase: 5 * time.Second, NakMax: 5 * time.Minute,
	}
)

// Consumer is one of mapper's durable consumers: its declaration and the handler of its messages.
type Consumer struct {
	Options natsbus.ConsumerOptions
	Handle  natsbus.Handler
}

func consumer(contract natsbus.ConsumerOptions, stream, durable, filter string, maxAckPending, concurrency int, h natsbus.Handler) Consumer {
	o := contract
	o.Service, o.Stream = "mapper", stream
	o.Config.Durable, o.Config.FilterSubjects = durable, []string{filter}
	if maxAckPending > 0 {
		o.Config.MaxAckPending, o.Concurrency = maxAckPending, concurrency
	}
	return Consumer{Options: o, Handle: h}
}

// Consumers are mapper's four consumers with their contracts; dead letters are recorded by
// DeadLetter.
func (h *Handlers) Consumers() []Consumer {
	cs := []Consumer{
		// mapper-users and mapper-crm-users: platform and CRM user changes (Salesforce User
		// outbound messages, Sync Users diffs).
		consumer(storeWork, streams.Platform, "mapper-users", "platform.user.changed.>", 0, 0, h.PlatformUserChanged),
		consumer(storeWork, streams.CRM, "mapper-crm-users", "crm.user.changed.>", 0, 0, h.CRMUserChanged),
		// mapper-refresh: re-read one CRM user from the CRM (32 in flight, 2 at a time).
		consumer(crmCalls, streams.Sync, "mapper-refresh", "user.refresh.>", 32, 2, h.UserRefresh),
		// mapper-owner-activity: CRM owner changes, for auto-provisioning (rule 7). Most cost one
		// tenant lookup (the setting is off by default); a change to an unknown owner re-reads it
		// from the CRM, hence crmCalls, with 64 in flight so an owner-change burst gets through.
		// Redelivery is harmless: the request's event id deduplicates it and a recorded request is
		// not published again.
		consumer(crmCalls, streams.CRM, "mapper-owner-activity", "crm.owner.changed.>", 64, 4, h.OwnerChanged),
	}
	for i := range cs {
		cs[i].Options.OnDeadLetter = h.DeadLetter
	}
	return cs
}
