package sfsim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// fieldKind decides how a field is compared and rendered.
type fieldKind int

const (
	kindString fieldKind = iota
	kindID
	kindBool
	kindDateTime
	// kindLookup is a field of a related record ("Profile.UserLicense.Name"): a string in
	// comparisons, rendered as the nested objects of the relationship path, null when empty.
	kindLookup
)

type fieldDef struct {
	name string
	kind fieldKind
	get  func(row any) any // string, bool, time.Time
}

// restTime is the REST API's datetime format.
const restTime = "2006-01-02T15:04:05.000-0700"

func userField(name string, kind fieldKind, get func(*User) any) fieldDef {
	return fieldDef{name: name, kind: kind, get: func(row any) any { return get(row.(*User)) }}
}

func recField(name string, kind fieldKind, get func(*Record) any) fieldDef {
	return fieldDef{name: name, kind: kind, get: func(row any) any { return get(row.(*Record)) }}
}

func queueField(name string, kind fieldKind, get func(*Queue) any) fieldDef {
	return fieldDef{name: name, kind: kind, get: func(row any) any { return get(row.(*Queue)) }}
}

func fullName(first, last string) string { return strings.TrimSpace(first + " " + last) }

var userFields = []fieldDef{
	userField("Id", kindID, func(u *User) any { return u.ID }),
	userField("Username", kindString, func(u *User) any { return u.Username }),
	userField("Email", kindString, func(u *User) any { return u.Email }),
	userField("FirstName", kindString, func(u *User) any { return u.FirstName }),
	userField("LastName", kindString, func(u *User) any { return u.LastName }),
	userField("Name", kindString, func(u *User) any { return fullName(u.FirstName, u.LastName) }),
	userField("IsActive", kindBool, func(u *User) any { return u.IsActive }),
	userField("UserType", kindString, func(u *User) any { return u.UserType }),
	// The user licence of the user's profile; the Automated Process user has no profile.
	userField("Profile.UserLicense.Name", kindLookup, func(u *User) any { return u.License }),
	userField("FederationIdentifier", kindString, func(u *User) any { return u.FederationIdentifier }),
	userField("CreatedDate", kindDateTime, func(u *User) any { return u.CreatedDate }),
	userField("LastModifiedDate", kindDateTime, func(u *User) any { return u.LastModifiedDate }),
	userField("SystemModstamp", kindDateTime, func(u *User) any { return u.LastModifiedDate }),
	userField("LastModifiedById", kindID, func(u *User) any { return u.LastModifiedByID }),
}

func recordFields(withCompany bool) []fieldDef {
	fs := []fieldDef{
		recField("Id", kindID, func(r *Record) any { return r.ID }),
		recField("Email", kindString, func(r *Record) any { return r.Email }),
		recField("FirstName", kindString, func(r *Record) any { return r.FirstName }),
		recField("LastName", kindString, func(r *Record) any { return r.LastName }),
		recField("Name", kindString, func(r *Record) any { return fullName(r.FirstName, r.LastName) }),
		recField("OwnerId", kindID, func(r *Record) any { return r.OwnerID }),
		recField("IsDeleted", kindBool, func(r *Record) any { return r.IsDeleted }),
		recField("CreatedDate", kindDateTime, func(r *Record) any { return r.CreatedDate }),
		recField("LastModifiedDate", kindDateTime, func(r *Record) any { return r.LastModifiedDate }),
		recField("SystemModstamp", kindDateTime, func(r *Record) any { return r.LastModifiedDate }),
		recField("LastModifiedById", kindID, func(r *Record) any { return r.LastModifiedByID }),
	}
	if withCompany {
		fs = append(fs, recField("Company", kindString, func(r *Record) any { return r.Company }))
	}
	return fs
}

var groupFields = []fieldDef{
	queueField("Id", kindID, func(q *Queue) any { return q.ID }),
	queueField("Name", kindString, func(q *Queue) any { return q.Name }),
	queueField("Type", kindString, func(q *Queue) any { return "Queue" }),
	queueField("Email", kindString, func(q *Queue) any { return q.Email }),
}

// objects maps lower-case object names to their canonical name and fields.
var objects = map[string]struct {
	name   string
	fields []fieldDef
}{
	"user":    {ObjectUser, userFields},
	"contact": {ObjectContact, recordFields(false)},
	"lead":    {ObjectLead, recordFields(true)},
	"group":   {ObjectGroup, groupFields},
}

func lookupField(fields []fieldDef, name string) (fieldDef, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f, true
		}
	}
	return fieldDef{}, false
}

// writeValue appends the JSON form of a field value: empty strings and zero times are null.
func writeValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case string:
		if x == "" {
			b.WriteString("null")
			return
		}
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case time.Time:
		if x.IsZero() {
			b.WriteString("null")
			return
		}
		b.WriteByte('"')
		b.WriteString(x.UTC().Format(restTime))
		b.WriteByte('"')
	default:
		b.WriteString("null")
	}
}

// renderRow writes one record as the REST API returns it: attributes first, then the fields in
// the order asked for.
func renderRow(b *bytes.Buffer, version, object string, fields []fieldDef, row any, id string) {
	b.WriteString(`{"attributes":{"type":"`)
	b.WriteString(object)
	b.WriteString(`","url":"/services/data/`)
	b.WriteString(version)
	b.WriteString("/sobjects/")
	b.WriteString(object)
	b.WriteByte('/')
	b.WriteString(id)
	b.WriteString(`"}`)
	for _, f := range fields {
		if f.kind == kindLookup {
			writeLookup(b, f.name, f.get(row))
			continue
		}
		b.WriteString(`,"`)
		b.WriteString(f.name)
		b.WriteString(`":`)
		writeValue(b, f.get(row))
	}
	b.WriteByte('}')
}

// writeLookup writes a lookup field the way the REST API nests it: "Profile.UserLicense.Name"
// becomes "Profile":{"attributes":{"type":"Profile"},"UserLicense":{"attributes":{…},"Name":…}},
// or "Profile":null when the value is empty (no related record). The related records' ids are not
// modelled, so their attributes carry the type only.
func writeLookup(b *bytes.Buffer, path string, v any) {
	parts := strings.Split(path, ".")
	b.WriteString(`,"`)
	b.WriteString(parts[0])
	b.WriteString(`":`)
	if s, _ := v.(string); s == "" {
		b.WriteString("null")
		return
	}
	for i, rel := range parts[:len(parts)-1] {
		if i > 0 {
			b.WriteString(`,"` + rel + `":`)
		}
		b.WriteString(`{"attributes":{"type":"` + rel + `"}`)
	}
	b.WriteString(`,"` + parts[len(parts)-1] + `":`)
	writeValue(b, v)
	b.WriteString(strings.Repeat("}", len(parts)-1))
}

// ownFields are the fields of the object itself, without lookups: what a record's GET returns.
func ownFields(fields []fieldDef) []fieldDef {
	out := make([]fieldDef, 0, len(fields))
	for _, f := range fields {
		if f.kind != kindLookup {
			out = append(out, f)
		}
	}
	return out
}

// writeString writes s as a JSON string, taking a fast path for plain ASCII.
func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			enc, _ := json.Marshal(s)
			b.Write(enc)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
