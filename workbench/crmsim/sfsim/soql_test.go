package sfsim

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name string
		soql string
		want *Query
		code string
	}{
		{"users", "SELECT Id, Email, IsActive FROM User ORDER BY Id", &Query{Fields: []string{"Id", "Email", "IsActive"}, Object: "User", OrderBy: "Id", Limit: -1}, ""},
		{"lowercase_keywords", "select id from contact where email = 'a@b.c' limit 10",
			&Query{Fields: []string{"id"}, Object: "contact", Where: []Cond{{Field: "email", Op: "=", Values: []Literal{{Kind: "string", Text: "a@b.c"}}}}, Limit: 10}, ""},
		{"in_list", "SELECT Id FROM Lead WHERE Email IN ('a@b.c', 'O\\'Neil@x.y') ORDER BY Id DESC",
			&Query{Fields: []string{"Id"}, Object: "Lead", Where: []Cond{{Field: "Email", Op: "IN", Values: []Literal{{Kind: "string", Text: "a@b.c"}, {Kind: "string", Text: "O'Neil@x.y"}}}}, OrderBy: "Id", Desc: true, Limit: -1}, ""},
		{"and_bool_null", "SELECT Id FROM User WHERE IsActive = true AND Email != null",
			&Query{Fields: []string{"Id"}, Object: "User", Where: []Cond{{Field: "IsActive", Op: "=", Values: []Literal{{Kind: "bool", Text: "true"}}}, {Field: "Email", Op: "!=", Values: []Literal{{Kind: "null"}}}}, Limit: -1}, ""},
		{"escapes", `SELECT Id FROM User WHERE LastName = 'a\\b\"c\nd'`,
			&Query{Fields: []string{"Id"}, Object: "User", Where: []Cond{{Field: "LastName", Op: "=", Values: []Literal{{Kind: "string", Text: "a\\b\"c\nd"}}}}, Limit: -1}, ""},
		{"no_select", "Id FROM User", nil, "MALFORMED_QUERY"},
		{"no_fields", "SELECT FROM User", nil, "MALFORMED_QUERY"},
		{"unterminated", "SELECT Id FROM User WHERE Email = 'x", nil, "MALFORMED_QUERY"},
		{"bad_escape", `SELECT Id FROM User WHERE Email = '\q'`, nil, "MALFORMED_QUERY"},
		{"trailing", "SELECT Id FROM User LIMIT 5 junk", nil, "MALFORMED_QUERY"},
		{"bad_limit", "SELECT Id FROM User LIMIT x", nil, "MALFORMED_QUERY"},
		{"in_unclosed", "SELECT Id FROM User WHERE Id IN ('a'", nil, "MALFORMED_QUERY"},
		{"or_unsupported", "SELECT Id FROM User WHERE Email = 'a' OR Email = 'b'", nil, "MALFORMED_QUERY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuery(tt.soql)
			if tt.code != "" {
				var qe *QueryError
				if !errors.As(err, &qe) || qe.Code != tt.code {
					t.Fatalf("err %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"SELECT Id, Email, IsActive, FirstName, LastName, UserType FROM User ORDER BY Id",
		"SELECT Id, OwnerId FROM Contact WHERE Email = 'ada@example.com'",
		"SELECT Id FROM Lead WHERE Email IN ('a@b.c', 'd\\'e@f.g') LIMIT 200",
		"select id from user where isactive = false",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("error %v is not a QueryError", err)
			}
			return
		}
		if len(q.Fields) == 0 || q.Object == "" {
			t.Fatalf("parsed %q into %+v", s, q)
		}
	})
}
