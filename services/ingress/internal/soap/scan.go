package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// errUnsupported marks input outside the fast scanner's subset that encoding/xml may still accept
// (names with non-ASCII characters). Parse hands such bodies to the reference decoder.
var errUnsupported = errors.New("outside the fast scanner's subset")

// scanner is a streaming tokenizer for the XML that Outbound Messages use: elements, attributes,
// namespace declarations with any prefixes, text with the five predefined entities and numeric
// character references, CDATA, comments, processing instructions and self-closing tags. It
// reproduces encoding/xml's strict-mode tokens exactly — the same name translation (unknown
// prefixes stay as they are, "xml" maps to its URI, the default namespace applies to element
// names only), the same \r and \r\n folding, the same character-range checks — and refuses
// everything else, DOCTYPE and other directives included. It works on the body in place: text
// without entities or carriage returns is not copied, and names and namespace URIs seen in
// Outbound Messages are interned rather than allocated.
//
// Its errors only mean "not accepted here": Parse then lets the reference decoder decide.
type scanner struct {
	b []byte
	i int
	// open holds the raw qualified names of open elements (for matching end tags) and the length
	// of ns before each one's declarations.
	open []openElem
	ns   []nsBinding
	// byPrefix indexes ns once it holds more than a few bindings: the innermost binding of each
	// prefix, with nsPrev[i] the binding ns[i] shadows (-1 for none), so a lookup costs the same
	// however many declarations are in scope (issue 13 item 6).
	byPrefix map[string]int
	nsPrev   []int
	// pendingEnd is set after a self-closing tag: its end token comes next.
	pendingEnd bool
	attr       []xml.Attr
	buf        []byte
}

type openElem struct {
	raw   []byte
	nsLen int
}

// fastParser holds a parser over a scanner and the initial backing arrays of both, so that parsing
// a message costs one allocation for all of the parser's state (deeper or wider documents grow
// the slices as usual).
type fastParser struct {
	p      parser
	s      scanner
	open   [MaxDepth + 1]openElem
	sns    [8]nsBinding
	attr   [4]xml.Attr
	pns    [8]nsBinding
	frames [MaxDepth + 1]int
}

func newFastParser(body []byte) *parser {
	f := new(fastParser)
	f.reset(body)
	return &f.p
}

// reset prepares f for body: every field zero, the slices on their initial backing arrays (a
// deeper document's grown slices and a hostile one's prefix index are dropped).
func (f *fastParser) reset(body []byte) {
	*f = fastParser{}
	f.s = scanner{b: body, open: f.open[:0], ns: f.sns[:0], attr: f.attr[:0]}
	f.p = parser{src: &f.s, ns: f.pns[:0], frames: f.frames[:0]}
}

// fastParsers holds parser states between messages: a state is 1.7 KB, allocated per message
// before (issue 18). Nothing Parse returns refers to a state: the message's strings are copies.
var fastParsers = sync.Pool{New: func() any { return new(fastParser) }}

// parseFastPooled is parseFast's work on a pooled parser state.
func parseFastPooled(body []byte) (*Message, error) {
	f := fastParsers.Get().(*fastParser)
	f.reset(body)
	m, err := f.p.message()
	f.reset(nil)
	fastParsers.Put(f)
	return m, err
}

var errScanSyntax = errors.New("malformed XML (fast scanner)")

func (s *scanner) next() (token, error) {
	if s.pendingEnd {
		s.pendingEnd = false
		s.pop()
		return token{kind: tokEnd}, nil
	}
	for {
		if s.i >= len(s.b) {
			if len(s.open) != 0 {
				return token{}, errScanSyntax
			}
			return token{}, io.EOF
		}
		if s.b[s.i] != '<' {
			t, err := s.chars(modeText, 0)
			if err != nil {
				return token{}, err
			}
			return token{kind: tokText, text: t}, nil
		}
		if s.i+1 >= len(s.b) {
			return token{}, errScanSyntax
		}
		switch s.b[s.i+1] {
		case '/':
			return s.endTag()
		case '?':
			if err := s.procInst(); err != nil {
				return token{}, err
			}
		case '!':
			rest := s.b[s.i+2:]
			switch {
			case bytes.HasPrefix(rest, []byte("--")):
				body := rest[2:]
				k := bytes.Index(body, []byte("--"))
				if k < 0 || k+2 >= len(body) || body[k+2] != '>' {
					return token{}, errScanSyntax
				}
				s.i += 2 + 2 + k + 3
			case bytes.HasPrefix(rest, []byte("[CDATA[")):
				s.i += 2 + 7
				t, err := s.chars(modeCDATA, 0)
				if err != nil {
					return token{}, err
				}
				return token{kind: tokText, text: t}, nil
			default:
				return token{}, ErrDoctype
			}
		default:
			return s.startTag()
		}
	}
}

func (s *scanner) pop() {
	top := s.open[len(s.open)-1]
	s.open = s.open[:len(s.open)-1]
	if s.byPrefix != nil {
		for i := len(s.ns) - 1; i >= top.nsLen; i-- {
			if p := s.nsPrev[i]; p >= 0 {
				s.byPrefix[s.ns[i].prefix] = p
			} else {
				delete(s.byPrefix, s.ns[i].prefix)
			}
		}
		s.nsPrev = s.nsPrev[:top.nsLen]
	}
	s.ns = s.ns[:top.nsLen]
}

// linearScope is how many bindings a lookup scans before the scanner indexes them by prefix.
const linearScope = 8

// declare brings a namespace binding into scope.
func (s *scanner) declare(prefix, uri string) {
	s.ns = append(s.ns, nsBinding{prefix, uri})
	if s.byPrefix == nil {
		if len(s.ns) <= linearScope {
			return
		}
		s.byPrefix = make(map[string]int, 2*linearScope)
		s.nsPrev = s.nsPrev[:0]
		for i, b := range s.ns {
			p, ok := s.byPrefix[b.prefix]
			if !ok {
				p = -1
			}
			s.nsPrev = append(s.nsPrev, p)
			s.byPrefix[b.prefix] = i
		}
		return
	}
	p, ok := s.byPrefix[prefix]
	if !ok {
		p = -1
	}
	s.nsPrev = append(s.nsPrev, p)
	s.byPrefix[prefix] = len(s.ns) - 1
}

// lookup returns the URI bound to prefix in scope.
func (s *scanner) lookup(prefix []byte) (string, bool) {
	if s.byPrefix != nil {
		i, ok := s.byPrefix[string(prefix)]
		if !ok {
			return "", false
		}
		return s.ns[i].uri, true
	}
	for i := len(s.ns) - 1; i >= 0; i-- {
		if s.ns[i].prefix == string(prefix) {
			return s.ns[i].uri, true
		}
	}
	return "", false
}

// name reads a name at s.i the way encoding/xml does (name bytes, then the first-character rule),
// restricted to ASCII.
func (s *scanner) name() ([]byte, error) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= utf8.RuneSelf {
			return nil, errUnsupported
		}
		if !isNameByte(c) {
			break
		}
		s.i++
	}
	n := s.b[start:s.i]
	if len(n) == 0 {
		return nil, errScanSyntax
	}
	if c := n[0]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':') {
		return nil, errScanSyntax
	}
	return n, nil
}

func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}

// splitName splits a qualified name like encoding/xml's nsname: one colon with text on both
// sides separates prefix and local name; no colon, or one at either end, leaves it whole; two or
// more colons are an error.
func splitName(n []byte) (prefix, local []byte, err error) {
	k := bytes.IndexByte(n, ':')
	if k < 0 {
		return nil, n, nil
	}
	if bytes.IndexByte(n[k+1:], ':') >= 0 {
		return nil, nil, errScanSyntax
	}
	if k == 0 || k == len(n)-1 {
		return nil, n, nil
	}
	return n[:k], n[k+1:], nil
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\r', '\n', '\t':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) endTag() (token, error) {
	s.i += 2
	n, err := s.name()
	if err != nil {
		return token{}, err
	}
	if _, _, err := splitName(n); err != nil {
		return token{}, err
	}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '>' {
		return token{}, errScanSyntax
	}
	s.i++
	if len(s.open) == 0 || !bytes.Equal(s.open[len(s.open)-1].raw, n) {
		return token{}, errScanSyntax
	}
	s.pop()
	return token{kind: tokEnd}, nil
}

func (s *scanner) procInst() error {
	s.i += 2
	target, err := s.name()
	if err != nil {
		return err
	}
	s.space()
	k := bytes.Index(s.b[s.i:], []byte("?>"))
	if k < 0 {
		return errScanSyntax
	}
	data := s.b[s.i : s.i+k]
	s.i += k + 2
	if string(target) == "xml" {
		content := string(data)
		if v := procInstParam("version", content); v != "" && v != "1.0" {
			return errScanSyntax
		}
		if enc := procInstParam("encoding", content); enc != "" && !strings.EqualFold(enc, "utf-8") {
			return errScanSyntax
		}
	}
	return nil
}

// procInstParam is encoding/xml's procInst: the value of param="…" or param='…' in s.
func procInstParam(param, s string) string {
	param = param + "="
	lenp := len(param)
	i := 0
	var sep byte
	for i < len(s) {
		sub := s[i:]
		k := strings.Index(sub, param)
		if k < 0 || lenp+k >= len(sub) {
			return ""
		}
		i += lenp + k + 1
		if c := sub[lenp+k]; c == '\'' || c == '"' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], sep)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}

type rawAttr struct {
	prefix, local []byte
	value         string
}

func (s *scanner) startTag() (token, error) {
	s.i++
	raw, err := s.name()
	if err != nil {
		return token{}, err
	}
	prefix, local, err := splitName(raw)
	if err != nil {
		return token{}, err
	}
	var raws [8]rawAttr
	attrs := raws[:0]
	// Over the caps, the rest of the tag is still scanned (so that a syntax error is the
	// reference decoder's to report) but nothing more is kept.
	count, decls := 0, 0
	empty := false
	for {
		s.space()
		if s.i >= len(s.b) {
			return token{}, errScanSyntax
		}
		c := s.b[s.i]
		if c == '/' {
			if s.i+1 >= len(s.b) || s.b[s.i+1] != '>' {
				return token{}, errScanSyntax
			}
			s.i += 2
			empty = true
			break
		}
		if c == '>' {
			s.i++
			break
		}
		an, err := s.name()
		if err != nil {
			return token{}, err
		}
		ap, al, err := splitName(an)
		if err != nil {
			return token{}, err
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '=' {
			return token{}, errScanSyntax
		}
		s.i++
		s.space()
		if s.i >= len(s.b) || (s.b[s.i] != '"' && s.b[s.i] != '\'') {
			return token{}, errScanSyntax
		}
		q := s.b[s.i]
		s.i++
		v, err := s.chars(modeAttr, q)
		if err != nil {
			return token{}, err
		}
		count++
		if string(ap) == "xmlns" || ap == nil && string(al) == "xmlns" {
			decls++
		}
		if count <= MaxAttributes && decls <= MaxNamespaceDeclarations {
			attrs = append(attrs, rawAttr{prefix: ap, local: al, value: intern(v)})
		}
	}
	if err := checkAttributes(count, decls); err != nil {
		return token{}, err
	}
	// Declarations first: they apply to the element's own name and attributes.
	s.open = append(s.open, openElem{raw: raw, nsLen: len(s.ns)})
	for _, a := range attrs {
		if string(a.prefix) == "xmlns" {
			s.declare(intern(a.local), a.value)
		} else if a.prefix == nil && string(a.local) == "xmlns" {
			s.declare("", a.value)
		}
	}
	s.attr = s.attr[:0]
	for _, a := range attrs {
		s.attr = append(s.attr, xml.Attr{Name: xml.Name{Space: s.translate(a.prefix, a.local, false), Local: intern(a.local)}, Value: a.value})
	}
	t := token{kind: tokStart, name: xml.Name{Space: s.translate(prefix, local, true), Local: intern(local)}, attr: s.attr}
	s.pendingEnd = empty
	return t, nil
}

// translate is encoding/xml's Decoder.translate with DefaultSpace "".
func (s *scanner) translate(prefix, local []byte, isElementName bool) string {
	switch {
	case string(prefix) == "xmlns":
		return "xmlns"
	case prefix == nil && !isElementName:
		return ""
	case string(prefix) == "xml":
		return "http://www.w3.org/XML/1998/namespace"
	case prefix == nil && string(local) == "xmlns":
		return ""
	}
	if uri, ok := s.lookup(prefix); ok {
		return uri
	}
	if prefix == nil {
		return ""
	}
	return intern(prefix)
}

const (
	modeText = iota
	modeAttr
	modeCDATA
)

// chars reads character data at s.i: text up to '<' or the end (modeText), an attribute value up
// to its closing quote (modeAttr), or a CDATA section up to "]]>" (modeCDATA), and leaves s.i after
// it. It applies encoding/xml's rules: "]]>" is refused in text, '<' in attribute values; entity
// references (not in CDATA) must be one of the five predefined ones or a numeric reference ending
// in ';'; \r\n and \r become \n; every resulting character must be in XML's character range.
func (s *scanner) chars(mode int, quote byte) ([]byte, error) {
	b := s.b
	start := s.i
	end, next := -1, -1
	plain := true
	for i := start; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '<' && mode == modeText:
			end, next = i, i
		case c == '<' && mode == modeAttr:
			return nil, errScanSyntax
		case c == quote && mode == modeAttr:
			end, next = i, i+1
		case c == '>' && mode != modeAttr && i-start >= 2 && b[i-1] == ']' && b[i-2] == ']':
			if mode == modeText {
				return nil, errScanSyntax
			}
			end, next = i-2, i+1
		case c == '&' && mode != modeCDATA, c == '\r':
			plain = false
		case c < 0x20 && c != '\t' && c != '\n':
			return nil, errScanSyntax
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 || !inCharRange(r) {
				return nil, errScanSyntax
			}
			i += n - 1
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		if mode != modeText {
			return nil, errScanSyntax
		}
		end, next = len(b), len(b)
	}
	s.i = next
	raw := b[start:end]
	if plain {
		return raw, nil
	}
	out := s.buf[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\r':
			out = append(out, '\n')
		case c == '\n' && i > 0 && raw[i-1] == '\r':
			// \r\n: the \n was written for the \r.
		case c == '&' && mode != modeCDATA:
			semi := bytes.IndexByte(raw[i+1:], ';')
			if semi < 0 {
				return nil, errScanSyntax
			}
			ref := raw[i+1 : i+1+semi]
			i += 1 + semi
			if len(ref) > 0 && ref[0] == '#' {
				r, ok := charRef(ref[1:])
				if !ok {
					return nil, errScanSyntax
				}
				out = utf8.AppendRune(out, r)
				continue
			}
			switch string(ref) {
			case "lt":
				out = append(out, '<')
			case "gt":
				out = append(out, '>')
			case "amp":
				out = append(out, '&')
			case "apos":
				out = append(out, '\'')
			case "quot":
				out = append(out, '"')
			default:
				return nil, errScanSyntax
			}
		default:
			out = append(out, c)
		}
	}
	s.buf = out
	return out, nil
}

// charRef decodes the digits of &#…; or &#x…; as encoding/xml does: a surrogate becomes U+FFFD,
// anything outside XML's character range is refused.
func charRef(d []byte) (rune, bool) {
	base := 10
	if len(d) > 0 && d[0] == 'x' {
		base, d = 16, d[1:]
	}
	if len(d) == 0 {
		return 0, false
	}
	for _, c := range d {
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(d), base, 64)
	if err != nil || n > utf8.MaxRune {
		return 0, false
	}
	r := rune(n)
	if !utf8.ValidRune(r) {
		r = utf8.RuneError
	}
	return r, inCharRange(r)
}

// inCharRange is XML's Char production, as encoding/xml checks it.
func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// interned holds the names, prefixes, namespace URIs and attribute values of Outbound Messages, so
// scanning them allocates nothing.
var interned = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		NSEnvelope, NSOutbound, NSSObject, NSXSI, "http://www.w3.org/2001/XMLSchema",
		"soapenv", "soap", "SOAP-ENV", "env", "xsd", "xsi", "sf", "ns", "ns1", "ns2", "xmlns",
		"Envelope", "Header", "Body", "notifications", "OrganizationId", "ActionId", "SessionId",
		"EnterpriseUrl", "PartnerUrl", "Notification", "Id", "sObject", "type", "nil",
		"sf:Contact", "sf:Lead", "sf:User", "sf:Account", "true", "false", "1", "0",
		"OwnerId", "Email", "FirstName", "LastName", "IsActive", "UserType", "Username",
		"LastModifiedById", "LastModifiedDate", "CreatedById", "CreatedDate", "SystemModstamp",
	} {
		m[s] = s
	}
	return m
}()

func intern(b []byte) string {
	if s, ok := interned[string(b)]; ok {
		return s
	}
	return string(b)
}
