package crmsimtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/hubspot"
	ingresshs "github.com/ownersync/ownersync/services/ingress/internal/hubspot"
	"github.com/ownersync/ownersync/services/ingress/internal/hubspotsig"
)

// hsQuery carries escapes that v3 signing decodes (%3A, %2f, %40) and one it keeps (%20).
const hsQuery = "?tenant=acme&note=a%3Ab%2fc%20d%40e"

// TestWebhooksVerifyAndDecode drives owner changes into the sandbox account — through the real
// client's batch update (changeSource API), the UI (CRM_UI), a cleared owner and 150 changes at
// once — and checks every webhook request it sends with ingress's verifier (v3 over the URI the
// sandbox called, query string included; v1 for legacy apps) and decoder. The first request is
// answered 500, so its retry is checked too.
func TestWebhooksVerifyAndDecode(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter) {
		if n == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	acct, c := newAccount(t, rec.srv.URL+"/webhooks/hubspot"+hsQuery)
	ctx := context.Background()

	res, err := c.BatchUpdateOwners(ctx, []hubspot.OwnerUpdate{
		{ContactID: "101", OwnerID: "7002", TraceID: "t-101"},
		{ContactID: "103", OwnerID: "7001", TraceID: "t-103"},
		{ContactID: "104", OwnerID: "", TraceID: "t-104"},
	})
	if err != nil || len(res.Failed()) != 0 {
		t.Fatalf("BatchUpdateOwners: %v %+v", err, res.Failed())
	}
	if err := acct.SetContactOwner("102", "7001", 9001); err != nil {
		t.Fatal(err)
	}
	var bulk []hubspot.OwnerUpdate
	for i := range 150 {
		id := strconv.Itoa(5000 + i)
		if _, err := acct.CreateContact(hssimContact(id, fmt.Sprintf("bulk%d@example.org", i))); err != nil {
			t.Fatal(err)
		}
		bulk = append(bulk, hubspot.OwnerUpdate{ContactID: id, OwnerID: "7002", TraceID: "bulk-" + id})
	}
	if res, err := c.BatchUpdateOwners(ctx, bulk); err != nil || len(res.Failed()) != 0 {
		t.Fatalf("bulk BatchUpdateOwners: %v", err)
	}

	const wantEvents = 3 + 1 + 150
	harness.Eventually(t, 10*time.Second, "every webhook delivered", func() bool {
		st := acct.WebhookStats()
		return st.Pending == 0 && st.Active == 0 && st.Delivered > 0
	})
	if st := acct.WebhookStats(); st.Failed != 0 {
		t.Fatalf("webhook stats %+v", st)
	}
	reqs := rec.received()
	byKey := map[string]ingresshs.Event{}
	byObject := map[string]ingresshs.Event{}
	var firstKeys []string
	retried := false
	for i, r := range reqs {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URI, "/webhooks/hubspot"+hsQuery) {
			t.Errorf("request %d: %s %s", i, r.Method, r.URI)
		}
		req := hubspotsig.Request{Method: r.Method, URI: r.URI, Body: r.Body, Header: r.Header.Get}
		version, err := hubspotsig.Verify(req, hsAppSecret, false, time.Now())
		if err != nil || version != "v3" {
			t.Errorf("request %d: Verify = %q, %v", i, version, err)
		}
		if err := hubspotsig.VerifyV1(hsAppSecret, r.Body, r.Header.Get(hubspotsig.HeaderLegacy)); err != nil {
			t.Errorf("request %d: v1 signature: %v", i, err)
		}
		if _, err := hubspotsig.Verify(req, "another-secret", false, time.Now()); !errors.Is(err, hubspotsig.ErrMismatch) {
			t.Errorf("request %d: wrong secret: %v", i, err)
		}
		if _, err := hubspotsig.Verify(req, hsAppSecret, false, time.Now().Add(hubspotsig.MaxSkew+time.Minute)); !errors.Is(err, hubspotsig.ErrExpired) {
			t.Errorf("request %d: replayed after the window: %v", i, err)
		}
		noQuery := req
		noQuery.URI = strings.TrimSuffix(r.URI, hsQuery)
		if _, err := hubspotsig.Verify(noQuery, hsAppSecret, false, time.Now()); !errors.Is(err, hubspotsig.ErrMismatch) {
			t.Errorf("request %d: signature does not cover the query string: %v", i, err)
		}

		events, err := ingresshs.Decode(r.Body)
		if err != nil {
			t.Fatalf("request %d: Decode: %v\n%s", i, err, r.Body)
		}
		if len(events) > ingresshs.MaxEvents {
			t.Errorf("request %d carries %d events", i, len(events))
		}
		var keys []string
		attempt := events[0].AttemptNumber
		for _, e := range events {
			if !e.IsOwnerChange() || int64(e.PortalID) != acct.PortalID() || int64(e.AppID) != acct.AppID() {
				t.Errorf("event %+v: not an owner change of this portal and app", e)
			}
			if e.AttemptNumber != attempt {
				t.Errorf("request %d mixes attempt numbers %d and %d", i, attempt, e.AttemptNumber)
			}
			keys = append(keys, e.EventKey())
			if _, dup := byKey[e.EventKey()]; dup && attempt == 0 {
				t.Errorf("event %s delivered twice as a first attempt", e.EventKey())
			}
			byKey[e.EventKey()] = e
			byObject[e.ObjectID.String()] = e
		}
		switch {
		case i == 0:
			firstKeys = keys
		case attempt > 0:
			retried = true
			if diff := cmp.Diff(firstKeys, keys); diff != "" {
				t.Errorf("the retry of the refused request carries other events (-first +retry):\n%s", diff)
			}
		}
	}
	if !retried {
		t.Error("no retry was seen after the 500")
	}
	if len(byKey) != wantEvents {
		t.Errorf("%d distinct events, want %d", len(byKey), wantEvents)
	}

	type view struct {
		Owner, Source, SourceID string
	}
	got := map[string]view{}
	for _, id := range []string{"101", "102", "103", "104"} {
		e := byObject[id]
		got[id] = view{e.OwnerID(), e.ChangeSource, e.SourceID}
	}
	api := strconv.FormatInt(acct.AppID(), 10)
	want := map[string]view{
		"101": {"7002", "API", api},
		"102": {"7001", "CRM_UI", "userId:9001"},
		"103": {"7001", "API", api},
		"104": {"", "API", api},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owner changes (-want +got):\n%s", diff)
	}
	for _, u := range bulk {
		if e := byObject[u.ContactID]; e.OwnerID() != "7002" {
			t.Errorf("bulk contact %s: %+v", u.ContactID, e)
		}
	}
}
