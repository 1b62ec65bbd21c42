package events

import (
	"context"
	"errors"
	"testing"

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

func TestHandlers(t *testing.T) {
	ctx := context.Background()
	crm, _ := proto.Marshal(&ownersyncv1.CrmOwnerChanged{Meta: testMeta("hs:1", "acme"), Provider: ownersyncv1.Provider_PROVIDER_HUBSPOT,
		RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT, RecordId: "51234", OwnerId: "7001"})
	plat, _ := proto.Marshal(&ownersyncv1.PlatformOwnerChanged{Meta: testMeta("p-1", "acme"), RecordType: ownersyncv1.RecordType_RECORD_TYPE_CONTACT,
		PlatformRecordId: "pr-1", OwnerUserId: "pu-ada"})
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
