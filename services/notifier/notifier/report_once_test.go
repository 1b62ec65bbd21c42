package notifier_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"
	"github.com/ownersync/ownersync/workbench/smtpsink"
)

// TestConcurrentDeliveriesOfOneReportSendOneEmail: the same report arriving twice while the
// first send is still in flight (a redelivery, a republish, or a second notifier replica) is
// emailed once. The notifier used to look the report up, send, and only then record it, so two
// handlers that both looked before either recorded both sent it (seen in CI as "after
// redelivery 2 emails, want 1").
func TestConcurrentDeliveriesOfOneReportSendOneEmail(t *testing.T) {
	// The relay answers DATA after 1.5 s, so the second delivery is handled while the first
	// send is still in flight.
	h := startReports(t, smtpsink.Config{DataDelay: 1500 * time.Millisecond}, []string{"admin@acme.example"}, nil)
	h.publish("run-1", "report:run-1", false, nil)
	harness.Eventually(t, 20*time.Second, "first send reached the relay", func() bool { return len(h.sink.Messages()) >= 1 })
	h.publish("run-1", "redelivery-of-run-1", false, nil)
	h.publish("run-1", "another-copy-of-run-1", false, nil)

	harness.Eventually(t, 30*time.Second, "report recorded as sent", func() bool { return strings.HasPrefix(h.status("run-1"), "sent") })
	// Let every copy be handled: a copy that found the report in flight is retried after the
	// claim, then finds it sent.
	harness.Eventually(t, 45*time.Second, "every copy handled", func() bool { return h.pending() == 0 })
	if n := len(h.sink.Messages()); n != 1 {
		t.Fatalf("%d emails for one report, want 1", n)
	}
}
