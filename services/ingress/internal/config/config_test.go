package config_test

import (
	"testing"

	"github.com/ownersync/ownersync/services/ingress/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var base = map[string]string{
	"OWNERSYNC_PUBLIC_URL":     "https://hooks.example.com",
	"OWNERSYNC_PLATFORM_TOKEN": "platform-token-0123456789",
	"NATS_URL":                 "nats://127.0.0.1:4222",
	"MONGODB_URI":              "mongodb://127.0.0.1:27017",
}

// TestSharedKeyRequiredByDefault: OWNERSYNC_REQUIRE_SHARED_KEY defaults to true (docs/security.md,
// issue 13 item 3); before, the setting was never read and a keyless Salesforce connection took any
// Outbound Message.
func TestSharedKeyRequiredByDefault(t *testing.T) {
	c, err := config.Load(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if !c.RequireSharedKey {
		t.Fatal("RequireSharedKey is false without OWNERSYNC_REQUIRE_SHARED_KEY; want true")
	}
	off := map[string]string{"OWNERSYNC_REQUIRE_SHARED_KEY": "false"}
	for k, v := range base {
		off[k] = v
	}
	if c, err = config.Load(env(off)); err != nil {
		t.Fatal(err)
	}
	if c.RequireSharedKey {
		t.Fatal("OWNERSYNC_REQUIRE_SHARED_KEY=false is ignored")
	}
	off["OWNERSYNC_REQUIRE_SHARED_KEY"] = "maybe"
	if _, err := config.Load(env(off)); err == nil {
		t.Fatal("OWNERSYNC_REQUIRE_SHARED_KEY=maybe accepted")
	}
}
