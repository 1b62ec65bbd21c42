package secretref

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := Resolver{Namespace: Namespace{EnvPrefix: "HS_", Dir: dir}, Getenv: func(k string) string {
		if k == "HS_SECRET" {
			return "from-env"
		}
		return ""
	}}
	tests := []struct {
		name, ref, want string
		wantErr         error
	}{
		{name: "env", ref: "env:HS_SECRET", want: "from-env"},
		{name: "file trims newline", ref: "file:" + f, want: "s3cret"},
		{name: "env missing", ref: "env:HS_NOPE", wantErr: ErrMissing},
		{name: "literal is refused", ref: "hunter2-literal", wantErr: ErrInvalid},
		{name: "file missing", ref: "file:" + filepath.Join(dir, "none"), wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want %v", tt.ref, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks the literal: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
			}
		})
	}
}
