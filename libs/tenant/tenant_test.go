package tenant_test

import (
	"strings"
	"testing"

	"github.com/ownersync/ownersync/libs/tenant"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{id: "acme", want: true},
		{id: "acme-eu_2", want: true},
		{id: "0", want: true},
		{id: strings.Repeat("a", 63), want: true},
		{id: strings.Repeat("a", 64), want: false},
		{id: "", want: false},
		{id: "-acme", want: false},
		{id: "_acme", want: false},
		{id: "Acme", want: false},
		{id: "acme.eu", want: false}, // a subject token separator
		{id: "acme*", want: false},
		{id: "acme>", want: false},
		{id: "ac me", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := tenant.ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %t, want %t", tt.id, got, tt.want)
			}
		})
	}
}
