package sfid

import "testing"

func TestTo18(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		// The reference's example ids carry valid checksums.
		{name: "org 15 to 18", in: "00D5g000004XyZa", want: "00D5g000004XyZaEAK"},
		{name: "contact 18 unchanged", in: "0035g00000QwErTAAV", want: "0035g00000QwErTAAV"},
		{name: "queue 15", in: "00G5g000003LkJh", want: "00G5g000003LkJhEAK"},
		{name: "lowercase checksum recomputed", in: "0035g00000QwErTaav", want: "0035g00000QwErTAAV"},
		{name: "too short", in: "005", wantErr: true},
		{name: "bad chars", in: "005-g00000QwErT", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := To18(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("To18(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("To18(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	if !Equal("00D5g000004XyZa", "00D5g000004XyZaEAK") {
		t.Error("15 and 18 forms of one id should be equal")
	}
	if Equal("00D5g000004XyZa", "00D5g000004XYZa") {
		t.Error("15-character ids differing in case are different records")
	}
}
