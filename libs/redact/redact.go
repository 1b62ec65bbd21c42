// Package redact makes URLs safe to print: start-up errors, logs and problem lists name the URL an
// operator configured without the credentials in it (issue 13 item 11). It is the one helper every
// service uses for that, so that no caller has to remember which parts of a URL are secret.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces a secret.
const Mask = "xxxxx"

// secretParams are query parameter names (lower case) whose values are credentials.
var secretParams = []string{"password", "passwd", "pass", "pwd", "secret", "token", "key", "auth", "credential", "sig", "signature", "apikey", "api_key", "access_token", "client_secret"}

// URL returns s with every credential masked: the password of user:password, a user name given
// without a password (NATS and others take a bare token there), and the values of query parameters
// that name a secret (key, token, password, …). A comma-separated list of URLs (NATS_URL) is
// redacted URL by URL. Text that does not parse as a URL is still cut at its authority: whatever
// precedes the last '@' of it is masked, so a malformed URL is never printed with its password.
func URL(s string) string {
	if strings.Contains(s, ",") {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			parts[i] = URL(p)
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Opaque != "" {
		return unparsed(s)
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else {
			u.User = url.User(Mask)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if isSecretParam(k) {
				for i := range q[k] {
					q[k][i] = Mask
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range secretParams {
		if k == s || strings.HasSuffix(k, "_"+s) || strings.HasSuffix(k, "-"+s) {
			return true
		}
	}
	return false
}

// unparsed masks the user information and the query of text url.Parse refused: everything between
// "scheme://" and the last '@' of the authority, and everything after a '?'.
func unparsed(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	} else {
		scheme += "://"
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	// A malformed URL may carry '/' or '?' inside its password; the last '@' anywhere before the
	// query decides where the host begins.
	if at := strings.LastIndex(strings.SplitN(rest, "?", 2)[0], "@"); at >= 0 {
		authority, path = Mask+rest[at:], ""
		if i := strings.IndexAny(rest[at:], "/?#"); i >= 0 {
			authority, path = Mask+rest[at:at+i], rest[at+i:]
		}
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i+1] + Mask
	}
	return scheme + authority + path
}

// Error returns err with every occurrence of rawURL (and of each URL of a comma-separated list) in
// its message replaced by the redacted form, for errors of libraries that quote the URL they were
// given (url.Error does). errors.Is and errors.As still see err.
func Error(err error, rawURL string) error {
	if err == nil || rawURL == "" {
		return err
	}
	msg := err.Error()
	for _, u := range append([]string{rawURL}, strings.Split(rawURL, ",")...) {
		if u = strings.TrimSpace(u); u != "" {
			msg = strings.ReplaceAll(msg, u, URL(u))
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
