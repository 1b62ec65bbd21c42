package mongostore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

func TestProvisionsRecordOnceListAndDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	dana := mapping.Provision{Provider: "hubspot", CRMUserID: "71000003", Email: "dana@acme.test", FirstName: "Dana", LastName: "New", RequestedAt: t0}
	eve := mapping.Provision{Provider: "hubspot", CRMUserID: "71000004", Email: "eve@acme.test", RequestedAt: t0}
	sfDana := dana
	sfDana.Provider, sfDana.CRMUserID = "salesforce", "0055g00000AsDfGAAV"

	for _, p := range []mapping.Provision{dana, eve, sfDana} {
		created, err := s.PutProvision(ctx, "acme", p)
		if err != nil || !created {
			t.Fatalf("PutProvision %s: created %v err %v", p.CRMUserID, created, err)
		}
	}
	// A repeat keeps the first request (its time) and says so.
	again := dana
	again.RequestedAt = t0.Add(1)
	again.FirstName = "Changed"
	if created, err := s.PutProvision(ctx, "acme", again); err != nil || created {
		t.Fatalf("repeat PutProvision: created %v err %v", created, err)
	}
	got, err := s.Provision(ctx, "acme", "hubspot", dana.CRMUserID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dana, got); diff != "" {
		t.Errorf("Provision after repeat (-want +got):\n%s", diff)
	}
	if _, err := s.Provision(ctx, "other", "hubspot", dana.CRMUserID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("other tenant: err %v, want ErrNotFound", err)
	}

	all, err := s.Provisions(ctx, "acme", "hubspot")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]mapping.Provision{dana, eve}, all); diff != "" {
		t.Errorf("Provisions hubspot (-want +got):\n%s", diff)
	}
	some, err := s.Provisions(ctx, "acme", "hubspot", eve.CRMUserID, "unknown")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]mapping.Provision{eve}, some); diff != "" {
		t.Errorf("Provisions by id (-want +got):\n%s", diff)
	}
	if none, err := s.Provisions(ctx, "acme", "hubspot", []string{}...); err != nil || len(none) != 0 {
		t.Errorf("Provisions with an empty id list = %v, %v; want none", none, err)
	}

	if err := s.DeleteProvision(ctx, "acme", "hubspot", dana.CRMUserID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProvision(ctx, "acme", "hubspot", dana.CRMUserID); err != nil {
		t.Errorf("deleting a missing request: %v", err)
	}
	if _, err := s.Provision(ctx, "acme", "hubspot", dana.CRMUserID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("after delete: err %v, want ErrNotFound", err)
	}
	if created, err := s.PutProvision(ctx, "acme", dana); err != nil || !created {
		t.Errorf("PutProvision after delete: created %v err %v", created, err)
	}
}
