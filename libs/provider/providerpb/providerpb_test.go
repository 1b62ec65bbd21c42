package providerpb_test

import (
	"testing"

	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/provider/providerpb"
)

func TestRoundTrip(t *testing.T) {
	for _, p := range provider.All {
		v := providerpb.ToProto(p)
		if v == ownersyncv1.Provider_PROVIDER_UNSPECIFIED {
			t.Fatalf("ToProto(%q) = UNSPECIFIED", p)
		}
		got, ok := providerpb.FromProto(v)
		if !ok || got != p {
			t.Errorf("FromProto(ToProto(%q)) = %q, %t", p, got, ok)
		}
	}
	// Every enum value but UNSPECIFIED names a provider, so a new CRM in the proto fails here until
	// provider and providerpb know it.
	for v := range ownersyncv1.Provider_name {
		p, ok := providerpb.FromProto(ownersyncv1.Provider(v))
		if want := v != 0; ok != want || (ok && !p.Valid()) {
			t.Errorf("FromProto(%v) = %q, %t; want known=%t", ownersyncv1.Provider(v), p, ok, want)
		}
	}
	if got := providerpb.ToProto("pipedrive"); got != ownersyncv1.Provider_PROVIDER_UNSPECIFIED {
		t.Errorf("ToProto(unknown) = %v", got)
	}
}
