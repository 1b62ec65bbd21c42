package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/coord"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/libs/tenantstore"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/notifier/internal/config"
	"github.com/ownersync/ownersync/services/notifier/internal/digest"
	"github.com/ownersync/ownersync/services/notifier/internal/mailer"
	"github.com/ownersync/ownersync/services/notifier/internal/render"
	"github.com/ownersync/ownersync/services/notifier/internal/store"
)

type notifier struct {
	cfg     config.Config
	log     *slog.Logger
	mail    *mailer.Mailer
	store   *store.Store
	tenants *tenantstore.Cache
	digests *digest.Digester[*ownersyncv1.Alert]
	now     func() time.Time
	metrics *metrics
	pub     *natsbus.Publisher
	// coord is the ownersync_coord bucket where the replicas claim a tenant's digest window; holder
	// names this replica in the claims.
	coord  jetstream.KeyValue
	holder string
}

// HeaderEmailReport on a SyncReport message asks for a dry run's report to be emailed ("true");
// without it a dry run's report is recorded, not emailed (issue 13 item 10: one email per dry run
// let anyone with a tenant token mail the report list at will).
const HeaderEmailReport = streams.HeaderEmailReport

func (n *notifier) handle(ctx context.Context, m *natsbus.Message) error {
	switch {
	case strings.HasPrefix(m.Subject(), "report.sync."):
		return n.handleReport(ctx, m)
	case strings.HasPrefix(m.Subject(), "alert."):
		return n.handleAlert(ctx, m)
	}
	return natsbus.Permanent(fmt.Errorf("unexpected subject %s", m.Subject()))
}

// claimLease is how long a report's send claim holds: the consumer's AckWait, which covers the
// mailer's bounded SMTP retries. A handler that dies mid-send leaves its claim; the next delivery
// after the lease takes it over and sends (with the same Message-ID, so a mail client that did
// get the first copy shows one).
const claimLease = 2 * time.Minute

// claimPoll is how often a handler that found a report's claim held looks again.
const claimPoll = 500 * time.Millisecond

// handleReport emails a Sync Users report once per report id. The report is claimed in
// notifications before the send (an insert on the report id), so concurrent deliveries of one
// report — a redelivery, a republish, another notifier replica — send it once: a copy that finds
// the claim held waits until the holder records the report (then acks) or the claim lapses (then
// takes it over and sends).
func (n *notifier) handleReport(ctx context.Context, m *natsbus.Message) error {
	var r ownersyncv1.SyncReport
	if err := m.Decode(&r); err != nil {
		return err
	}
	tid := r.GetMeta().GetTenantId()
	if tid == "" || tid != m.Tenant() || r.GetRunId() == "" {
		return natsbus.Permanent(fmt.Errorf("report with tenant %q run %q on subject %s", tid, r.GetRunId(), m.Subject()))
	}
	id := "report:" + r.GetRunId()
	if done, err := n.store.Get(ctx, id); err != nil {
		return err
	} else if done != nil && done.Status != store.StatusSending {
		n.log.InfoContext(ctx, "report already handled", "tenant", tid, "run", r.GetRunId(), "status", done.Status)
		return nil
	}
	t, err := n.tenants.Get(ctx, tid)
	if errors.Is(err, tenant.ErrNotFound) {
		return natsbus.Permanent(err)
	}
	if err != nil {
		return err
	}
	rec := store.Notification{ID: id, Tenant: tid, Kind: "report", At: n.now().UTC()}
	switch {
	case r.GetDryRun() && m.Headers().Get(HeaderEmailReport) != "true":
		rec.Status, rec.Reason = "skipped", "dry runs are emailed only when the run asks for it"
	case !t.ReportsEnabled:
		rec.Status, rec.Reason = "skipped", "integration reports are turned off for the tenant"
	case len(t.ReportRecipients) == 0:
		rec.Status, rec.Reason = "skipped", "the tenant has no report recipients"
	}
	if rec.Status != "" {
		n.log.InfoContext(ctx, "report not sent", "tenant", tid, "run", r.GetRunId(), "reason", rec.Reason)
		return n.store.Record(ctx, rec)
	}
	email, err := render.Report(&r, render.Options{To: n.capRecipients(ctx, tid, t.ReportRecipients), AdminURL: n.cfg.AdminURL, TenantName: t.Name,
		MessageIDDomain: n.mail.FromDomain(), Location: t.Location(),
		CRMUserURL: func(p, id string) string { return t.CRMUserURL(provider.Provider(p), id) }})
	if err != nil {
		return natsbus.Permanent(fmt.Errorf("render report %s: %w", r.GetRunId(), err))
	}
	for {
		now := n.now()
		claimed, held, err := n.store.Claim(ctx, rec, now, claimLease)
		if err != nil {
			return err
		}
		if claimed {
			break
		}
		if held.Status != store.StatusSending {
			n.log.InfoContext(ctx, "report already handled", "tenant", tid, "run", r.GetRunId(), "status", held.Status)
			return nil
		}
		// Another handler is sending it: wait for its record (the consume loop keeps this
		// message in progress meanwhile), or for its claim to lapse and take it over.
		n.log.DebugContext(ctx, "report is being sent by another handler; waiting", "tenant", tid, "run", r.GetRunId(), "claimed_until", held.ClaimedUntil)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(claimPoll, max(held.ClaimedUntil.Sub(now), 10*time.Millisecond))):
		}
	}
	if err := n.send(ctx, tid, email); err != nil {
		if rerr := n.store.Release(context.WithoutCancel(ctx), id); rerr != nil {
			n.log.WarnContext(ctx, "report claim not released; it lapses on its own", "tenant", tid, "run", r.GetRunId(), "error", rerr)
		}
		return err
	}
	rec.Status, rec.MessageID, rec.To, rec.Subject = "sent", email.MessageID, email.To, email.Subject
	n.log.InfoContext(ctx, "report sent", "tenant", tid, "run", r.GetRunId(), "recipients", len(email.To))
	return n.store.Finish(context.WithoutCancel(ctx), rec)
}

// send maps mailer errors to the consume loop's classes.
func (n *notifier) send(ctx context.Context, tenantID string, e render.Email) error {
	err := n.metrics.send(ctx, n.mail, "report", tenantID, e)
	if err != nil && mailer.IsPermanent(err) {
		return natsbus.Permanent(err)
	}
	return err
}

// handleAlert queues the alert durably; the digest loop emails it.
func (n *notifier) handleAlert(ctx context.Context, m *natsbus.Message) error {
	var a ownersyncv1.Alert
	if err := m.Decode(&a); err != nil {
		return err
	}
	tid := a.GetMeta().GetTenantId()
	if tid == "" || tid != m.Tenant() || a.GetMeta().GetEventId() == "" {
		return natsbus.Permanent(fmt.Errorf("alert with tenant %q id %q on subject %s", tid, a.GetMeta().GetEventId(), m.Subject()))
	}
	if err := n.store.QueueAlert(ctx, store.QueuedAlert{ID: a.GetMeta().GetEventId(), Tenant: tid, Payload: m.Data(), At: n.now().UTC()}); err != nil {
		return err
	}
	n.digests.Add(tid, a.GetMeta().GetEventId(), &a, n.now())
	return nil
}

// restoreDigests reloads queued alerts and each tenant's last digest time after a restart.
func (n *notifier) restoreDigests(ctx context.Context) error {
	last, err := n.store.LastAlertDigests(ctx)
	if err != nil {
		return err
	}
	for t, at := range last {
		n.digests.SetLastSent(t, at)
	}
	queued, err := n.store.QueuedAlerts(ctx)
	if err != nil {
		return err
	}
	for _, q := range queued {
		var a ownersyncv1.Alert
		if err := proto.Unmarshal(q.Payload, &a); err != nil {
			n.log.Error("queued alert does not decode; dropped from the queue", "id", q.ID, "error", err)
			_ = n.store.Dequeue(ctx, []string{q.ID})
			continue
		}
		n.digests.Add(q.Tenant, q.ID, &a, q.At)
	}
	return nil
}

// sendDigest emails one tenant's alert digest and removes its alerts from the queue.
//
// Across notifier replicas a tenant gets one digest per interval listing every alert queued by any
// of them (issue 15): the replica whose batch is due reads the tenant's last digest and queue from
// MongoDB, claims the window (the tenant and its last digest's time) in the ownersync_coord bucket,
// and sends what is queued; the others find the window claimed or sent and wait for the next one.
func (n *notifier) sendDigest(ctx context.Context, b digest.Batch[*ownersyncv1.Alert]) error {
	if n.coord == nil {
		return n.deliverDigest(ctx, b)
	}
	last, err := n.store.LastAlertDigest(ctx, b.Tenant)
	if err != nil {
		return err
	}
	if now := n.now(); !last.IsZero() && now.Before(last.Add(n.cfg.AlertDigestInterval)) {
		return digest.NotDue(last)
	}
	queued, err := n.store.QueuedAlertsOf(ctx, b.Tenant)
	if err != nil {
		return err
	}
	if len(queued) == 0 {
		return digest.SentElsewhere(last) // every alert of the batch went out in another replica's digest
	}
	key := streams.KVKey("digest", b.Tenant, strconv.FormatInt(last.UnixMilli(), 10))
	won, _, err := coord.Claim(ctx, n.coord, key, n.holder, digestClaim, n.now())
	if err != nil {
		return err
	}
	if !won {
		return digest.NotDue(n.now()) // another replica is sending this window's digest
	}
	all := digest.Batch[*ownersyncv1.Alert]{Tenant: b.Tenant, Since: b.Since, Until: b.Until}
	if !last.IsZero() {
		all.Since = last
	}
	for _, q := range queued {
		var a ownersyncv1.Alert
		if err := proto.Unmarshal(q.Payload, &a); err != nil {
			n.log.Error("queued alert does not decode; dropped from the queue", "id", q.ID, "error", err)
			_ = n.store.Dequeue(ctx, []string{q.ID})
			continue
		}
		all.Items, all.Keys = append(all.Items, &a), append(all.Keys, q.ID)
	}
	if err := n.deliverDigest(ctx, all); err != nil {
		return err
	}
	if err := coord.Done(ctx, n.coord, key, n.holder, n.now()); err != nil {
		n.log.Warn("alert digest sent but its claim not marked done", "tenant", b.Tenant, "error", err)
	}
	return nil
}

// digestClaim is how long a replica's claim of a digest window keeps the others off while it
// sends: longer than the mailer's bounded retries (30 s). A replica killed mid-send leaves the
// window to another after it.
const digestClaim = 2 * time.Minute

// deliverDigest renders, mails and records the digest b and takes its alerts off the queue.
func (n *notifier) deliverDigest(ctx context.Context, b digest.Batch[*ownersyncv1.Alert]) error {
	t, err := n.tenants.Get(ctx, b.Tenant)
	if err != nil {
		if errors.Is(err, tenant.ErrNotFound) {
			n.log.Warn("alerts for an unknown tenant dropped", "tenant", b.Tenant, "alerts", len(b.Items))
			return n.store.Dequeue(ctx, b.Keys)
		}
		return err
	}
	if len(t.ReportRecipients) == 0 {
		n.log.Warn("alerts not emailed: the tenant has no recipients", "tenant", b.Tenant, "alerts", len(b.Items))
		return n.store.Dequeue(ctx, b.Keys)
	}
	email, err := render.Alerts(b.Tenant, b.Items, render.Window{Since: b.Since, Until: b.Until},
		render.Options{To: n.capRecipients(ctx, b.Tenant, t.ReportRecipients), AdminURL: n.cfg.AdminURL, TenantName: t.Name, MessageIDDomain: n.mail.FromDomain(),
			Location: t.Location()})
	if err != nil {
		return fmt.Errorf("render alerts: %w", err)
	}
	n.metrics.digest.Record(ctx, int64(len(b.Items)))
	if err := n.metrics.send(ctx, n.mail, "alerts", b.Tenant, email); err != nil {
		if mailer.IsPermanent(err) {
			// No retry fixes it: the digester hands the batch to deadLetterDigest at once.
			return digest.Permanent(err)
		}
		return err
	}
	if err := n.store.Record(ctx, store.Notification{ID: "alerts:" + email.MessageID, Tenant: b.Tenant, Kind: "alerts", Status: "sent",
		MessageID: email.MessageID, To: email.To, Subject: email.Subject, Items: len(b.Items), At: n.now().UTC()}); err != nil {
		return err
	}
	n.log.Info("alert digest sent", "tenant", b.Tenant, "alerts", len(b.Items))
	return n.store.Dequeue(ctx, b.Keys)
}

// capRecipients cuts a report list to the recipient cap (the mailer refuses longer ones).
func (n *notifier) capRecipients(ctx context.Context, tenantID string, to []string) []string {
	if len(to) <= n.cfg.MaxRecipients {
		return to
	}
	n.log.WarnContext(ctx, "report list longer than the recipient cap; the rest get no email",
		"tenant", tenantID, "recipients", len(to), "cap", n.cfg.MaxRecipients)
	return to[:n.cfg.MaxRecipients]
}

// deadLetterDigest puts the alerts of a digest the digester gave up on (an SMTP 5xx, or temporary
// failures such as 452 past the attempts) into the DLQ, where the admin sees and replays them, and
// takes them off the queue; the error log line and the dead-letter metric are the operator's alert.
func (n *notifier) deadLetterDigest(ctx context.Context, b digest.Batch[*ownersyncv1.Alert], cause error) {
	n.metrics.deadLetters.Add(ctx, int64(len(b.Items)), metric.WithAttributes(attribute.String("kind", "alerts")))
	for i, a := range b.Items {
		data, err := proto.Marshal(a)
		if err != nil {
			continue
		}
		dl := nats.NewMsg(streams.DeadLetter("notifier", b.Tenant))
		dl.Data = data
		dl.Header.Set(streams.HeaderDLQSubject, streams.Alert(b.Tenant))
		dl.Header.Set(streams.HeaderDLQStream, streams.Sync)
		dl.Header.Set(streams.HeaderDLQError, cause.Error())
		dl.Header.Set(streams.HeaderDLQService, "notifier")
		dl.Header.Set(streams.HeaderDLQMsgID, b.Keys[i])
		dl.Header.Set(streams.HeaderDLQTime, n.now().UTC().Format(time.RFC3339Nano))
		if _, err := n.pub.PublishMsg(ctx, dl, "dlq:notifier:alert:"+b.Keys[i]); err != nil {
			// Kept in the alert queue: the next start restores and retries it.
			n.log.ErrorContext(ctx, "alert could not be dead-lettered; kept in the queue", "tenant", b.Tenant, "alert", b.Keys[i], "error", err)
			return
		}
	}
	n.log.ErrorContext(ctx, "alert digest given up and dead-lettered; fix the SMTP relay or the recipients, then replay from the DLQ",
		"tenant", b.Tenant, "alerts", len(b.Items), "error", cause)
	if err := n.store.Dequeue(ctx, b.Keys); err != nil {
		n.log.WarnContext(ctx, "dead-lettered alerts not taken off the queue", "tenant", b.Tenant, "error", err)
	}
}

// previewReport renders a sample report email as HTML, for admins and developers.
func (n *notifier) previewReport(c echo.Context) error {
	html, err := render.Preview(render.SampleReport(n.now()), render.Options{AdminURL: n.cfg.AdminURL, TenantName: "Acme Corp (sample)"})
	if err != nil {
		return err
	}
	return c.HTML(http.StatusOK, html)
}

// previewAlerts renders a sample alert digest as HTML.
func (n *notifier) previewAlerts(c echo.Context) error {
	now := n.now()
	e, err := render.Alerts("acme", render.SampleAlerts(now), render.Window{Since: now.Add(-15 * time.Minute), Until: now},
		render.Options{AdminURL: n.cfg.AdminURL, TenantName: "Acme Corp (sample)"})
	if err != nil {
		return err
	}
	return c.HTML(http.StatusOK, e.HTML)
}
