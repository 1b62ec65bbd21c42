package ownership

import (
	"time"

	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/sfid"
)

// RecordState is what the writer remembers per CRM record (tenant, provider, record type, record
// id): the owner both sides last agreed on, and the owner we last wrote to the CRM. It is kept in
// the ownersync_records KV bucket and updated with compare-and-set.
type RecordState struct {
	// AppliedOwner is the CRM owner id of the change last applied, whichever side it came from.
	AppliedOwner string
	// AppliedAt is that change's source time (occurred_at), the clock of stale rejection.
	AppliedAt time.Time
	// AppliedEventID is that change's event id, which recognises a redelivered duplicate.
	AppliedEventID string
	// WrittenOwner is the owner the writer last put (or is putting) on the CRM record; WrittenAt is
	// when (our clock).
	WrittenOwner string
	WrittenAt    time.Time
	// Pending is true between claiming a write (Claim) and the CRM confirming it (Confirm): a
	// redelivery of the claiming change must write again.
	Pending bool
	// PlatformRecordID links the CRM record to the platform record, once known.
	PlatformRecordID string
	// RecordEmail is the CRM record's email, once known (from a change that carried it, or read
	// from the CRM), so that an OwnerAssign for a record the platform knows by email can name it.
	RecordEmail string
}

// Origin is the side an owner change comes from.
type Origin string

// Origins.
const (
	FromCRM      Origin = "crm"
	FromPlatform Origin = "platform"
)

// Observation is an owner change as seen by one CRM record: the CRM owner it asks for (for a
// platform change, the translated owner) and its source time.
type Observation struct {
	Origin   Origin
	Provider provider.Provider
	EventID  string
	Owner    string
	At       time.Time
}

// Verdict is what to do with an observed change given the record's state.
type Verdict string

// Verdicts. Every one but Apply means: acknowledge, count, record in the history, change nothing.
const (
	// Apply: a newer change; act on it and record it with State.Apply.
	Apply Verdict = "apply"
	// Echo: a CRM change reporting the owner we wrote within the echo window — our own write coming
	// back. Re-applying it would start a ping-pong between the systems.
	Echo Verdict = "echo"
	// Stale: older than the change last applied to the record; applying it would put an older owner
	// back.
	Stale Verdict = "stale"
	// Duplicate: the change last applied, delivered again.
	Duplicate Verdict = "duplicate"
	// Unchanged: newer, but asks for the owner the record already has; nothing to write.
	Unchanged Verdict = "unchanged"
	// Redo: the change last applied, delivered again before its effect is known to be done (a
	// platform change whose CRM write was not confirmed, or a CRM change whose OwnerAssign may not
	// have been published): do the effect again, which is idempotent, without changing the state.
	Redo Verdict = "redo"
)

// Judge decides what to do with an observed change. echoWindow bounds how far the CRM's timestamp
// of a change may be from our write for the change to count as our echo. The rules, in order:
//
//  1. the event id of the last applied change → Redo for a CRM change (republishing its OwnerAssign
//     is deduplicated) and for a platform change whose write is still Pending, else Duplicate;
//  2. from the CRM, the owner we wrote, nothing applied since our write, and within the echo window
//     of it → Echo;
//  3. older than the last applied change → Stale; at the same instant, the same owner → Duplicate,
//     another owner → the greater owner id wins (a fixed tie-break, so replicas and redeliveries
//     converge whatever the delivery order);
//  4. the owner already applied → Unchanged, unless a platform change finds a write of that owner
//     still Pending (not known to have reached the CRM): then Apply, so it is written again;
//  5. otherwise Apply.
func Judge(st RecordState, o Observation, echoWindow time.Duration) Verdict {
	same := func(a, b string) bool { return SameOwner(o.Provider, a, b) }
	hasApplied := !st.AppliedAt.IsZero() || st.AppliedOwner != ""
	switch {
	case o.EventID != "" && o.EventID == st.AppliedEventID:
		if o.Origin == FromCRM || st.Pending {
			return Redo
		}
		return Duplicate
	case o.Origin == FromCRM && !st.WrittenAt.IsZero() && same(o.Owner, st.WrittenOwner) &&
		same(st.AppliedOwner, st.WrittenOwner) && absDuration(o.At.Sub(st.WrittenAt)) <= echoWindow:
		return Echo
	case hasApplied && o.At.Before(st.AppliedAt):
		return Stale
	case hasApplied && o.At.Equal(st.AppliedAt) && same(o.Owner, st.AppliedOwner):
		return Duplicate
	case hasApplied && o.At.Equal(st.AppliedAt) && o.Owner < st.AppliedOwner:
		return Stale
	case hasApplied && same(o.Owner, st.AppliedOwner) && !(o.Origin == FromPlatform && st.Pending):
		return Unchanged
	}
	return Apply
}

// Apply returns the state after applying o (verdict Apply), or after confirming it (Unchanged:
// the source time moves forward so that older changes stay stale). A pending write of an earlier
// change is no longer this record's concern: its confirmation will not match.
func (s RecordState) Apply(o Observation) RecordState {
	s.AppliedOwner = o.Owner
	if o.At.After(s.AppliedAt) {
		s.AppliedAt = o.At
	}
	s.AppliedEventID = o.EventID
	s.Pending = false
	return s
}

// Wrote returns the state after the writer put owner on the CRM record at time at.
func (s RecordState) Wrote(owner string, at time.Time) RecordState {
	s.WrittenOwner = owner
	s.WrittenAt = at
	s.Pending = false
	return s
}

// Claim returns the state that applies platform change o (verdict Apply) before its CRM write:
// applied, and written-pending at now, so that the CRM's echo is recognised even if it arrives
// before the write is confirmed.
func (s RecordState) Claim(o Observation, now time.Time) RecordState {
	s = s.Apply(o)
	s.WrittenOwner = o.Owner
	s.WrittenAt = now
	s.Pending = true
	return s
}

// Confirm returns the state after the CRM confirmed the write claimed by event eventID at time at;
// ok is false (and the state unchanged) when a later change has been applied since.
func (s RecordState) Confirm(eventID string, at time.Time) (RecordState, bool) {
	if s.AppliedEventID != eventID || !s.Pending {
		return s, false
	}
	s.WrittenAt = at
	s.Pending = false
	return s, true
}

// SameOwner compares two CRM owner ids of provider p: Salesforce ids in their 18-character form,
// HubSpot ids exactly.
func SameOwner(p provider.Provider, a, b string) bool {
	if p == provider.Salesforce {
		return sfid.Equal(a, b)
	}
	return a == b
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
