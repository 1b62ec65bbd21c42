package secretbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RefPrefix starts a reference to a stored value: "stored:<tenant>/<name>". Tenant configurations
// carry these next to the operator's env: and file: references; the tenant is part of the
// reference (and of the value's AAD), so a reference resolves only to its own tenant's value.
const RefPrefix = "stored:"

// Ref returns the reference to the value (tenant, name).
func Ref(tenantID, name string) string { return RefPrefix + tenantID + "/" + name }

// IsRef reports whether ref names a stored value.
func IsRef(ref string) bool {
	_, _, ok := ParseRef(ref)
	return ok
}

// ParseRef splits a stored reference into tenant and name.
func ParseRef(ref string) (tenantID, name string, ok bool) {
	rest, found := strings.CutPrefix(ref, RefPrefix)
	if !found {
		return "", "", false
	}
	tenantID, name, ok = strings.Cut(rest, "/")
	return tenantID, name, ok && tenantID != "" && name != "" && !strings.ContainsAny(name, "/\x00")
}

// RefResolver resolves a secret reference (secretref.Resolver satisfies it).
type RefResolver interface {
	Resolve(ref string) (string, error)
}

// ErrNoKeys is returned for a stored reference when no keyring is configured.
var ErrNoKeys = errors.New("stored secret: no keyring configured (OWNERSYNC_STORED_SECRET_KEYS)")

// Resolver resolves stored references from s and every other reference with next. s may be nil:
// stored references then fail with ErrNoKeys.
func Resolver(s *Store, next RefResolver) RefResolver { return resolver{s: s, next: next} }

type resolver struct {
	s    *Store
	next RefResolver
}

// lookupTimeout bounds the MongoDB read of a stored reference (Resolve has no context).
const lookupTimeout = 10 * time.Second

func (r resolver) Resolve(ref string) (string, error) {
	t, name, ok := ParseRef(ref)
	if !ok {
		if strings.HasPrefix(ref, RefPrefix) {
			return "", fmt.Errorf("resolve %s: malformed stored reference (want stored:<tenant>/<name>)", ref)
		}
		return r.next.Resolve(ref)
	}
	if r.s == nil {
		return "", fmt.Errorf("resolve %s: %w", ref, ErrNoKeys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	v, err := r.s.Get(ctx, t, name)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	return v.Reveal(), nil
}
