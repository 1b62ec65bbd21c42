// Package soap parses Salesforce Outbound Messages (SOAP 1.1 notifications() calls) and builds the
// acknowledgement and fault envelopes Salesforce expects (docs/crm-protocols.md#outbound-messages).
//
// Elements are matched by namespace URI and local name, never by prefix: senders choose their
// prefixes. The parser is hardened for a public endpoint: it refuses DOCTYPE and entity declarations,
// invalid UTF-8, non-UTF-8 encodings, nesting deeper than MaxDepth and more than MaxNotifications
// notifications, and every refusal is a typed error (see Reason).
package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/ownersync/ownersync/libs/sfid"
)

// Namespace URIs of an Outbound Message (docs/crm-protocols.md#outbound-message-format).
const (
	NSEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"
	NSOutbound = "http://soap.sforce.com/2005/09/outbound"
	NSSObject  = "urn:sobject.enterprise.soap.sforce.com"
	NSXSI      = "http://www.w3.org/2001/XMLSchema-instance"
)

// MaxNotifications is the most notifications one message may carry
// (docs/crm-protocols.md#outbound-message-delivery).
const MaxNotifications = 100

// MaxDepth caps element nesting. A real message nests five levels deep
// (Envelope/Body/notifications/Notification/sObject/field); the cap leaves room for headers.
const MaxDepth = 16

// MaxAttributes caps the attributes of one element, namespace declarations included, and
// MaxNamespaceDeclarations the declarations among them. A real message has at most four on an
// element (the envelope's); the caps keep one hostile element from costing more than an ordinary
// one (issue 13 item 6).
const (
	MaxAttributes            = 32
	MaxNamespaceDeclarations = 16
)

// Object types ownersync publishes events for. Notifications of other types are returned in
// Message.Ignored.
const (
	Contact = "Contact"
	Lead    = "Lead"
	User    = "User"
)

// Sentinel errors. Every error Parse returns wraps exactly one of them; Reason maps them to a short
// label for metrics and logs.
var (
	ErrEmpty                = errors.New("empty body")
	ErrInvalidUTF8          = errors.New("body is not valid UTF-8")
	ErrDoctype              = errors.New("DOCTYPE and entity declarations are not allowed")
	ErrTooDeep              = errors.New("XML nesting too deep")
	ErrSyntax               = errors.New("malformed XML")
	ErrNotOutboundMessage   = errors.New("not a SOAP 1.1 outbound message envelope")
	ErrNoNotifications      = errors.New("message carries no notifications")
	ErrTooManyNotifications = errors.New("message carries more than 100 notifications")
	ErrInvalid              = errors.New("invalid outbound message")
	ErrTooManyAttributes    = errors.New("element with too many attributes")
	ErrTooManyNamespaces    = errors.New("element with too many namespace declarations")
)

// Reason returns a short, stable label for a Parse error ("doctype", "too_deep", …), or "malformed"
// for anything else.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrInvalidUTF8):
		return "invalid_utf8"
	case errors.Is(err, ErrDoctype):
		return "doctype"
	case errors.Is(err, ErrTooDeep):
		return "too_deep"
	case errors.Is(err, ErrNotOutboundMessage):
		return "wrong_envelope"
	case errors.Is(err, ErrNoNotifications):
		return "no_notifications"
	case errors.Is(err, ErrTooManyNotifications):
		return "too_many_notifications"
	case errors.Is(err, ErrTooManyAttributes):
		return "too_many_attributes"
	case errors.Is(err, ErrTooManyNamespaces):
		return "too_many_namespaces"
	}
	return "malformed"
}

// Message is one parsed notifications() call. Ids are in their 18-character form.
type Message struct {
	// OrganizationID is the sending org (00D…).
	OrganizationID string
	// ActionID is the outbound-message action (04k… in observed traffic); may be empty.
	ActionID string
	// HasSessionID reports whether a session id was sent. The id itself is a credential and is
	// deliberately not kept.
	HasSessionID  bool
	EnterpriseURL string
	PartnerURL    string
	// Notifications are the notifications for Contact, Lead and User records, in message order.
	Notifications []Notification
	// Ignored are notifications for other object types, in message order.
	Ignored []Notification
}

// Notification is one record in a message.
type Notification struct {
	// ID is the notification id, Salesforce's dedupe key for redeliveries (not the record id).
	ID     string
	Object SObject
}

// SObject is the record a notification carries: its type from xsi:type and the fields selected in
// the outbound message definition.
type SObject struct {
	// Type is the object API name, e.g. "Contact".
	Type string
	// ID is the record id (sf:Id).
	ID string
	// Fields maps each field's local name to its value. Fields that were absent are not in the map.
	Fields map[string]Field
}

// Field is one sObject field value.
type Field struct {
	// Value is the text content; id fields (names ending in "Id") holding a valid id are in their
	// 18-character form.
	Value string
	// Nil is true for xsi:nil="true".
	Nil bool
}

// Get returns the field's value and whether the field was carried with a non-nil value.
func (o SObject) Get(name string) (string, bool) {
	f, ok := o.Fields[name]
	if !ok || f.Nil {
		return "", false
	}
	return f.Value, true
}

// Has reports whether the field was carried at all, nil or not.
func (o SObject) Has(name string) bool {
	_, ok := o.Fields[name]
	return ok
}

// Bool returns a boolean field ("true"/"false"/"1"/"0"). ok is false when the field is absent or nil;
// a value that is not a boolean is an error.
func (o SObject) Bool(name string) (v, ok bool, err error) {
	s, ok := o.Get(name)
	if !ok {
		return false, false, nil
	}
	switch strings.TrimSpace(s) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, fmt.Errorf("%w: field %s is not a boolean", ErrInvalid, name)
}

// Parse parses an Outbound Message body.
//
// A fast scanner (scan.go) reads the XML subset Outbound Messages use; whenever it does not accept
// a body, the encoding/xml reference decoder parses it again and decides, so every error and its
// Reason come from the reference, and what the fast path accepts the reference accepts identically
// (FuzzParseDifferential checks both).
func Parse(body []byte) (*Message, error) {
	if err := precheck(body); err != nil {
		return nil, err
	}
	m, err := parseFastPooled(body)
	if err == nil || isLimit(err) {
		// The caps are checked alike on both paths (checkAttributes), so the reference would
		// refuse the same element with the same error, after more work.
		return m, err
	}
	return (&parser{src: newXMLSource(body)}).message()
}

// isLimit reports the per-element caps' errors, which the fast scanner decides for itself.
func isLimit(err error) bool {
	return errors.Is(err, ErrTooManyAttributes) || errors.Is(err, ErrTooManyNamespaces)
}

// checkAttributes applies the per-element caps to an element's attribute count and, among them,
// its namespace declarations. Both token sources go through it, so they refuse alike.
func checkAttributes(attrs, decls int) error {
	if attrs > MaxAttributes {
		return fmt.Errorf("%w: %d, more than %d", ErrTooManyAttributes, attrs, MaxAttributes)
	}
	if decls > MaxNamespaceDeclarations {
		return fmt.Errorf("%w: %d, more than %d", ErrTooManyNamespaces, decls, MaxNamespaceDeclarations)
	}
	return nil
}

// parseReference parses with encoding/xml only: the reference implementation.
func parseReference(body []byte) (*Message, error) {
	if err := precheck(body); err != nil {
		return nil, err
	}
	return (&parser{src: newXMLSource(body)}).message()
}

// parseFast parses with the fast scanner only; its errors are not authoritative.
func parseFast(body []byte) (*Message, error) {
	if err := precheck(body); err != nil {
		return nil, err
	}
	return newFastParser(body).message()
}

func precheck(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return ErrEmpty
	}
	if !utf8.Valid(body) {
		return ErrInvalidUTF8
	}
	return nil
}

type tokKind uint8

const (
	tokStart tokKind = iota + 1
	tokEnd
	tokText
)

// token is an element start or end or character data, with names translated to namespace URIs
// the way encoding/xml translates them. Its slices are valid until the source's next call.
type token struct {
	kind tokKind
	name xml.Name
	attr []xml.Attr
	text []byte
}

// tokenSource yields the tokens that matter: comments and processing instructions are consumed,
// a directive (DOCTYPE, ENTITY, …) is ErrDoctype, the clean end of input is io.EOF.
type tokenSource interface {
	next() (token, error)
}

// xmlSource is the reference token source: encoding/xml in strict mode.
type xmlSource struct{ d *xml.Decoder }

func newXMLSource(body []byte) *xmlSource {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	// No CharsetReader: a declaration of any encoding other than UTF-8 is refused by the decoder.
	return &xmlSource{d: d}
}

func (s *xmlSource) next() (token, error) {
	for {
		tok, err := s.d.Token()
		if err == io.EOF {
			return token{}, io.EOF
		}
		if err != nil {
			return token{}, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return token{}, ErrDoctype
		case xml.ProcInst, xml.Comment:
			// The XML declaration (its encoding is checked by the decoder) and comments carry nothing.
			continue
		case xml.StartElement:
			return token{kind: tokStart, name: t.Name, attr: t.Attr}, nil
		case xml.EndElement:
			return token{kind: tokEnd, name: t.Name}, nil
		case xml.CharData:
			return token{kind: tokText, text: t}, nil
		}
	}
}

// nsBinding is one namespace declaration in scope.
type nsBinding struct{ prefix, uri string }

type parser struct {
	src   tokenSource
	depth int
	// ns holds the prefix → URI bindings in scope, innermost last, and frames the length of ns
	// before each open element; used to resolve the QName in xsi:type (names of elements and
	// attributes arrive translated, attribute values do not).
	ns     []nsBinding
	frames []int
}

// next returns the next token that matters (elements, character data), enforcing the depth cap.
func (p *parser) next() (token, error) {
	t, err := p.src.next()
	if err != nil {
		return t, err
	}
	switch t.kind {
	case tokStart:
		// The caps first: the fast scanner refuses an element over them before the depth counts.
		decls := 0
		for _, a := range t.attr {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				decls++
			}
		}
		if err := checkAttributes(len(t.attr), decls); err != nil {
			return token{}, err
		}
		p.depth++
		if p.depth > MaxDepth {
			return token{}, ErrTooDeep
		}
		p.frames = append(p.frames, len(p.ns))
		for _, a := range t.attr {
			if a.Name.Space == "xmlns" {
				p.ns = append(p.ns, nsBinding{a.Name.Local, a.Value})
			} else if a.Name.Space == "" && a.Name.Local == "xmlns" {
				p.ns = append(p.ns, nsBinding{"", a.Value})
			}
		}
	case tokEnd:
		p.depth--
		p.ns = p.ns[:p.frames[len(p.frames)-1]]
		p.frames = p.frames[:len(p.frames)-1]
	}
	return t, nil
}

// resolve maps a QName prefix to its namespace URI in the current scope.
func (p *parser) resolve(prefix string) (string, bool) {
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	return "", false
}

// nextElement skips character data (whitespace) until the next start or end element.
func (p *parser) nextElement() (token, error) {
	for {
		t, err := p.next()
		if err != nil {
			return t, err
		}
		if t.kind != tokText {
			return t, nil
		}
		if len(bytes.TrimSpace(t.text)) != 0 {
			return token{}, fmt.Errorf("%w: unexpected text between elements", ErrInvalid)
		}
	}
}

// skip consumes the rest of an element whose start was just read.
func (p *parser) skip() error {
	for depth := 1; depth > 0; {
		t, err := p.next()
		if err != nil {
			return eofIsSyntax(err)
		}
		switch t.kind {
		case tokStart:
			depth++
		case tokEnd:
			depth--
		}
	}
	return nil
}

// text reads the character content of an element whose start was just read. hasChildren reports
// element content, which simple fields never have.
func (p *parser) text() (s string, hasChildren bool, err error) {
	var b strings.Builder
	for {
		t, err := p.next()
		if err != nil {
			return "", false, eofIsSyntax(err)
		}
		switch t.kind {
		case tokText:
			b.Write(t.text)
		case tokStart:
			if err := p.skip(); err != nil {
				return "", false, err
			}
			hasChildren = true
		case tokEnd:
			return b.String(), hasChildren, nil
		}
	}
}

func eofIsSyntax(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: unexpected end of document", ErrSyntax)
	}
	return err
}

// isNil reports xsi:nil="true" on a start token; call it before reading further tokens.
func isNil(se token) bool {
	for _, a := range se.attr {
		if a.Name.Space == NSXSI && a.Name.Local == "nil" {
			v := strings.TrimSpace(a.Value)
			return v == "true" || v == "1"
		}
	}
	return false
}

func (p *parser) message() (*Message, error) {
	// Root: soapenv:Envelope.
	tok, err := p.nextElement()
	if err == io.EOF || errors.Is(err, ErrInvalid) {
		return nil, fmt.Errorf("%w: no root element", ErrNotOutboundMessage)
	}
	if err != nil {
		return nil, err
	}
	if tok.kind != tokStart || tok.name.Space != NSEnvelope || tok.name.Local != "Envelope" {
		return nil, fmt.Errorf("%w: root element is {%s}%s", ErrNotOutboundMessage, tok.name.Space, tok.name.Local)
	}
	var msg *Message
	for {
		tok, err := p.nextElement()
		if err != nil {
			return nil, eofIsSyntax(err)
		}
		if tok.kind == tokEnd {
			break
		}
		se := tok
		if se.name.Space == NSEnvelope && se.name.Local == "Body" && msg == nil {
			if msg, err = p.body(); err != nil {
				return nil, err
			}
			continue
		}
		// soapenv:Header and anything else is skipped.
		if err := p.skip(); err != nil {
			return nil, err
		}
	}
	// Nothing but whitespace may follow the envelope.
	for {
		tok, err := p.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if tok.kind == tokText && len(bytes.TrimSpace(tok.text)) == 0 {
			continue
		}
		return nil, fmt.Errorf("%w: content after the envelope", ErrSyntax)
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: no soapenv:Body", ErrNotOutboundMessage)
	}
	return msg, nil
}

func (p *parser) body() (*Message, error) {
	var msg *Message
	for {
		tok, err := p.nextElement()
		if err != nil {
			return nil, eofIsSyntax(err)
		}
		if tok.kind == tokEnd {
			break
		}
		se := tok
		if msg != nil || se.name.Space != NSOutbound || se.name.Local != "notifications" {
			return nil, fmt.Errorf("%w: body holds {%s}%s, want {%s}notifications", ErrNotOutboundMessage, se.name.Space, se.name.Local, NSOutbound)
		}
		if msg, err = p.notifications(); err != nil {
			return nil, err
		}
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: empty soapenv:Body", ErrNotOutboundMessage)
	}
	return msg, nil
}

func (p *parser) notifications() (*Message, error) {
	m := &Message{}
	count := 0
	for {
		tok, err := p.nextElement()
		if err != nil {
			return nil, eofIsSyntax(err)
		}
		if tok.kind == tokEnd {
			break
		}
		se := tok
		if se.name.Space != NSOutbound {
			if err := p.skip(); err != nil {
				return nil, err
			}
			continue
		}
		switch se.name.Local {
		case "OrganizationId", "ActionId", "SessionId", "EnterpriseUrl", "PartnerUrl":
			nilValue := isNil(se)
			v, children, err := p.text()
			if err != nil {
				return nil, err
			}
			if children {
				return nil, fmt.Errorf("%w: %s has element content", ErrInvalid, se.name.Local)
			}
			v = strings.TrimSpace(v)
			switch se.name.Local {
			case "OrganizationId":
				id, err := sfid.To18(v)
				if err != nil || sfid.Prefix(id) != sfid.PrefixOrg {
					return nil, fmt.Errorf("%w: OrganizationId %q is not an organization id", ErrInvalid, clip(v))
				}
				m.OrganizationID = id
			case "ActionId":
				if v != "" {
					id, err := sfid.To18(v)
					if err != nil {
						return nil, fmt.Errorf("%w: ActionId %q is not an id", ErrInvalid, clip(v))
					}
					m.ActionID = id
				}
			case "SessionId":
				m.HasSessionID = !nilValue && v != ""
			case "EnterpriseUrl":
				m.EnterpriseURL = v
			case "PartnerUrl":
				m.PartnerURL = v
			}
		case "Notification":
			count++
			if count > MaxNotifications {
				return nil, ErrTooManyNotifications
			}
			n, err := p.notification()
			if err != nil {
				return nil, fmt.Errorf("notification %d: %w", count, err)
			}
			switch n.Object.Type {
			case Contact, Lead, User:
				m.Notifications = append(m.Notifications, n)
			default:
				m.Ignored = append(m.Ignored, n)
			}
		default:
			if err := p.skip(); err != nil {
				return nil, err
			}
		}
	}
	if m.OrganizationID == "" {
		return nil, fmt.Errorf("%w: no OrganizationId", ErrInvalid)
	}
	if count == 0 {
		return nil, ErrNoNotifications
	}
	return m, nil
}

func (p *parser) notification() (Notification, error) {
	var n Notification
	seenObject := false
	for {
		tok, err := p.nextElement()
		if err != nil {
			return n, eofIsSyntax(err)
		}
		if tok.kind == tokEnd {
			break
		}
		se := tok
		switch {
		case se.name.Space == NSOutbound && se.name.Local == "Id":
			v, children, err := p.text()
			if err != nil {
				return n, err
			}
			id, idErr := sfid.To18(strings.TrimSpace(v))
			if children || idErr != nil {
				return n, fmt.Errorf("%w: notification Id %q is not an id", ErrInvalid, clip(v))
			}
			n.ID = id
		case se.name.Space == NSOutbound && se.name.Local == "sObject":
			if seenObject {
				return n, fmt.Errorf("%w: more than one sObject", ErrInvalid)
			}
			seenObject = true
			if n.Object, err = p.sobject(se); err != nil {
				return n, err
			}
		default:
			if err := p.skip(); err != nil {
				return n, err
			}
		}
	}
	if n.ID == "" {
		return n, fmt.Errorf("%w: notification without Id", ErrInvalid)
	}
	if !seenObject {
		return n, fmt.Errorf("%w: notification without sObject", ErrInvalid)
	}
	return n, nil
}

func (p *parser) sobject(start token) (SObject, error) {
	o := SObject{Fields: map[string]Field{}}
	for _, a := range start.attr {
		if a.Name.Space != NSXSI || a.Name.Local != "type" {
			continue
		}
		qn := strings.TrimSpace(a.Value)
		prefix, local, found := strings.Cut(qn, ":")
		if !found {
			prefix, local = "", qn
		}
		uri, ok := p.resolve(prefix)
		if !ok || uri != NSSObject || local == "" {
			return o, fmt.Errorf("%w: sObject xsi:type %q is not in namespace %s", ErrNotOutboundMessage, clip(qn), NSSObject)
		}
		o.Type = local
	}
	if o.Type == "" {
		return o, fmt.Errorf("%w: sObject without xsi:type", ErrInvalid)
	}
	for {
		tok, err := p.nextElement()
		if err != nil {
			return o, eofIsSyntax(err)
		}
		if tok.kind == tokEnd {
			break
		}
		se := tok
		if se.name.Space != NSSObject {
			if err := p.skip(); err != nil {
				return o, err
			}
			continue
		}
		name, nilValue := se.name.Local, isNil(se)
		v, children, err := p.text()
		if err != nil {
			return o, err
		}
		if children {
			// Not a simple field (no such field in an outbound message today): leave it out.
			continue
		}
		if _, dup := o.Fields[name]; dup {
			return o, fmt.Errorf("%w: field %s appears twice", ErrInvalid, name)
		}
		f := Field{Nil: nilValue}
		if f.Nil {
			o.Fields[name] = f
			continue
		}
		f.Value = v
		if strings.HasSuffix(name, "Id") {
			if id, err := sfid.To18(strings.TrimSpace(v)); err == nil {
				f.Value = id
			}
		}
		o.Fields[name] = f
	}
	idf, ok := o.Fields["Id"]
	if !ok || idf.Nil {
		return o, fmt.Errorf("%w: %s sObject without sf:Id", ErrInvalid, o.Type)
	}
	id, err := sfid.To18(strings.TrimSpace(idf.Value))
	if err != nil {
		return o, fmt.Errorf("%w: sf:Id %q is not an id", ErrInvalid, clip(idf.Value))
	}
	o.ID = id
	return o, nil
}

// clip shortens attacker-controlled text quoted in errors.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
