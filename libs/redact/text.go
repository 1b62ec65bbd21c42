package redact

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// MaxCRMMessage is how many characters of a CRM's error message reach an error, a run, a report
// or an email (issue 13 item 1): enough for "INVALID_CROSS_REFERENCE_KEY: invalid cross reference
// id", never a page of whatever a host answered.
const MaxCRMMessage = 200

// Text returns s as one short printable line: invalid UTF-8, control and formatting characters
// become spaces, runs of spaces one space, and it is cut to max characters ("…" marks a cut).
// Text from another system goes through it before it reaches an error that is stored or sent.
func Text(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			b.WriteString("…")
			return b.String()
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Code returns an error code from another system if it looks like one (letters, digits, "_",
// ".", "-", at most 64), else "".
func Code(s string) string {
	if len(s) == 0 || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return ""
		}
	}
	return s
}

// tokenError is a token endpoint's refusal without its body.
type tokenError struct {
	status            int
	code, description string
	re                *oauth2.RetrieveError
}

func (e *tokenError) Error() string {
	s := fmt.Sprintf("oauth2: token endpoint answered HTTP %d", e.status)
	if t := http.StatusText(e.status); t != "" {
		s += " " + t
	}
	if e.code != "" {
		s += ": " + e.code
	}
	if e.description != "" {
		s += ": " + e.description
	}
	return s
}

func (e *tokenError) Unwrap() error { return e.re }

// TokenError returns err with every *oauth2.RetrieveError in it replaced by an error whose text
// is the HTTP status and the OAuth error code and description, shortened: x/oauth2 prints a
// refusal's whole body and status line, which a hostile token endpoint chooses. errors.As still
// finds the RetrieveError (its Body emptied), so retry classification is unchanged.
func TokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	re.Body = nil
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	return &tokenError{status: status, code: Code(re.ErrorCode), description: Text(re.ErrorDescription, MaxCRMMessage), re: re}
}
