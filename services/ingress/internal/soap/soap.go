// Package soap parses Salesforce Outbound Messages (SOAP 1.1 notifications() calls) and builds the
// acknowledgement and fault envelopes Salesforce expects (crm-protocols §1).
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

// Namespace URIs of an Outbound Message (crm-protocols §1.2).
const (
	NSEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"
	NSOutbound = "http://soap.sforce.com/2005/09/outbound"
	NSSObject  = "urn:sobject.enterprise.soap.sforce.com"
	NSXSI      = "http://www.w3.org/2001/XMLSchema-instance"
)

// MaxNotifications is the most notifications one message may carry (crm-protocols §1.6).
const MaxNotifications = 100

// MaxDepth caps element nesting. A real message nests five levels deep
// (Envelope/Body/notifications/Notification/sObject/field); the cap leaves room for headers.
const MaxDepth = 16

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
func Parse(body []byte) (*Message, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, ErrEmpty
	}
	if !utf8.Valid(body) {
		return nil, ErrInvalidUTF8
	}
	p := &parser{d: xml.NewDecoder(bytes.NewReader(body))}
	p.d.Strict = true
	// No CharsetReader: a declaration of any encoding other than UTF-8 is refused by the decoder.
	m, err := p.message()
	if err != nil {
		return nil, err
	}
	return m, nil
}

type parser struct {
	d     *xml.Decoder
	depth int
	// ns is the stack of prefix → URI bindings, one frame per open element, used to resolve the
	// QName in xsi:type (encoding/xml translates element and attribute names, not attribute values).
	ns []map[string]string
}

// next returns the next token that matters (elements, character data), enforcing the depth cap
// and refusing directives.
func (p *parser) next() (xml.Token, error) {
	for {
		tok, err := p.d.Token()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, ErrDoctype
		case xml.ProcInst, xml.Comment:
			// The XML declaration (its encoding is checked by the decoder) and comments carry nothing.
			continue
		case xml.StartElement:
			p.depth++
			if p.depth > MaxDepth {
				return nil, ErrTooDeep
			}
			// Most elements declare no namespace: their frame stays nil.
			var frame map[string]string
			for _, a := range t.Attr {
				prefix, ok := "", false
				if a.Name.Space == "xmlns" {
					prefix, ok = a.Name.Local, true
				} else if a.Name.Space == "" && a.Name.Local == "xmlns" {
					ok = true
				}
				if ok {
					if frame == nil {
						frame = map[string]string{}
					}
					frame[prefix] = a.Value
				}
			}
			p.ns = append(p.ns, frame)
			return t, nil
		case xml.EndElement:
			p.depth--
			p.ns = p.ns[:len(p.ns)-1]
			return t, nil
		case xml.CharData:
			return t, nil
		}
	}
}

// resolve maps a QName prefix to its namespace URI in the current scope.
func (p *parser) resolve(prefix string) (string, bool) {
	for i := len(p.ns) - 1; i >= 0; i-- {
		if uri, ok := p.ns[i][prefix]; ok {
			return uri, true
		}
	}
	return "", false
}

// nextElement skips character data (whitespace) until the next start or end element.
func (p *parser) nextElement() (xml.Token, error) {
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		switch tok.(type) {
		case xml.StartElement, xml.EndElement:
			return tok, nil
		case xml.CharData:
			if len(bytes.TrimSpace(tok.(xml.CharData))) != 0 {
				return nil, fmt.Errorf("%w: unexpected text between elements", ErrInvalid)
			}
		}
	}
}

// skip consumes the rest of an element whose start was just read.
func (p *parser) skip() error {
	for depth := 1; depth > 0; {
		tok, err := p.next()
		if err != nil {
			return eofIsSyntax(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
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
		tok, err := p.next()
		if err != nil {
			return "", false, eofIsSyntax(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.StartElement:
			if err := p.skip(); err != nil {
				return "", false, err
			}
			hasChildren = true
		case xml.EndElement:
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

func isNil(se xml.StartElement) bool {
	for _, a := range se.Attr {
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
	root, ok := tok.(xml.StartElement)
	if !ok || root.Name.Space != NSEnvelope || root.Name.Local != "Envelope" {
		return nil, fmt.Errorf("%w: root element is {%s}%s", ErrNotOutboundMessage, nameOf(tok).Space, nameOf(tok).Local)
	}
	var msg *Message
	for {
		tok, err := p.nextElement()
		if err != nil {
			return nil, eofIsSyntax(err)
		}
		if _, end := tok.(xml.EndElement); end {
			break
		}
		se := tok.(xml.StartElement)
		if se.Name.Space == NSEnvelope && se.Name.Local == "Body" && msg == nil {
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
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) == 0 {
			continue
		}
		return nil, fmt.Errorf("%w: content after the envelope", ErrSyntax)
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: no soapenv:Body", ErrNotOutboundMessage)
	}
	return msg, nil
}

func nameOf(tok xml.Token) xml.Name {
	switch t := tok.(type) {
	case xml.StartElement:
		return t.Name
	case xml.EndElement:
		return t.Name
	}
	return xml.Name{}
}

func (p *parser) body() (*Message, error) {
	var msg *Message
	for {
		tok, err := p.nextElement()
		if err != nil {
			return nil, eofIsSyntax(err)
		}
		if _, end := tok.(xml.EndElement); end {
			break
		}
		se := tok.(xml.StartElement)
		if msg != nil || se.Name.Space != NSOutbound || se.Name.Local != "notifications" {
			return nil, fmt.Errorf("%w: body holds {%s}%s, want {%s}notifications", ErrNotOutboundMessage, se.Name.Space, se.Name.Local, NSOutbound)
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
		if _, end := tok.(xml.EndElement); end {
			break
		}
		se := tok.(xml.StartElement)
		if se.Name.Space != NSOutbound {
			if err := p.skip(); err != nil {
				return nil, err
			}
			continue
		}
		switch se.Name.Local {
		case "OrganizationId", "ActionId", "SessionId", "EnterpriseUrl", "PartnerUrl":
			v, children, err := p.text()
			if err != nil {
				return nil, err
			}
			if children {
				return nil, fmt.Errorf("%w: %s has element content", ErrInvalid, se.Name.Local)
			}
			v = strings.TrimSpace(v)
			switch se.Name.Local {
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
				m.HasSessionID = !isNil(se) && v != ""
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
		if _, end := tok.(xml.EndElement); end {
			break
		}
		se := tok.(xml.StartElement)
		switch {
		case se.Name.Space == NSOutbound && se.Name.Local == "Id":
			v, children, err := p.text()
			if err != nil {
				return n, err
			}
			id, idErr := sfid.To18(strings.TrimSpace(v))
			if children || idErr != nil {
				return n, fmt.Errorf("%w: notification Id %q is not an id", ErrInvalid, clip(v))
			}
			n.ID = id
		case se.Name.Space == NSOutbound && se.Name.Local == "sObject":
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

func (p *parser) sobject(start xml.StartElement) (SObject, error) {
	o := SObject{Fields: map[string]Field{}}
	for _, a := range start.Attr {
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
		if _, end := tok.(xml.EndElement); end {
			break
		}
		se := tok.(xml.StartElement)
		if se.Name.Space != NSSObject {
			if err := p.skip(); err != nil {
				return o, err
			}
			continue
		}
		v, children, err := p.text()
		if err != nil {
			return o, err
		}
		if children {
			// Not a simple field (no such field in an outbound message today): leave it out.
			continue
		}
		name := se.Name.Local
		if _, dup := o.Fields[name]; dup {
			return o, fmt.Errorf("%w: field %s appears twice", ErrInvalid, name)
		}
		f := Field{Nil: isNil(se)}
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
