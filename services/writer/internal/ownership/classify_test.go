package ownership

import "testing"

func TestClassifySalesforce(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		want   Classification
	}{
		{"inactive owner refreshes the user", 200, "INACTIVE_OWNER_OR_USER", Classification{Class: Permanent, RefreshUser: true}},
		{"unknown owner id", 200, "INVALID_CROSS_REFERENCE_KEY", Classification{Class: Permanent}},
		{"queue into contact", 200, "INVALID_CROSS_REFERENCE_TYPE_FOR_FIELD", Classification{Class: Permanent}},
		{"deleted record", 200, "ENTITY_IS_DELETED", Classification{Class: Permanent}},
		{"validation rule", 400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", Classification{Class: Permanent}},
		{"row lock", 200, "UNABLE_TO_LOCK_ROW", Classification{Class: Transient}},
		{"maintenance", 503, "INSERT_UPDATE_DELETE_NOT_ALLOWED_DURING_MAINTENANCE", Classification{Class: Transient}},
		{"request limit", 403, "REQUEST_LIMIT_EXCEEDED", Classification{Class: RateLimited}},
		{"expired session", 401, "INVALID_SESSION_ID", Classification{Class: Auth}},
		{"rolled back", 200, "ALL_OR_NONE_OPERATION_ROLLED_BACK", Classification{Class: Transient, RetryAlone: true}},
		{"unknown code on 500", 500, "SOMETHING_NEW", Classification{Class: Transient}},
		{"unknown code on 400", 400, "SOMETHING_NEW", Classification{Class: Permanent}},
		{"no answer", 0, "", Classification{Class: Transient}},
		{"bare 429", 429, "", Classification{Class: RateLimited}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClassifySalesforce(tt.status, tt.code)
			if got != tt.want {
				t.Errorf("ClassifySalesforce(%d, %q) = %+v, want %+v", tt.status, tt.code, got, tt.want)
			}
			if got.Retryable() != (tt.want.Class != Permanent) {
				t.Errorf("Retryable() = %v for class %s", got.Retryable(), got.Class)
			}
		})
	}
}

func TestClassifyHubSpot(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		category string
		code     string
		want     Classification
	}{
		{"rolling limit", 429, "RATE_LIMITS", "", Classification{Class: RateLimited}},
		{"locked", 423, "", "", Classification{Class: Transient}},
		{"migration", 477, "", "", Classification{Class: Transient}},
		{"bad gateway", 502, "", "", Classification{Class: Transient}},
		{"gateway timeout", 504, "", "", Classification{Class: Transient}},
		{"cloudflare no response", 524, "", "", Classification{Class: Transient}},
		{"contact support", 522, "", "", Classification{Class: Permanent}},
		{"bad token", 401, "INVALID_AUTHENTICATION", "", Classification{Class: Auth}},
		{"missing scope", 403, "MISSING_SCOPES", "", Classification{Class: Permanent}},
		{"whole batch invalid", 400, "VALIDATION_ERROR", "", Classification{Class: Permanent}},
		{"per-record validation", 0, "VALIDATION_ERROR", "", Classification{Class: Permanent}},
		{"per-record not found", 0, "OBJECT_NOT_FOUND", "", Classification{Class: Permanent}},
		{"per-record bad owner", 0, "VALIDATION_ERROR", "INVALID_OWNER_ID", Classification{Class: Permanent, RefreshUser: true}},
		{"no answer", 0, "", "", Classification{Class: Transient}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClassifyHubSpot(tt.status, tt.category, tt.code); got != tt.want {
				t.Errorf("ClassifyHubSpot(%d, %q, %q) = %+v, want %+v", tt.status, tt.category, tt.code, got, tt.want)
			}
		})
	}
}

func TestDirection(t *testing.T) {
	tests := []struct {
		d                 Direction
		toPlatform, toCRM bool
	}{
		{Bidirectional, true, true},
		{"", true, true},
		{CRMToPlatform, true, false},
		{PlatformToCRM, false, true},
		{"sideways", false, false},
	}
	for _, tt := range tests {
		if got := tt.d.AllowsCRMToPlatform(); got != tt.toPlatform {
			t.Errorf("%q.AllowsCRMToPlatform() = %v, want %v", tt.d, got, tt.toPlatform)
		}
		if got := tt.d.AllowsPlatformToCRM(); got != tt.toCRM {
			t.Errorf("%q.AllowsPlatformToCRM() = %v, want %v", tt.d, got, tt.toCRM)
		}
	}
}
