// Package hubspot decodes HubSpot webhook batches (docs/crm-protocols.md#hubspot-webhook-events)
// and tells owner changes apart from the other events an app may be subscribed to.
package hubspot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// MaxEvents is the most events HubSpot puts in one request
// (docs/crm-protocols.md#hubspot-webhook-batches).
const MaxEvents = 100

// OwnerProperty is the record property that holds the owner id.
const OwnerProperty = "hubspot_owner_id"

// ContactObjectTypeID is the objectTypeId of contacts in generic (object.*) events.
const ContactObjectTypeID = "0-1"

// Errors; each Decode failure wraps exactly one.
var (
	ErrEmpty      = errors.New("empty batch")
	ErrTooMany    = errors.New("more than 100 events in one batch")
	ErrMalformed  = errors.New("malformed webhook batch")
	ErrInvalidUTF = errors.New("body is not valid UTF-8")
)

// Reason returns a short label for a Decode error.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrTooMany):
		return "too_many_events"
	case errors.Is(err, ErrInvalidUTF):
		return "invalid_utf8"
	}
	return "malformed"
}

// ID is a numeric HubSpot id. HubSpot sends numbers; a numeric string is accepted too, since
// generic events are still in beta and ids above 2^53 do not survive every JSON encoder.
type ID int64

// UnmarshalJSON accepts a JSON integer or a string holding one.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 1 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("id %q is not an integer", b)
	}
	*id = ID(n)
	return nil
}

// String formats the id in decimal.
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }

// Event is one webhook event with every field of docs/crm-protocols.md#hubspot-webhook-events.
// Fields an event type does not carry stay zero.
type Event struct {
	EventID        ID `json:"eventId"`
	SubscriptionID ID `json:"subscriptionId"`
	PortalID       ID `json:"portalId"`
	AppID          ID `json:"appId"`
	// OccurredAt is epoch milliseconds.
	OccurredAt ID `json:"occurredAt"`
	// SubscriptionType is subscriptionType, or the legacy eventType when only that was sent.
	SubscriptionType string `json:"subscriptionType"`
	EventType        string `json:"eventType"`
	AttemptNumber    int    `json:"attemptNumber"`
	ObjectID         ID     `json:"objectId"`
	ObjectTypeID     string `json:"objectTypeId"`
	PropertyName     string `json:"propertyName"`
	// PropertyValue is the new value; nil when the event carried none.
	PropertyValue *string `json:"propertyValue"`
	ChangeSource  string  `json:"changeSource"`
	SourceID      string  `json:"sourceId"`
	ChangeFlag    string  `json:"changeFlag"`
	IsSensitive   bool    `json:"isSensitive"`

	// Merge events.
	PrimaryObjectID         ID   `json:"primaryObjectId"`
	MergedObjectIDs         []ID `json:"mergedObjectIds"`
	NewObjectID             ID   `json:"newObjectId"`
	NumberOfPropertiesMoved int  `json:"numberOfPropertiesMoved"`

	// Association events.
	AssociationType      string `json:"associationType"`
	FromObjectID         ID     `json:"fromObjectId"`
	ToObjectID           ID     `json:"toObjectId"`
	AssociationRemoved   bool   `json:"associationRemoved"`
	IsPrimaryAssociation bool   `json:"isPrimaryAssociation"`
	FromObjectTypeID     string `json:"fromObjectTypeId"`
	ToObjectTypeID       string `json:"toObjectTypeId"`
	AssociationTypeID    ID     `json:"associationTypeId"`
	AssociationCategory  string `json:"associationCategory"`
}

// Type is the subscription type, whichever key carried it.
func (e Event) Type() string {
	if e.SubscriptionType != "" {
		return e.SubscriptionType
	}
	return e.EventType
}

// IsOwnerChange reports whether the event changes a contact's owner: contact.propertyChange, or
// object.propertyChange on objectTypeId 0-1, of hubspot_owner_id.
func (e Event) IsOwnerChange() bool {
	if e.PropertyName != OwnerProperty {
		return false
	}
	switch e.Type() {
	case "contact.propertyChange":
		return true
	case "object.propertyChange":
		return e.ObjectTypeID == ContactObjectTypeID
	}
	return false
}

// OwnerID returns the new owner id of an owner change; "" means the owner was cleared (an empty
// propertyValue; the reference marks that meaning unconfirmed, and no other reading exists).
func (e Event) OwnerID() string {
	if e.PropertyValue == nil {
		return ""
	}
	return *e.PropertyValue
}

// EventKey is the deterministic event id of docs/architecture.md#event-ids:
// hs:<portalId>:<eventId>:<objectId>:<occurredAt>:<propertyName>. eventId alone is not unique.
func (e Event) EventKey() string {
	b := make([]byte, 0, 64+len(e.PropertyName))
	b = append(b, "hs:"...)
	for _, id := range [...]ID{e.PortalID, e.EventID, e.ObjectID, e.OccurredAt} {
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ':')
	}
	return string(append(b, e.PropertyName...))
}

// Decode parses a webhook body: a JSON array of 1 to MaxEvents events, each with a positive
// portalId, eventId, objectId and occurredAt and a subscription type.
//
// A fast decoder (fast.go) reads the plain form HubSpot sends; whenever it does not accept a body,
// encoding/json decodes it again and decides, so errors and the events of anything unusual come
// from the reference decoder (FuzzDecodeDifferential checks that both agree).
func Decode(body []byte) ([]Event, error) {
	if events, ok := decodeFast(body); ok {
		return events, nil
	}
	return decodeReference(body)
}

// decodeReference decodes with encoding/json only: the reference implementation.
func decodeReference(body []byte) ([]Event, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil, ErrEmpty
	}
	if !utf8.Valid(b) {
		return nil, ErrInvalidUTF
	}
	if b[0] != '[' {
		return nil, fmt.Errorf("%w: body is not a JSON array", ErrMalformed)
	}
	// Stream the array so that a body of many tiny elements is refused at element 101 instead of
	// being decoded whole (a 1 MB body of "{}," would otherwise expand to tens of megabytes).
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	events := make([]Event, 0, 1)
	for d.More() {
		if len(events) == MaxEvents {
			return nil, ErrTooMany
		}
		events = append(events, Event{})
		e := &events[len(events)-1]
		if err := d.Decode(e); err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrMalformed, len(events)-1, err)
		}
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrMalformed, len(events)-1, err)
		}
	}
	if _, err := d.Token(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: content after the array", ErrMalformed)
	}
	if len(events) == 0 {
		return nil, ErrEmpty
	}
	return events, nil
}

func (e Event) validate() error {
	switch {
	case e.PortalID <= 0:
		return errors.New("portalId missing")
	case e.Type() == "":
		return errors.New("subscriptionType missing")
	case e.EventID <= 0:
		return errors.New("eventId missing")
	case e.OccurredAt <= 0:
		return errors.New("occurredAt missing")
	case e.ObjectID <= 0 && e.IsOwnerChange():
		return errors.New("objectId missing")
	}
	return nil
}
