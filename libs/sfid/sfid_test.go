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

// TestTo18AllocatesOnlyToChange: an id already in its 18-character form is returned as it is (the
// webhook path normalises every id of every notification; issue 18), a 15-character one or one
// with another checksum costs its one new string.
func TestTo18AllocatesOnlyToChange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		allocs float64
	}{
		{"0035g00000AbCdEAAV", 0},
		{"0035g00000AbCdE", 1},
		{"0035g00000AbCdEXXX", 1},
	} {
		var out string
		got := testing.AllocsPerRun(100, func() { out, _ = To18(tc.in) })
		if got != tc.allocs {
			t.Errorf("To18(%q) = %q: %.0f allocations, want %.0f", tc.in, out, got, tc.allocs)
		}
	}
}
