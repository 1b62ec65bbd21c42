package crmsim

import (
	"net/http"
	"net/url"
	"slices"
)

// What both sandboxes' OAuth consent pages (sfsim's web-server flow, hssim's app install) share.

// RedirectAllowed reports whether redirect is an absolute http(s) URL without a fragment and,
// when the app lists redirect URLs, one of them.
func RedirectAllowed(redirect string, allowed []string) bool {
	u, err := url.Parse(redirect)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return false
	}
	return len(allowed) == 0 || slices.Contains(allowed, redirect)
}

// ConsentAnswer sends the browser back to redirect (checked with RedirectAllowed) with the
// consent's answer: code, or when code is empty the access_denied error with description; and
// state when there is one.
func ConsentAnswer(w http.ResponseWriter, r *http.Request, redirect, code, deniedDescription, state string) {
	u, _ := url.Parse(redirect)
	q := u.Query()
	if code == "" {
		q.Set("error", "access_denied")
		q.Set("error_description", deniedDescription)
	} else {
		q.Set("code", code)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
