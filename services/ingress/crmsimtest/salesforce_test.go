package crmsimtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/workbench/harness"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/libs/salesforce"
	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/services/ingress/internal/soap"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// ackAll answers every Outbound Message with ingress's acknowledgement envelope.
func ackAll(_ int, w http.ResponseWriter) {
	w.Header().Set("Content-Type", soap.ContentType)
	w.Write(soap.Ack())
}

// is18 reports whether id is a valid Salesforce id in its 18-character form.
func is18(id string) bool {
	n, err := sfid.To18(id)
	return err == nil && len(id) == 18 && n == id
}

// TestOutboundMessagesParse drives the sandbox org through the real client and its admin API and
// parses every Outbound Message it sends with ingress's soap parser: object types, 18-character
// ids, owner kinds (user and queue), nil fields, a user's deactivation, more than 100 changes
// split over messages of at most 100 notifications, and the shared key in the URL.
func TestOutboundMessagesParse(t *testing.T) {
	rec := newRecorder(t, ackAll)
	org, c := newOrg(t, rec.srv.URL+"/webhooks/salesforce", "k3y&=")
	ctx := context.Background()

	// API write by the integration user (the echo of §1.1).
	if err := c.UpdateOwner(ctx, salesforce.Contact, sfContact, sfBob); err != nil {
		t.Fatal(err)
	}
	// UI writes by Ada: a lead to a queue, a contact without an email.
	if err := org.SetOwner(sfLead, sfQueue, sfAda); err != nil {
		t.Fatal(err)
	}
	if err := org.SetOwner(sfNoEmail, sfBob, sfAda); err != nil {
		t.Fatal(err)
	}
	// A deactivation.
	if _, err := org.UpdateUser(sfLinus, func(u *sfsim.User) { u.IsActive = false }); err != nil {
		t.Fatal(err)
	}
	// 150 owner changes in one Collections call.
	var bulk []salesforce.OwnerUpdate
	for i := range 150 {
		r, err := org.CreateRecord(sfsim.Record{Type: sfsim.ObjectContact, Email: fmt.Sprintf("bulk%03d@example.org", i), LastName: "Bulk", OwnerID: sfAda})
		if err != nil {
			t.Fatal(err)
		}
		bulk = append(bulk, salesforce.OwnerUpdate{ObjectType: salesforce.Contact, ID: r.ID, OwnerID: sfBob})
	}
	results, err := c.UpdateOwners(ctx, bulk)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
	}

	const wantNotifications = 1 + 1 + 1 + 1 + 150
	notes := map[string]soap.Notification{} // by notification id
	byRecord := map[string]soap.SObject{}
	parsed := 0
	parseNew := func() {
		reqs := rec.received()
		for _, r := range reqs[parsed:] {
			parsed++
			m, err := soap.Parse(r.Body)
			if err != nil {
				t.Fatalf("soap.Parse of the sandbox's message: %v\n%s", err, r.Body)
			}
			u, err := url.Parse(r.URI)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query().Get("key"); got != "k3y&=" || u.Path != "/webhooks/salesforce" {
				t.Errorf("called %s, want the endpoint with key", r.URI)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Errorf("Content-Type %q", ct)
			}
			if m.OrganizationID != org.OrgID() || !is18(m.OrganizationID) || !strings.HasPrefix(m.ActionID, "04k") || !is18(m.ActionID) {
				t.Errorf("message from org %q, action %q", m.OrganizationID, m.ActionID)
			}
			if m.HasSessionID || !strings.Contains(m.EnterpriseURL, "/services/Soap/c/") || !strings.HasSuffix(m.EnterpriseURL, org.OrgID()[:15]) {
				t.Errorf("session %v, enterprise URL %q", m.HasSessionID, m.EnterpriseURL)
			}
			if len(m.Ignored) != 0 || len(m.Notifications) == 0 || len(m.Notifications) > soap.MaxNotifications {
				t.Errorf("%d notifications, %d ignored", len(m.Notifications), len(m.Ignored))
			}
			typ := m.Notifications[0].Object.Type
			for _, n := range m.Notifications {
				if n.Object.Type != typ {
					t.Errorf("one message mixes %s and %s", typ, n.Object.Type)
				}
				if !strings.HasPrefix(n.ID, "04l") || !is18(n.ID) || !is18(n.Object.ID) {
					t.Errorf("notification %q for record %q: not 18-character ids", n.ID, n.Object.ID)
				}
				notes[n.ID] = n
				byRecord[n.Object.ID] = n.Object
			}
		}
	}
	harness.Eventually(t, 10*time.Second, "every notification", func() bool {
		parseNew()
		st := org.OutboundStats()
		return len(notes) >= wantNotifications && st.Pending == 0 && st.Queued == 0
	})
	if len(notes) != wantNotifications {
		t.Errorf("%d notifications, want %d", len(notes), wantNotifications)
	}
	for _, d := range org.Deliveries() {
		if !d.Acked || d.Attempt != 1 || d.Status != http.StatusOK {
			t.Errorf("delivery %+v: ingress's ack was not taken on the first attempt", d)
		}
	}

	field := func(o soap.SObject, name string) string {
		v, _ := o.Get(name)
		return v
	}
	type view struct {
		Type, OwnerID, OwnerPrefix, ModifiedBy, Email string
		EmailNil                                      bool
	}
	viewOf := func(o soap.SObject) view {
		return view{Type: o.Type, OwnerID: field(o, "OwnerId"), OwnerPrefix: sfid.Prefix(field(o, "OwnerId")),
			ModifiedBy: field(o, "LastModifiedById"), Email: field(o, "Email"), EmailNil: o.Has("Email") && o.Fields["Email"].Nil}
	}
	got := map[string]view{sfContact: viewOf(byRecord[sfContact]), sfLead: viewOf(byRecord[sfLead]), sfNoEmail: viewOf(byRecord[sfNoEmail])}
	want := map[string]view{
		sfContact: {Type: soap.Contact, OwnerID: sfBob, OwnerPrefix: sfid.PrefixUser, ModifiedBy: org.IntegrationUserID(), Email: "grace@example.org"},
		sfLead:    {Type: soap.Lead, OwnerID: sfQueue, OwnerPrefix: sfid.PrefixQueue, ModifiedBy: sfAda, Email: "lead@example.org"},
		sfNoEmail: {Type: soap.Contact, OwnerID: sfBob, OwnerPrefix: sfid.PrefixUser, ModifiedBy: sfAda, EmailNil: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owner notifications (-want +got):\n%s", diff)
	}

	linus, ok := byRecord[sfLinus]
	if !ok {
		t.Fatal("no notification for the deactivated user")
	}
	active, ok, err := linus.Bool("IsActive")
	if err != nil || !ok || active || linus.Type != soap.User || field(linus, "Email") != "linus@example.com" || field(linus, "UserType") != "Standard" {
		t.Errorf("user notification %+v: IsActive %v %v %v", linus, active, ok, err)
	}
	for _, u := range bulk {
		if o := byRecord[u.ID]; o.Type != soap.Contact || field(o, "OwnerId") != sfBob {
			t.Errorf("bulk contact %s: %+v", u.ID, o)
		}
	}
}

// TestOutboundRedeliveredAfterFault answers the first two attempts with ingress's SOAP fault: the
// sandbox delivers the same notifications again until ingress's ack, and every attempt parses.
func TestOutboundRedeliveredAfterFault(t *testing.T) {
	rec := newRecorder(t, func(n int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", soap.ContentType)
		if n < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(soap.Fault(soap.FaultServer, "events not stored"))
			return
		}
		w.Write(soap.Ack())
	})
	org, c := newOrg(t, rec.srv.URL+"/webhooks/salesforce", "")
	if err := c.UpdateOwner(context.Background(), salesforce.Lead, sfLead, sfQueue); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "the acknowledgement", func() bool { return org.OutboundStats().Acked == 1 })
	var ids [][]string
	for _, r := range rec.received() {
		m, err := soap.Parse(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, x := range m.Notifications {
			n = append(n, x.ID+" "+x.Object.ID+" "+x.Object.Fields["OwnerId"].Value)
		}
		ids = append(ids, n)
	}
	if len(ids) != 3 {
		t.Fatalf("%d attempts, want 3", len(ids))
	}
	if diff := cmp.Diff(ids[0], ids[2]); diff != "" || diff != cmp.Diff(ids[0], ids[1]) || !strings.HasSuffix(ids[0][0], sfLead+" "+sfQueue) {
		t.Errorf("redeliveries differ or are wrong: %q", ids)
	}
	var attempts []string
	for _, d := range org.Deliveries() {
		attempts = append(attempts, fmt.Sprintf("%d %d %v", d.Attempt, d.Status, d.Acked))
	}
	if diff := cmp.Diff([]string{"1 503 false", "2 503 false", "3 200 true"}, attempts); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}
