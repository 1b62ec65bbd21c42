package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
)

// Consumer is one of the writer's durable consumers: its declaration and the handler of its
// messages.
type Consumer struct {
	Options natsbus.ConsumerOptions
	Handle  natsbus.Handler
}

// Consumers are the writer's two consumers, writer-owners (crm.owner.changed.>) and
// writer-platform-owners (platform.owner.changed.>), over engine e.
//
// Both keep up to concurrency changes in flight so that batches of 200 (Salesforce) and 100
// (HubSpot) fill while earlier ones are being written. AckWait 60 s: the loop marks a message in
// progress every 20 s while it waits for its batch, so a slow CRM does not cause a redelivery.
// MaxDeliver 20 with a NAK delay growing to 5 minutes rides out a CRM outage of about an hour
// (rate-limit pauses ask for their own delay) before a change is dead-lettered.
func Consumers(e Engine, concurrency int) []Consumer {
	c := func(durable, stream, filter string, h natsbus.Handler) Consumer {
		return Consumer{Options: natsbus.ConsumerOptions{
			Service: "writer",
			Stream:  stream,
			Config: jetstream.ConsumerConfig{
				Durable:        durable,
				FilterSubjects: []string{filter},
				AckWait:        60 * time.Second,
				MaxDeliver:     20,
				MaxAckPending:  concurrency,
			},
			Concurrency: concurrency,
			NakBase:     time.Second,
			NakMax:      5 * time.Minute,
		}, Handle: h}
	}
	return []Consumer{
		c("writer-owners", streams.CRM, "crm.owner.changed.>", CRMHandler(e)),
		c("writer-platform-owners", streams.Platform, "platform.owner.changed.>", PlatformHandler(e)),
	}
}
