package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/config"
	"github.com/ownersync/ownersync/services/mapper/internal/httpapi"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
)

func env(extra map[string]string) func(string) string {
	m := map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "MONGODB_URI": "mongodb://127.0.0.1:27017/",
		"OWNERSYNC_OPERATOR_TOKEN": "operator-token-0123456789"}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.BulkWrites != mongostore.PerDocument || c.EventLockWait != 20*time.Second || c.SyncListCap != 100 || c.SyncLockTTL != 2*time.Minute {
		t.Errorf("defaults: bulk %q, lock wait %v, list cap %d, lock TTL %v", c.BulkWrites, c.EventLockWait, c.SyncListCap, c.SyncLockTTL)
	}
	// The admin API takes its limits from here; httpapi.New has no defaults of its own.
	if want := (httpapi.Config{MaxBodyBytes: 1 << 20, RunsLimit: 20, DLQLimit: 100, KeyOverlap: 72 * time.Hour, SalesforceWebhookURL: "http://localhost:8080/webhooks/salesforce"}); c.Admin != want {
		t.Errorf("admin API limits %+v, want %+v", c.Admin, want)
	}
	c, err = config.Load(env(map[string]string{"OWNERSYNC_MONGODB_BULK_WRITES": "delete_insert"}))
	if err != nil || c.BulkWrites != mongostore.DeleteInsert {
		t.Errorf("delete_insert: %q, %v", c.BulkWrites, err)
	}
}

// A zero that validation accepted would silently mean something else downstream (a ticker of 0
// panics, a CRM client takes its own default): every such value is refused, with every problem named.
func TestLoadRefusesZerosAndUnknownValues(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"OWNERSYNC_MONGODB_BULK_WRITES": "sniff",
		"OWNERSYNC_SCHEDULER_INTERVAL":  "0s",
		"OWNERSYNC_CRM_TIMEOUT":         "0s",
		"OWNERSYNC_SYNC_LOCK_TTL":       "0s",
		"OWNERSYNC_EVENT_LOCK_WAIT":     "40s",
		"OWNERSYNC_SYNC_LIST_CAP":       "0",
		"OWNERSYNC_SYNC_RUN_DEADLINE":   "0s",
		"OWNERSYNC_SYNC_MAX_PAGES":      "0",
	}))
	if err == nil {
		t.Fatal("Load accepted zeros and an unknown bulk mode")
	}
	for _, want := range []string{"OWNERSYNC_MONGODB_BULK_WRITES", "OWNERSYNC_SCHEDULER_INTERVAL", "OWNERSYNC_CRM_TIMEOUT",
		"OWNERSYNC_SYNC_LOCK_TTL", "OWNERSYNC_EVENT_LOCK_WAIT", "OWNERSYNC_SYNC_LIST_CAP", "OWNERSYNC_SYNC_RUN_DEADLINE", "OWNERSYNC_SYNC_MAX_PAGES"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// TestSignInCeilingAboveOneClient is issue 13 item 8: a global sign-in ceiling that one client
// could reach alone would let it lock every admin out again, so configuration refuses it.
func TestSignInCeilingAboveOneClient(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil || c.SignInClientPerMinute != 10 || c.SignInGlobalPerSecond != 50 {
		t.Fatalf("defaults: %d/min per client, %d/s global, %v", c.SignInClientPerMinute, c.SignInGlobalPerSecond, err)
	}
	_, err = config.Load(env(map[string]string{"OWNERSYNC_SIGNIN_CLIENT_PER_MINUTE": "60", "OWNERSYNC_SIGNIN_GLOBAL_PER_SECOND": "2"}))
	if err == nil || !strings.Contains(err.Error(), "OWNERSYNC_SIGNIN_GLOBAL_PER_SECOND") {
		t.Fatalf("a ceiling of 2/s with 60/min per client was accepted: %v", err)
	}
}

// TestPreviousOperatorToken is issue 13 item 13: the previous operator token of a rotation needs
// its end time, and both are checked.
func TestPreviousOperatorToken(t *testing.T) {
	c, err := config.Load(env(map[string]string{"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS": "previous-token-0123456789", "OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": "2026-12-24T12:00:00Z"}))
	if err != nil || c.PreviousOperatorToken != "previous-token-0123456789" || !c.PreviousOperatorTokenUntil.Equal(time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v %v", c, err)
	}
	for name, e := range map[string]map[string]string{
		"no end":      {"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS": "previous-token-0123456789"},
		"bad end":     {"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS": "previous-token-0123456789", "OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": "tomorrow"},
		"end alone":   {"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": "2026-12-24T12:00:00Z"},
		"short":       {"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS": "short", "OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": "2026-12-24T12:00:00Z"},
		"same as now": {"OWNERSYNC_OPERATOR_TOKEN_PREVIOUS": "operator-token-0123456789", "OWNERSYNC_OPERATOR_TOKEN_PREVIOUS_UNTIL": "2026-12-24T12:00:00Z"},
	} {
		if _, err := config.Load(env(e)); err == nil || !strings.Contains(err.Error(), "OWNERSYNC_OPERATOR_TOKEN_PREVIOUS") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
