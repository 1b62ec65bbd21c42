package app_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ownersync/ownersync/services/mapper/internal/app"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

func TestMerge(t *testing.T) {
	t1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	stored := domain.CRMUser{CRMUser: mapping.CRMUser{ID: "005A", Email: "a@x.test", FirstName: "Ann", LastName: "Lee", Active: true,
		Kind: mapping.CRMKindUser, Username: "ann@x.sf", UserType: "Standard"}, HubSpotUserID: 0}
	change := domain.CRMUser{CRMUser: mapping.CRMUser{ID: "005A", Email: "new@x.test", Active: false}, SourceTime: t1}
	tests := []struct {
		name   string
		known  bool
		fields []string
		want   domain.CRMUser
	}{
		{
			name: "partial change keeps the fields it did not carry", known: true, fields: []string{app.FieldActive},
			want: func() domain.CRMUser { u := stored; u.Active = false; u.SourceTime = t1; return u }(),
		},
		{
			name: "email and active carried", known: true, fields: []string{app.FieldEmail, app.FieldActive},
			want: func() domain.CRMUser {
				u := stored
				u.Active, u.Email, u.SourceTime = false, "new@x.test", t1
				return u
			}(),
		},
		{
			name: "no fields means the user is complete", known: true,
			want: func() domain.CRMUser { u := change; u.Kind = mapping.CRMKindUser; return u }(),
		},
		{
			name: "unknown user is taken as sent", known: false, fields: []string{app.FieldActive},
			want: func() domain.CRMUser { u := change; u.Kind = mapping.CRMKindUser; return u }(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := stored
			if !tt.known {
				prev = domain.CRMUser{}
			}
			got := app.Merge(prev, tt.known, change, tt.fields)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}
