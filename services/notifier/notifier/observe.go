package notifier

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ownersync/ownersync/services/notifier/internal/mailer"
	"github.com/ownersync/ownersync/services/notifier/internal/render"
)

// Notifier metric names (dashboards and alert rules refer to them).
const (
	EmailsTotal = "ownersync_notifier_emails_total"
	SMTPSeconds = "ownersync_notifier_smtp_seconds"
	DigestSize  = "ownersync_notifier_digest_alerts"
)

// metrics counts emails by kind (report, alerts) and result (sent, failed, refused), times each
// send to the SMTP server (retries included) and records how many alerts a digest carried.
type metrics struct {
	emails metric.Int64Counter
	smtp   metric.Float64Histogram
	digest metric.Int64Histogram
	// deadLetters counts emails given up; with the error log line it is the operator's alert.
	deadLetters metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider) *metrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/ownersync/ownersync/services/notifier")
	var x metrics
	x.deadLetters, _ = m.Int64Counter("ownersync.notifier.dead_letters", metric.WithDescription("Emails given up and dead-lettered (SMTP 5xx, or temporary failures past the attempts), by kind."))
	x.emails, _ = m.Int64Counter(EmailsTotal, metric.WithDescription("Emails by kind (report, alerts) and result (sent, failed: will be retried, refused: permanent)."))
	x.smtp, _ = m.Float64Histogram(SMTPSeconds, metric.WithUnit("s"), metric.WithDescription("Time to hand one email to the SMTP server, retries included."))
	x.digest, _ = m.Int64Histogram(DigestSize, metric.WithUnit("{alert}"), metric.WithDescription("Alerts per digest email."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 500))
	return &x
}

// send emails e through mail and records the result under kind.
func (x *metrics) send(ctx context.Context, mail *mailer.Mailer, kind, tenantID string, e render.Email) error {
	start := time.Now()
	err := mail.Send(ctx, e)
	result := "sent"
	switch {
	case err != nil && mailer.IsPermanent(err):
		result = "refused"
	case err != nil:
		result = "failed"
	}
	kv := []attribute.KeyValue{attribute.String("kind", kind), attribute.String("tenant", tenantID)}
	x.smtp.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("kind", kind), attribute.String("result", result)))
	x.emails.Add(ctx, 1, metric.WithAttributes(append(kv, attribute.String("result", result))...))
	return err
}
