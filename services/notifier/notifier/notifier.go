// Package notifier runs the notifier service: the one way to start it, used by its main, the dev
// stack and tests.
package notifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/servicekit"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenantstore"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/notifier/internal/config"
	"github.com/ownersync/ownersync/services/notifier/internal/digest"
	"github.com/ownersync/ownersync/services/notifier/internal/mailer"
	"github.com/ownersync/ownersync/services/notifier/internal/store"
)

// Run starts notifier and blocks until ctx is cancelled or a part fails.
func Run(ctx context.Context, env servicekit.Env) error {
	return servicekit.Run(ctx, env, config.Load, run)
}

// run starts the mailer, the digests and the report and alert consumers on the started base.
func run(ctx context.Context, env servicekit.Env, cfg config.Config, base *servicekit.Base) error {

	if err := mongodb.EnsureIndexes(ctx, base.Mongo.DB, store.Indexes); err != nil {
		return err
	}
	m, err := mailer.New(mailer.Config{URL: cfg.SMTPURL, From: cfg.From, Logger: base.Log, MaxRecipients: cfg.MaxRecipients})
	if err != nil {
		return err
	}
	tenants := tenantstore.NewCache(tenantstore.New(base.Mongo.DB, nil), cfg.Base.TenantCache)
	stopFollow, err := base.FollowTenants(ctx, tenants)
	if err != nil {
		return err
	}
	defer stopFollow()
	buckets, err := natsbus.DeclareKV(ctx, base.Bus.JS, streams.KVConfigs(cfg.Base.Streams))
	if err != nil {
		return err
	}
	// The holder names this process in digest claims: host, pid and a random part, so that two
	// replicas never share one (not even two in one test process).
	host, _ := os.Hostname()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	n := &notifier{
		cfg: cfg, log: base.Log, mail: m, store: store.New(base.Mongo.DB), tenants: tenants, now: time.Now, pub: base.Pub,
		coord: buckets[streams.CoordBucket], holder: host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(rnd[:]),
		metrics: newMetrics(base.Tel.MeterProvider),
		digests: digest.New[*ownersyncv1.Alert](digest.Options{Interval: cfg.AlertDigestInterval, Settle: cfg.AlertSettle,
			MaxAttempts: cfg.DigestMaxAttempts}),
	}
	n.digests.OnGiveUp(n.deadLetterDigest)
	if err := n.restoreDigests(ctx); err != nil {
		return err
	}

	// notifier: reports and alerts. AckWait 2 min covers the mailer's bounded SMTP retries (30 s)
	// with room; MaxDeliver 8 with a growing NAK delay rides out an SMTP outage of several minutes
	// before a report is dead-lettered; MaxAckPending 64 keeps a burst of reports from opening
	// more SMTP connections than a relay likes.
	cons, err := base.Consumer(ctx, natsbus.ConsumerOptions{
		Stream: streams.Sync,
		Config: jetstream.ConsumerConfig{
			Durable:        "notifier",
			FilterSubjects: []string{"report.sync.>", "alert.>"},
			AckWait:        2 * time.Minute,
			MaxDeliver:     8,
			MaxAckPending:  64,
		},
		Concurrency: 4,
		NakBase:     5 * time.Second,
		NakMax:      2 * time.Minute,
	})
	if err != nil {
		return err
	}
	base.HTTP.E.GET("/v1/preview/report", n.previewReport)
	base.HTTP.E.GET("/v1/preview/alerts", n.previewAlerts)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return base.HTTP.Run(gctx) })
	g.Go(func() error { return tenants.Run(gctx) })
	g.Go(func() error { return cons.Run(gctx, n.handle) })
	g.Go(func() error {
		err := n.digests.Run(gctx, cfg.DigestTick, n.now, base.Log, n.sendDigest)
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	g.Go(func() error { base.Ready(gctx); return nil })
	return g.Wait()
}
