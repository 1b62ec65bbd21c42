// Package secretref resolves secret references. Tenant configuration stores only references
// ("env:NAME" or "file:/abs/path"), resolved at the moment of use, so secrets never sit in MongoDB,
// logs or API responses.
package secretref

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrInvalid is returned for a string that is not a reference.
var ErrInvalid = errors.New("not a secret reference (want env:NAME or file:/path)")

// ErrMissing is returned when the referenced variable or file is empty or absent.
var ErrMissing = errors.New("secret reference resolves to nothing")

// Resolver resolves references against an environment lookup, so tests and the in-process dev stack
// can pass their own environment.
type Resolver struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// Default resolves against the process environment and file system.
var Default = Resolver{Getenv: os.Getenv, ReadFile: os.ReadFile}

// Resolve returns the secret a reference names. Errors name the reference, never the value.
func (r Resolver) Resolve(ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:") && len(ref) > 4:
		v := r.Getenv(ref[4:])
		if v == "" {
			return "", fmt.Errorf("resolve %s: %w", ref, ErrMissing)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:/"):
		b, err := r.ReadFile(ref[5:])
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", ref, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("resolve %s: %w", ref, ErrMissing)
		}
		return v, nil
	}
	return "", fmt.Errorf("resolve %q: %w", redact(ref), ErrInvalid)
}

// redact keeps a literal that was mistakenly given as a reference out of error messages.
func redact(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:2] + "****"
}
