package webhook

import (
	"net/url"
	"testing"
)

// TestQueryValueIsParseQueryGet: the shared key is read from the query without url.ParseQuery's
// map (issue 18), with ParseQuery's answer for every form of query.
func TestQueryValueIsParseQueryGet(t *testing.T) {
	for _, q := range []string{
		"", "key=abc", "key=", "key", "a=1&key=abc", "key=abc&key=def", "key=a%2Bb", "key=a+b", "k%65y=abc",
		"key=%zz&key=good", "key=a;b&key=c", "x=1;key=abc", "&&key=abc&&", "=abc&key=d", "key=abc=def",
		"KEY=abc", "key%=1&key=2", "key=%41%42", "a=%zz", ";", "key=abc&",
	} {
		vals, _ := url.ParseQuery(q)
		if got, want := queryValue(q, "key"), vals.Get("key"); got != want {
			t.Errorf("query %q: %q, want %q (url.ParseQuery)", q, got, want)
		}
	}
}
