package hubspot

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// decodeFast decodes the plain form of a webhook batch without reflection: an array of objects
// whose keys are exactly the JSON names of Event's fields, each at most once, with strings
// without escapes, integers without fraction or exponent, booleans and nulls. ok is false for
// anything else — other spellings, escapes, mergedObjectIds, errors of any kind — and Decode then
// lets encoding/json decide. What it accepts it decodes exactly as encoding/json does.
func decodeFast(body []byte) (events []Event, ok bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || !utf8.Valid(b) {
		return nil, false
	}
	d := fastDecoder{b: b}
	if !d.byte('[') {
		return nil, false
	}
	events = make([]Event, 0, 1)
	d.space()
	if d.peek() == ']' {
		return nil, false // empty: the reference reports it
	}
	for {
		if len(events) == MaxEvents {
			return nil, false
		}
		events = append(events, Event{})
		if !d.event(&events[len(events)-1]) || events[len(events)-1].validate() != nil {
			return nil, false
		}
		d.space()
		if d.peek() == ',' {
			d.i++
			continue
		}
		break
	}
	if !d.byte(']') {
		return nil, false
	}
	d.space()
	if d.i != len(d.b) {
		return nil, false
	}
	return events, true
}

type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// byte skips white space and consumes c.
func (d *fastDecoder) byte(c byte) bool {
	d.space()
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// str reads a string without escapes at d.i (after white space) and returns its content.
func (d *fastDecoder) str() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return d.b[start : d.i-1], true
		}
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// null consumes the literal null if it comes next.
func (d *fastDecoder) null() bool {
	d.space()
	if bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// integer reads a JSON number that is an integer: -?(0|[1-9][0-9]*), followed by no fraction or
// exponent.
func (d *fastDecoder) integer() (int64, bool) {
	d.space()
	start := d.i
	if d.peek() == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	n := d.i - digits
	if n == 0 || n > 1 && d.b[digits] == '0' {
		return 0, false
	}
	if c := d.peek(); c == '.' || c == 'e' || c == 'E' {
		return 0, false
	}
	v, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	return v, err == nil
}

func (d *fastDecoder) id(dst *ID) bool {
	if d.null() {
		return true
	}
	v, ok := d.integer()
	*dst = ID(v)
	return ok
}

func (d *fastDecoder) int(dst *int) bool {
	if d.null() {
		return true
	}
	v, ok := d.integer()
	if !ok || int64(int(v)) != v {
		return false
	}
	*dst = int(v)
	return true
}

func (d *fastDecoder) string(dst *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.str()
	*dst = intern(s)
	return ok
}

// common holds the string values of owner-change events, so decoding them allocates nothing.
var common = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		"contact.propertyChange", "object.propertyChange", "contact.creation", "contact.deletion",
		"contact.merge", "contact.associationChange", "contact.restore", "contact.privacyDeletion",
		OwnerProperty, ContactObjectTypeID, "CRM_UI", "CRM", "API", "INTEGRATION", "IMPORT",
		"WORKFLOW", "AUTOMATION_PLATFORM", "MOBILE_IOS", "MOBILE_ANDROID", "SALES", "BATCH_UPDATE",
		"CONTACTS", "MIGRATION", "",
	} {
		m[s] = s
	}
	return m
}()

func intern(b []byte) string {
	if s, ok := common[string(b)]; ok {
		return s
	}
	return string(b)
}

func (d *fastDecoder) bool(dst *bool) bool {
	d.space()
	switch {
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
		*dst = true
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
		*dst = false
	case d.null():
	default:
		return false
	}
	return true
}

// Bits of the fields seen, to refuse duplicates.
const (
	fEventID = 1 << iota
	fSubscriptionID
	fPortalID
	fAppID
	fOccurredAt
	fSubscriptionType
	fEventType
	fAttemptNumber
	fObjectID
	fObjectTypeID
	fPropertyName
	fPropertyValue
	fChangeSource
	fSourceID
	fChangeFlag
	fIsSensitive
	fPrimaryObjectID
	fNewObjectID
	fNumberOfPropertiesMoved
	fAssociationType
	fFromObjectID
	fToObjectID
	fAssociationRemoved
	fIsPrimaryAssociation
	fFromObjectTypeID
	fToObjectTypeID
	fAssociationTypeID
	fAssociationCategory
)

func (d *fastDecoder) event(e *Event) bool {
	if !d.byte('{') {
		return false
	}
	d.space()
	if d.peek() == '}' {
		d.i++
		return true
	}
	seen := 0
	for {
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "eventId":
			bit, ok = fEventID, d.id(&e.EventID)
		case "subscriptionId":
			bit, ok = fSubscriptionID, d.id(&e.SubscriptionID)
		case "portalId":
			bit, ok = fPortalID, d.id(&e.PortalID)
		case "appId":
			bit, ok = fAppID, d.id(&e.AppID)
		case "occurredAt":
			bit, ok = fOccurredAt, d.id(&e.OccurredAt)
		case "subscriptionType":
			bit, ok = fSubscriptionType, d.string(&e.SubscriptionType)
		case "eventType":
			bit, ok = fEventType, d.string(&e.EventType)
		case "attemptNumber":
			bit, ok = fAttemptNumber, d.int(&e.AttemptNumber)
		case "objectId":
			bit, ok = fObjectID, d.id(&e.ObjectID)
		case "objectTypeId":
			bit, ok = fObjectTypeID, d.string(&e.ObjectTypeID)
		case "propertyName":
			bit, ok = fPropertyName, d.string(&e.PropertyName)
		case "propertyValue":
			bit = fPropertyValue
			if d.null() {
				e.PropertyValue = nil
			} else {
				var s []byte
				s, ok = d.str()
				v := string(s)
				e.PropertyValue = &v
			}
		case "changeSource":
			bit, ok = fChangeSource, d.string(&e.ChangeSource)
		case "sourceId":
			bit, ok = fSourceID, d.string(&e.SourceID)
		case "changeFlag":
			bit, ok = fChangeFlag, d.string(&e.ChangeFlag)
		case "isSensitive":
			bit, ok = fIsSensitive, d.bool(&e.IsSensitive)
		case "primaryObjectId":
			bit, ok = fPrimaryObjectID, d.id(&e.PrimaryObjectID)
		case "newObjectId":
			bit, ok = fNewObjectID, d.id(&e.NewObjectID)
		case "numberOfPropertiesMoved":
			bit, ok = fNumberOfPropertiesMoved, d.int(&e.NumberOfPropertiesMoved)
		case "associationType":
			bit, ok = fAssociationType, d.string(&e.AssociationType)
		case "fromObjectId":
			bit, ok = fFromObjectID, d.id(&e.FromObjectID)
		case "toObjectId":
			bit, ok = fToObjectID, d.id(&e.ToObjectID)
		case "associationRemoved":
			bit, ok = fAssociationRemoved, d.bool(&e.AssociationRemoved)
		case "isPrimaryAssociation":
			bit, ok = fIsPrimaryAssociation, d.bool(&e.IsPrimaryAssociation)
		case "fromObjectTypeId":
			bit, ok = fFromObjectTypeID, d.string(&e.FromObjectTypeID)
		case "toObjectTypeId":
			bit, ok = fToObjectTypeID, d.string(&e.ToObjectTypeID)
		case "associationTypeId":
			bit, ok = fAssociationTypeID, d.id(&e.AssociationTypeID)
		case "associationCategory":
			bit, ok = fAssociationCategory, d.string(&e.AssociationCategory)
		default:
			// Other keys, other spellings (encoding/json matches keys case-insensitively) and
			// mergedObjectIds are left to the reference.
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		d.space()
		switch d.peek() {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
			return true
		}
		return false
	}
}
