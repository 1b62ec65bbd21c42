package provider_test

import (
	"testing"

	"github.com/ownersync/ownersync/libs/provider"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want provider.Provider
		ok   bool
	}{
		{in: "salesforce", want: provider.Salesforce, ok: true},
		{in: "hubspot", want: provider.HubSpot, ok: true},
		{in: "Salesforce", want: "Salesforce", ok: false},
		{in: "", want: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := provider.Parse(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Parse(%q) = %q, %t; want %q, %t", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
