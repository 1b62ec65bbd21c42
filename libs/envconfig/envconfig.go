// Package envconfig reads a service's configuration from environment lookups and reports every
// problem at once, so an operator fixes a bad deployment in one round.
package envconfig

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ownersync/ownersync/libs/redact"
)

// Reader reads variables through getenv and collects problems.
type Reader struct {
	getenv   func(string) string
	problems []string
	vars     []Var
	seen     map[string]bool
}

// Var is a variable a Reader was asked for: what `-h` lists.
type Var struct {
	Name     string
	Default  string
	Required bool
}

// Error is every configuration problem at once, with the variables the configuration reads.
type Error struct {
	Problems []string
	Vars     []Var
}

func (e *Error) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

func (r *Reader) note(name, def string, required bool) {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if !r.seen[name] {
		r.seen[name] = true
		r.vars = append(r.vars, Var{Name: name, Default: def, Required: required})
	}
}

// New returns a reader over getenv.
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// String returns the variable or def when unset.
func (r *Reader) String(name, def string) string {
	r.note(name, def, false)
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// Required returns the variable or records that it is missing.
func (r *Reader) Required(name string) string {
	r.note(name, "", true)
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		r.problems = append(r.problems, name+" is required")
	}
	return v
}

// Duration parses a Go duration ("250ms", "5s").
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	r.note(name, def.String(), false)
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.problems = append(r.problems, fmt.Sprintf("%s=%q is not a duration like 5s", name, v))
		return def
	}
	return d
}

// Int parses an integer within [min, max].
func (r *Reader) Int(name string, def, min, max int) int {
	r.note(name, strconv.Itoa(def), false)
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		r.problems = append(r.problems, fmt.Sprintf("%s=%q must be an integer in [%d, %d]", name, v, min, max))
		return def
	}
	return n
}

// Bool parses true/false/1/0.
func (r *Reader) Bool(name string, def bool) bool {
	r.note(name, strconv.FormatBool(def), false)
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s=%q must be true or false", name, v))
		return def
	}
	return b
}

// URL parses an absolute URL with one of the schemes.
func (r *Reader) URL(name, def string, schemes ...string) string {
	v := r.String(name, def)
	if v == "" {
		return v
	}
	u, err := url.Parse(v)
	ok := err == nil && u.Host != ""
	if ok && len(schemes) > 0 {
		ok = false
		for _, s := range schemes {
			ok = ok || u.Scheme == s
		}
	}
	if !ok {
		r.problems = append(r.problems, fmt.Sprintf("%s=%q must be a URL with scheme %s", name, redact.URL(v), strings.Join(schemes, " or ")))
	}
	return v
}

// List splits a comma-separated variable.
func (r *Reader) List(name string) []string {
	r.note(name, "", false)
	var out []string
	for _, p := range strings.Split(r.getenv(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Problem records a problem found by the caller's own validation.
func (r *Reader) Problem(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}

// Err returns every problem at once, or nil.
func (r *Reader) Err() error {
	if len(r.problems) == 0 {
		return nil
	}
	return &Error{Problems: append([]string(nil), r.problems...), Vars: append([]Var(nil), r.vars...)}
}
