package mailer

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseURL checks that ParseURL never panics and that neither its errors nor a parsed
// server's String reveal the password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"smtp://localhost", "smtp://user:p%40ss@smtp.example.com:587?starttls=required",
		"smtps://u:pw@h", "smtp://u:pw@[::1]:2525?starttls=none&insecure_skip_verify=true&auth=login&helo=x",
		"smtp://h?tls=1", "smtp://h:0", "smtp://u:se cret@h\x7f", "smtp://%zz",
	} {
		f.Add(s, "Zq7secret")
	}
	f.Fuzz(func(t *testing.T, raw, password string) {
		if len(password) < 6 || strings.ContainsAny(password, "%/@:?#[]") {
			return
		}
		raw = strings.Replace(raw, "pw", password, 1)
		s, err := ParseURL(raw)
		if err != nil {
			// Only the userinfo is secret; a password-like string elsewhere (host, query) may be
			// quoted in the error to help the operator.
			if u, perr := url.Parse(raw); perr == nil && u.User != nil {
				if pw, _ := u.User.Password(); pw == password && !strings.Contains(u.Host+u.RawQuery+u.Scheme, password) &&
					strings.Contains(err.Error(), password) {
					t.Errorf("ParseURL(%q) error %q reveals the password", raw, err)
				}
			}
			return
		}
		// The password counts as revealed only when it occurs nowhere but in the userinfo: a host
		// of "000000…" with the password "000000" is printed because it is the host.
		if s.Password == password && strings.Count(raw, password) == 1 && strings.Contains(s.String(), password) {
			t.Errorf("String() %q reveals the password", s.String())
		}
		if s.Port < 1 || s.Port > 65535 || s.Host == "" {
			t.Errorf("parsed %q into %+v", raw, s)
		}
	})
}
