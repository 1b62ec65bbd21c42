// Package secretref resolves secret references. Tenant configuration stores only references
// ("env:NAME" or "file:/abs/path"), resolved at the moment of use, so secrets never sit in MongoDB,
// logs or API responses. A reference resolves only inside the operator's Namespace — environment
// variables with its prefix, files in its directory — so a tenant configuration cannot name the
// operator's own secrets or any file of the process (docs/security.md#secret-references).
package secretref

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrInvalid is returned for a string that is not a reference.
var ErrInvalid = errors.New("not a secret reference (want env:NAME or file:/path)")

// ErrMissing is returned when the referenced variable or file is empty or absent.
var ErrMissing = errors.New("secret reference resolves to nothing")

// ErrOutsideNamespace is returned for a reference outside the operator's namespace.
var ErrOutsideNamespace = errors.New("outside the operator's secret namespace")

// maxFileSize bounds what a file reference reads (a PEM private key is a few KB).
const maxFileSize = 64 << 10

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Namespace is where references may point. The zero Namespace allows nothing.
type Namespace struct {
	// EnvPrefix: env:NAME only for NAME = EnvPrefix followed by at least one character
	// (OWNERSYNC_SECRET_ENV_PREFIX). Empty: no environment references.
	EnvPrefix string
	// Dir: file:/path only for a file inside Dir (OWNERSYNC_SECRETS_DIR), read through os.Root so
	// that neither ".." nor a symbolic link leaves it. Empty: no file references.
	Dir string
}

// String describes the namespace for error messages.
func (n Namespace) String() string {
	var parts []string
	if n.EnvPrefix != "" {
		parts = append(parts, "env:"+n.EnvPrefix+"…")
	}
	if n.Dir != "" {
		parts = append(parts, "file:"+filepath.Join(n.Dir, "…"))
	}
	if len(parts) == 0 {
		return "nothing (no secret namespace configured)"
	}
	return strings.Join(parts, " or ")
}

// Check reports whether ref is a reference inside the namespace: nil, or an error wrapping
// ErrInvalid or ErrOutsideNamespace that names the reference (never a value).
func (n Namespace) Check(ref string) error {
	_, _, err := n.locate(ref)
	return err
}

// locate returns the variable name (env) or the path relative to Dir (file) of ref.
func (n Namespace) locate(ref string) (env, file string, err error) {
	switch {
	case strings.HasPrefix(ref, "env:") && len(ref) > 4:
		name := ref[4:]
		if n.EnvPrefix == "" || !strings.HasPrefix(name, n.EnvPrefix) || len(name) == len(n.EnvPrefix) || !envNameRE.MatchString(name) {
			return "", "", fmt.Errorf("%s: %w (allowed: %s)", ref, ErrOutsideNamespace, n)
		}
		return name, "", nil
	case strings.HasPrefix(ref, "file:/"):
		p := filepath.Clean(ref[5:])
		rel, err := filepath.Rel(filepath.Clean(n.Dir), p)
		if n.Dir == "" || !filepath.IsAbs(n.Dir) || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", "", fmt.Errorf("%s: %w (allowed: %s)", ref, ErrOutsideNamespace, n)
		}
		return "", rel, nil
	}
	return "", "", fmt.Errorf("%q: %w", redact(ref), ErrInvalid)
}

// Resolver resolves references inside its Namespace against an environment lookup, so tests and
// the in-process dev stack can pass their own environment.
type Resolver struct {
	Namespace Namespace
	Getenv    func(string) string
}

// Resolve returns the secret a reference names. Errors name the reference, never the value.
func (r Resolver) Resolve(ref string) (string, error) {
	name, rel, err := r.Namespace.locate(ref)
	if err != nil {
		return "", fmt.Errorf("resolve %w", err)
	}
	var v string
	if name != "" {
		if r.Getenv != nil {
			v = r.Getenv(name)
		}
	} else {
		b, err := readInRoot(r.Namespace.Dir, rel)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", ref, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
	}
	if v == "" {
		return "", fmt.Errorf("resolve %s: %w", ref, ErrMissing)
	}
	return v, nil
}

// readInRoot reads dir/rel without leaving dir (os.Root refuses ".." and symbolic links that
// point outside).
func readInRoot(dir, rel string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return b, nil
}

// redact keeps a literal that was mistakenly given as a reference out of error messages.
func redact(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:2] + "****"
}
