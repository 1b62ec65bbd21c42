// Package sfid normalises Salesforce record ids. 15-character ids are case-sensitive; the
// 18-character form appends a 3-character checksum that makes them case-insensitive, so ownersync
// always stores and compares the 18-character form (docs/crm-protocols.md#salesforce-ids).
package sfid

import (
	"errors"
	"strings"
)

// ErrMalformed is returned for a string that is not a 15- or 18-character alphanumeric id.
var ErrMalformed = errors.New("malformed salesforce id")

const checksumAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

// To18 returns the 18-character form of a 15- or 18-character id. An 18-character id has its
// checksum recomputed from the first 15 characters so that case variants compare equal.
func To18(id string) (string, error) {
	if len(id) != 15 && len(id) != 18 {
		return "", ErrMalformed
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", ErrMalformed
		}
	}
	base := id[:15]
	var sum [3]byte
	for chunk := 0; chunk < 3; chunk++ {
		v := 0
		for i := 0; i < 5; i++ {
			c := base[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				v |= 1 << i
			}
		}
		sum[chunk] = checksumAlphabet[v]
	}
	if len(id) == 18 && id[15] == sum[0] && id[16] == sum[1] && id[17] == sum[2] {
		// Already the 18-character form: no new string (every id of every webhook goes through here).
		return id, nil
	}
	return base + string(sum[:]), nil
}

// Prefix is the 3-character key prefix that names the object type (005 User, 00G Queue, 003 Contact,
// 00Q Lead, 00D Organization).
func Prefix(id string) string {
	if len(id) < 3 {
		return ""
	}
	return id[:3]
}

// Key prefixes used by ownersync.
const (
	PrefixUser    = "005"
	PrefixQueue   = "00G"
	PrefixContact = "003"
	PrefixLead    = "00Q"
	PrefixOrg     = "00D"
)

// Equal compares two ids in their 18-character form; malformed ids compare by exact text.
func Equal(a, b string) bool {
	a18, errA := To18(a)
	b18, errB := To18(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return strings.EqualFold(a18, b18) && a18[:15] == b18[:15]
}
