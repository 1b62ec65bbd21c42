package salesforce_test

import (
	"errors"
	"testing"

	"github.com/ownersync/ownersync/libs/salesforce"
)

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		in     string
		want   salesforce.LimitInfo
		wantOK bool
	}{
		{in: "api-usage=10018/100000", want: salesforce.LimitInfo{Used: 10018, Max: 100000}, wantOK: true},
		{in: "api-usage=18/15000; per-app-api-usage=17/250(appName=sample-connected-app)", want: salesforce.LimitInfo{Used: 18, Max: 15000}, wantOK: true},
		{in: "per-app-api-usage=17/250(appName=x);api-usage=5/10", want: salesforce.LimitInfo{Used: 5, Max: 10}, wantOK: true},
		{in: "api-bursts=1/2; api-usage = 7 / 9 ", want: salesforce.LimitInfo{Used: 7, Max: 9}, wantOK: true},
		{in: ""},
		{in: "per-app-api-usage=17/250"},
		{in: "api-usage=10018"},
		{in: "api-usage=a/b"},
		{in: "api-usage=-1/5"},
	}
	for _, tt := range tests {
		got, ok := salesforce.ParseLimitInfo(tt.in)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseLimitInfo(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	if r := (salesforce.LimitInfo{Used: 10018, Max: 100000}).Remaining(); r != 89982 {
		t.Errorf("Remaining = %d", r)
	}
}

func FuzzParseLimitInfo(f *testing.F) {
	for _, s := range []string{"api-usage=10018/100000", "api-usage=18/15000; per-app-api-usage=17/250(appName=sample-connected-app)", "api-bursts=1/2", ";;=/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, ok := salesforce.ParseLimitInfo(s)
		if !ok && info != (salesforce.LimitInfo{}) {
			t.Fatalf("not ok but %v", info)
		}
		if ok && (info.Used < 0 || info.Max < 0) {
			t.Fatalf("negative %v", info)
		}
	})
}

func TestTransientTable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unable to lock row", &salesforce.APIError{HTTPStatus: 200, Code: "UNABLE_TO_LOCK_ROW"}, true},
		{"request limit exceeded", &salesforce.APIError{HTTPStatus: 403, Code: "REQUEST_LIMIT_EXCEEDED"}, true},
		{"maintenance", &salesforce.APIError{HTTPStatus: 200, Code: "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE"}, true},
		{"all or none rolled back: retry alone", &salesforce.APIError{HTTPStatus: 200, Code: "ALL_OR_NONE_OPERATION_ROLLED_BACK"}, true},
		{"500 without code", &salesforce.APIError{HTTPStatus: 500}, true},
		{"503 server busy", &salesforce.APIError{HTTPStatus: 503}, true},
		{"inactive owner", &salesforce.APIError{HTTPStatus: 200, Code: "INACTIVE_OWNER_OR_USER"}, false},
		{"invalid cross reference key", &salesforce.APIError{HTTPStatus: 400, Code: "INVALID_CROSS_REFERENCE_KEY"}, false},
		{"wrong reference type", &salesforce.APIError{HTTPStatus: 400, Code: "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD"}, false},
		{"entity is deleted", &salesforce.APIError{HTTPStatus: 200, Code: "ENTITY_IS_DELETED"}, false},
		{"malformed id", &salesforce.APIError{HTTPStatus: 400, Code: "MALFORMED_ID"}, false},
		{"insufficient access", &salesforce.APIError{HTTPStatus: 200, Code: "INSUFFICIENT_ACCESS_OR_READONLY"}, false},
		{"transfer requires read", &salesforce.APIError{HTTPStatus: 200, Code: "TRANSFER_REQUIRES_READ"}, false},
		{"empty owner", &salesforce.APIError{HTTPStatus: 200, Code: "INVALID_EMPTY_KEY_OWNER"}, false},
		{"entity is locked", &salesforce.APIError{HTTPStatus: 200, Code: "ENTITY_IS_LOCKED"}, false},
		{"session still invalid", &salesforce.APIError{HTTPStatus: 401, Code: "INVALID_SESSION_ID"}, false},
		{"unknown 4xx", &salesforce.APIError{HTTPStatus: 400, Code: "JSON_PARSER_ERROR"}, false},
		{"wrapped transient", errors.Join(errors.New("ctx"), &salesforce.APIError{HTTPStatus: 200, Code: "UNABLE_TO_LOCK_ROW"}), true},
		{"plain error", errors.New("boom"), false},
	}
	for _, tt := range tests {
		if g := salesforce.Transient(tt.err); g != tt.want {
			t.Errorf("%s: Transient = %v, want %v", tt.name, g, tt.want)
		}
	}
}
