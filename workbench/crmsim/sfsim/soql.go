package sfsim

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Query is a parsed statement of the SOQL subset the sandbox understands:
//
//	SELECT f1, f2, … FROM <User|Contact|Lead|Group>
//	  [WHERE <cond> [AND <cond>]…]   cond: Field = literal | Field != literal | Field IN (literal, …)
//	  [ORDER BY Field [ASC|DESC]]
//	  [LIMIT n]
//
// Keywords are case-insensitive; string literals use single quotes with SOQL's backslash escapes.
type Query struct {
	Fields  []string
	Object  string
	Where   []Cond
	OrderBy string
	Desc    bool
	Limit   int // -1 when absent
}

// Cond is one WHERE condition.
type Cond struct {
	Field  string
	Op     string // "=", "!=", "IN"
	Values []Literal
}

// Literal is a SOQL literal: a quoted string, true/false, null or a number.
type Literal struct {
	Kind string // "string", "bool", "null", "number"
	Text string
}

// QueryError is a SOQL error with the Salesforce errorCode to report.
type QueryError struct {
	Code    string
	Message string
}

func (e *QueryError) Error() string { return e.Code + ": " + e.Message }

func malformed(format string, args ...any) error {
	return &QueryError{Code: "MALFORMED_QUERY", Message: fmt.Sprintf(format, args...)}
}

type token struct {
	kind string // "ident", "string", "punct", "number"
	text string
	pos  int
}

func tokenize(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ',' || c == '(' || c == ')' || c == '=':
			out = append(out, token{kind: "punct", text: string(c), pos: i})
			i++
		case c == '!' && i+1 < len(s) && s[i+1] == '=':
			out = append(out, token{kind: "punct", text: "!=", pos: i})
			i += 2
		case c == '<' && i+1 < len(s) && s[i+1] == '>':
			out = append(out, token{kind: "punct", text: "!=", pos: i})
			i += 2
		case c == '\'':
			start := i
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == '\\' {
					if i+1 >= len(s) {
						return nil, malformed("unterminated escape at %d", i)
					}
					switch e := s[i+1]; e {
					case '\'', '"', '\\':
						b.WriteByte(e)
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case 'b':
						b.WriteByte('\b')
					case 'f':
						b.WriteByte('\f')
					case '_', '%':
						// Only meaningful in LIKE; kept escaped as Salesforce does.
						b.WriteByte('\\')
						b.WriteByte(e)
					default:
						return nil, malformed("invalid escape sequence \\%c at %d", e, i)
					}
					i += 2
					continue
				}
				if ch == '\'' {
					closed = true
					i++
					break
				}
				b.WriteByte(ch)
				i++
			}
			if !closed {
				return nil, malformed("unterminated string literal at %d", start)
			}
			out = append(out, token{kind: "string", text: b.String(), pos: start})
		case c == '-' || c >= '0' && c <= '9':
			start := i
			i++
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
				i++
			}
			out = append(out, token{kind: "number", text: s[start:i], pos: start})
		case c == '_' || unicode.IsLetter(rune(c)):
			start := i
			for i < len(s) && (s[i] == '_' || s[i] == '.' || s[i] >= '0' && s[i] <= '9' || unicode.IsLetter(rune(s[i]))) {
				i++
			}
			out = append(out, token{kind: "ident", text: s[start:i], pos: start})
		default:
			return nil, malformed("unexpected character %q at %d", c, i)
		}
	}
	return out, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() (token, bool) {
	if p.i >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.i], true
}

func (p *parser) keyword(kw string) bool {
	t, ok := p.peek()
	if ok && t.kind == "ident" && strings.EqualFold(t.text, kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) punct(s string) bool {
	t, ok := p.peek()
	if ok && t.kind == "punct" && t.text == s {
		p.i++
		return true
	}
	return false
}

func (p *parser) ident(what string) (string, error) {
	t, ok := p.peek()
	if !ok {
		return "", malformed("unexpected end of query, expecting %s", what)
	}
	if t.kind != "ident" || isReserved(t.text) {
		return "", malformed("unexpected token: '%s' at %d, expecting %s", t.text, t.pos, what)
	}
	p.i++
	return t.text, nil
}

func isReserved(s string) bool {
	switch strings.ToUpper(s) {
	case "SELECT", "FROM", "WHERE", "ORDER", "BY", "LIMIT", "AND", "OR", "IN", "ASC", "DESC", "NOT":
		return true
	}
	return false
}

func (p *parser) literal() (Literal, error) {
	t, ok := p.peek()
	if !ok {
		return Literal{}, malformed("unexpected end of query, expecting a value")
	}
	p.i++
	switch t.kind {
	case "string":
		return Literal{Kind: "string", Text: t.text}, nil
	case "number":
		return Literal{Kind: "number", Text: t.text}, nil
	case "ident":
		switch strings.ToLower(t.text) {
		case "true", "false":
			return Literal{Kind: "bool", Text: strings.ToLower(t.text)}, nil
		case "null":
			return Literal{Kind: "null"}, nil
		}
	}
	return Literal{}, malformed("unexpected token: '%s' at %d, expecting a value", t.text, t.pos)
}

// ParseQuery parses a statement of the supported SOQL subset.
func ParseQuery(soql string) (*Query, error) {
	toks, err := tokenize(soql)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q := &Query{Limit: -1}
	if !p.keyword("SELECT") {
		return nil, malformed("expecting SELECT")
	}
	for {
		f, err := p.ident("a field name")
		if err != nil {
			return nil, err
		}
		q.Fields = append(q.Fields, f)
		if !p.punct(",") {
			break
		}
	}
	if !p.keyword("FROM") {
		return nil, malformed("expecting FROM")
	}
	if q.Object, err = p.ident("an object name"); err != nil {
		return nil, err
	}
	if p.keyword("WHERE") {
		for {
			var c Cond
			if c.Field, err = p.ident("a field name"); err != nil {
				return nil, err
			}
			switch {
			case p.punct("="):
				c.Op = "="
			case p.punct("!="):
				c.Op = "!="
			case p.keyword("IN"):
				c.Op = "IN"
			default:
				return nil, malformed("expecting =, != or IN after %s", c.Field)
			}
			if c.Op == "IN" {
				if !p.punct("(") {
					return nil, malformed("expecting ( after IN")
				}
				for {
					l, err := p.literal()
					if err != nil {
						return nil, err
					}
					c.Values = append(c.Values, l)
					if p.punct(")") {
						break
					}
					if !p.punct(",") {
						return nil, malformed("expecting , or ) in IN list")
					}
				}
			} else {
				l, err := p.literal()
				if err != nil {
					return nil, err
				}
				c.Values = []Literal{l}
			}
			q.Where = append(q.Where, c)
			if !p.keyword("AND") {
				break
			}
		}
	}
	if p.keyword("ORDER") {
		if !p.keyword("BY") {
			return nil, malformed("expecting BY after ORDER")
		}
		if q.OrderBy, err = p.ident("a field name"); err != nil {
			return nil, err
		}
		if p.keyword("DESC") {
			q.Desc = true
		} else {
			p.keyword("ASC")
		}
	}
	if p.keyword("LIMIT") {
		t, ok := p.peek()
		if !ok || t.kind != "number" {
			return nil, malformed("expecting a number after LIMIT")
		}
		n, err := strconv.Atoi(t.text)
		if err != nil || n < 0 {
			return nil, malformed("invalid LIMIT %q", t.text)
		}
		p.i++
		q.Limit = n
	}
	if t, ok := p.peek(); ok {
		return nil, malformed("unexpected token: '%s' at %d", t.text, t.pos)
	}
	return q, nil
}
