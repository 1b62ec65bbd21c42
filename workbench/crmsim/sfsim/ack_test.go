package sfsim

import (
	"strings"
	"testing"
)

func TestParseAck(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"reference_ack", ackBody, true},
		{"other_prefixes", `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><o:notificationsResponse xmlns:o="http://soap.sforce.com/2005/09/outbound"><o:Ack>1</o:Ack></o:notificationsResponse></e:Body></e:Envelope>`, true},
		{"ack_false", strings.Replace(ackBody, "<Ack>true</Ack>", "<Ack>false</Ack>", 1), false},
		{"wrapped_in_notifications", strings.ReplaceAll(ackBody, "notificationsResponse", "notifications"), false},
		{"wrong_namespace", strings.Replace(ackBody, "http://soap.sforce.com/2005/09/outbound", "urn:other", 1), false},
		{"json", `{"ack":true}`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAck([]byte(tt.body))
			if got != tt.want || (got && err != nil) {
				t.Errorf("ParseAck = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseAck(f *testing.F) {
	f.Add([]byte(ackBody))
	f.Add([]byte(`<Envelope/>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ok, err := ParseAck(body)
		if ok && err != nil {
			t.Fatalf("acked with error %v", err)
		}
	})
}
