package hubspot

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testdata = "../../testdata/hubspot"

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr(s string) *string { return &s }

func TestDecodeReference(t *testing.T) {
	got, err := Decode(read(t, "owner_changes_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{EventID: 1849302211, SubscriptionID: 2730011, PortalID: 4412345, AppID: 3100456, OccurredAt: 1767225600123,
			SubscriptionType: "contact.propertyChange", ObjectID: 51234, PropertyName: "hubspot_owner_id",
			PropertyValue: ptr("71234567"), ChangeSource: "CRM_UI", SourceID: "userId:9988776"},
		{EventID: 1849302987, SubscriptionID: 2730020, PortalID: 4412345, AppID: 3100456, OccurredAt: 1767225600777,
			SubscriptionType: "object.propertyChange", ObjectTypeID: "0-1", AttemptNumber: 1, ObjectID: 51240,
			PropertyName: "hubspot_owner_id", PropertyValue: ptr(""), ChangeSource: "API", SourceID: "3100456"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Decode mismatch (-want +got):\n%s", diff)
	}
	type summary struct {
		Owner bool
		ID    string
		Key   string
	}
	var sums []summary
	for _, e := range got {
		sums = append(sums, summary{e.IsOwnerChange(), e.OwnerID(), e.EventKey()})
	}
	wantSums := []summary{
		{true, "71234567", "hs:4412345:1849302211:51234:1767225600123:hubspot_owner_id"},
		{true, "", "hs:4412345:1849302987:51240:1767225600777:hubspot_owner_id"},
	}
	if diff := cmp.Diff(wantSums, sums); diff != "" {
		t.Errorf("owner changes (-want +got):\n%s", diff)
	}
}

func TestClassify(t *testing.T) {
	events, err := Decode(read(t, "mixed_batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Type  string
		Owner bool
	}
	var got []row
	for _, e := range events {
		got = append(got, row{e.Type(), e.IsOwnerChange()})
	}
	want := []row{
		{"contact.propertyChange", true}, // legacy eventType key
		{"contact.creation", false},
		{"contact.propertyChange", false}, // another property
		{"object.propertyChange", false},  // objectTypeId 0-2 (company)
		{"contact.merge", false},
		{"contact.associationChange", false},
		{"object.propertyChange", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classification (-want +got):\n%s", diff)
	}
	merge := events[4]
	if diff := cmp.Diff([]ID{51254, 51255}, merge.MergedObjectIDs); diff != "" || merge.NumberOfPropertiesMoved != 7 || merge.NewObjectID != 51253 {
		t.Errorf("merge fields lost: %+v", merge)
	}
	assoc := events[5]
	if assoc.AssociationType != "CONTACT_TO_COMPANY" || assoc.ToObjectID != 777 || !assoc.IsPrimaryAssociation {
		t.Errorf("association fields lost: %+v", assoc)
	}
	if !events[6].IsSensitive || events[6].OwnerID() != "REDACTED" {
		t.Errorf("sensitive event: %+v", events[6])
	}
}

func TestDecodeLimits(t *testing.T) {
	events, err := Decode(read(t, "owner_changes_100.json"))
	if err != nil || len(events) != 100 {
		t.Fatalf("100 events: %d, %v", len(events), err)
	}
	ids := map[string]bool{}
	for _, e := range events {
		ids[e.EventKey()] = true
	}
	if len(ids) != 100 {
		t.Errorf("%d distinct event keys, want 100", len(ids))
	}
	tests := []struct {
		name   string
		body   string
		want   error
		reason string
	}{
		{"101 events", string(read(t, "owner_changes_101.json")), ErrTooMany, "too_many_events"},
		{"empty body", "", ErrEmpty, "empty"},
		{"empty array", " [ ] ", ErrEmpty, "empty"},
		{"object, not array", `{"eventId":1}`, ErrMalformed, "malformed"},
		{"truncated", `[{"eventId":1,"portalId":2`, ErrMalformed, "malformed"},
		{"trailing garbage", `[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation"}]x`, ErrMalformed, "malformed"},
		{"second array", `[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation"}][]`, ErrMalformed, "malformed"},
		{"no portal", `[{"eventId":1,"occurredAt":3,"subscriptionType":"contact.creation"}]`, ErrMalformed, "malformed"},
		{"no type", `[{"eventId":1,"portalId":2,"occurredAt":3}]`, ErrMalformed, "malformed"},
		{"no occurredAt", `[{"eventId":1,"portalId":2,"subscriptionType":"contact.creation"}]`, ErrMalformed, "malformed"},
		{"owner change without object", `[{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.propertyChange","propertyName":"hubspot_owner_id","propertyValue":"1"}]`, ErrMalformed, "malformed"},
		{"portal not a number", `[{"eventId":1,"portalId":"x","occurredAt":3,"subscriptionType":"contact.creation"}]`, ErrMalformed, "malformed"},
		{"invalid UTF-8", "[{\"eventId\":1,\"portalId\":2,\"occurredAt\":3,\"subscriptionType\":\"contact.creation\",\"changeSource\":\"\xff\"}]", ErrInvalidUTF, "invalid_utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.body))
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Decode = %v, %v; want %v", got, err, tt.want)
			}
			if r := Reason(err); r != tt.reason {
				t.Errorf("Reason = %q, want %q", r, tt.reason)
			}
		})
	}
	// Ids as numeric strings are accepted.
	got, err := Decode([]byte(`[{"eventId":"7","portalId":"2","occurredAt":3,"subscriptionType":"contact.propertyChange","objectId":"9","propertyName":"hubspot_owner_id","propertyValue":"5"}]`))
	if err != nil || got[0].EventKey() != "hs:2:7:9:3:hubspot_owner_id" {
		t.Errorf("string ids: %v %v", got, err)
	}
}

// FuzzDecode checks that Decode never panics and that what it accepts respects the limits.
func FuzzDecode(f *testing.F) {
	entries, err := os.ReadDir(testdata)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), "signature") {
			f.Add(read(f, e.Name()))
		}
	}
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Decode(body)
		if err != nil {
			if events != nil {
				t.Fatal("events with error")
			}
			_ = Reason(err)
			return
		}
		if len(events) < 1 || len(events) > MaxEvents {
			t.Fatalf("%d events", len(events))
		}
		for _, e := range events {
			if e.PortalID <= 0 || e.Type() == "" || !strings.HasPrefix(e.EventKey(), "hs:") {
				t.Fatalf("invalid event accepted: %+v", e)
			}
			if e.IsOwnerChange() && e.ObjectID <= 0 {
				t.Fatalf("owner change without object: %+v", e)
			}
		}
	})
}

func TestDecodeStopsAtTheLimit(t *testing.T) {
	// 200,000 empty objects: refused as too many before most of them are decoded.
	body := "[" + strings.Repeat(`{"eventId":1,"portalId":2,"occurredAt":3,"subscriptionType":"contact.creation"},`, 101) + strings.Repeat("{},", 200000) + "{}]"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Decode([]byte(body)); !errors.Is(err, ErrTooMany) {
		t.Fatalf("Decode = %v, want ErrTooMany", err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("Decode allocated %d bytes for a %d-byte body it refuses", alloc, len(body))
	}
}
