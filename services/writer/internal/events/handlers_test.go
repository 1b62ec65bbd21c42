package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ownersync/ownersync/libs/natsbus"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
)

type fakeEngine struct {
	crm      []ownership.CRMOwnerChange
	platform []ownership.PlatformOwnerChange
	err      error
}

func (f *fakeEngine) CRMChange(_ context.Context, ch ownership.CRMOwnerChange, _ uint64) error {
	f.crm = append(f.crm, ch)
	return f.err
}

func (f *fakeEngine) PlatformChange(_ context.Context, ch ownership.PlatformOwnerChange) error {
	f.platform = append(f.platform, ch)
	return f.err
}

// payloads are a valid HubSpot owner change and platform owner change of tenant acme.
func payloads() (crm, plat []byte) {
	crm, _ = proto.Marshal(&ownersyncv1.CrmOwnerChanged{Meta: testMeta("hs:1", "acme"), Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT,
		RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "51234", OwnerId: "7001"})
	plat, _ = proto.Marshal(&ownersyncv1.PlatformOwnerChanged{Meta: testMeta("p-1", "acme"), RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
		PlatformRecordId: "pr-1", OwnerUserId: "pu-ada"})
	return crm, plat
}

func TestHandlers(t *testing.T) {
	ctx := context.Background()
	crm, plat := payloads()
	e := &fakeEngine{}
	if err := HandleCRM(ctx, e, "acme", crm, 1); err != nil || len(e.crm) != 1 || e.crm[0].OwnerID != "7001" {
		t.Errorf("HandleCRM = %v, engine saw %+v", err, e.crm)
	}
	if err := HandlePlatform(ctx, e, "acme", plat); err != nil || len(e.platform) != 1 || e.platform[0].OwnerUserID != "pu-ada" {
		t.Errorf("HandlePlatform = %v, engine saw %+v", err, e.platform)
	}
	for name, err := range map[string]error{
		"garbage":               HandleCRM(ctx, e, "acme", []byte{0xff, 0x01}, 1),
		"wrong tenant":          HandleCRM(ctx, e, "other", crm, 1),
		"invalid change":        HandlePlatform(ctx, e, "acme", []byte{}),
		"platform wrong tenant": HandlePlatform(ctx, e, "other", plat),
	} {
		if !natsbus.IsPermanent(err) {
			t.Errorf("%s: %v, want permanent", name, err)
		}
	}
	if len(e.crm) != 1 || len(e.platform) != 1 {
		t.Errorf("bad messages reached the engine: %d, %d", len(e.crm), len(e.platform))
	}
	e.err = errors.New("kv down")
	if err := HandleCRM(ctx, e, "acme", crm, 1); !errors.Is(err, e.err) || natsbus.IsPermanent(err) {
		t.Errorf("engine error = %v, want it passed through as is", err)
	}
}

// TestEngineVerdictsBecomeMessageFates: the engine returns domain errors; the edge turns an
// unretryable one into a dead letter, a RetryAfter into a redelivery after its delay, and passes
// any other error on for the consumer's back-off.
func TestEngineVerdictsBecomeMessageFates(t *testing.T) {
	ctx := context.Background()
	crm, plat := payloads()
	cause := errors.New("INVALID_CROSS_REFERENCE_KEY")
	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
		delay     time.Duration
	}{
		{name: "unretryable", err: ownership.Unretryable(cause), permanent: true},
		{name: "wrapped unretryable", err: fmt.Errorf("record 51234: %w", ownership.Unretryable(cause)), permanent: true},
		{name: "retry after", err: ownership.RetryAfter(cause, 7*time.Second), delay: 7 * time.Second},
		{name: "transient", err: cause},
	} {
		e := &fakeEngine{err: tt.err}
		for side, got := range map[string]error{"crm": HandleCRM(ctx, e, "acme", crm, 1), "platform": HandlePlatform(ctx, e, "acme", plat)} {
			if natsbus.IsPermanent(got) != tt.permanent || !errors.Is(got, cause) {
				t.Errorf("%s %s: %v, want permanent %v wrapping the cause", tt.name, side, got, tt.permanent)
			}
			var delay time.Duration
			if re := (*natsbus.RetryError)(nil); errors.As(got, &re) {
				delay = re.Delay
			}
			if delay != tt.delay {
				t.Errorf("%s %s: %v, want a retry in %s", tt.name, side, got, tt.delay)
			}
			if tt.permanent && strings.Count(got.Error(), "permanent: ") != 1 {
				t.Errorf("%s %s: %q says \"permanent: \" other than once", tt.name, side, got)
			}
		}
	}
}
