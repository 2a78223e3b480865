package transfer

import "time"

// plan is every write that one create or update of a transfer makes,
// decided before any is made by planCreate or planUpdate. Both are pure
// (they read only the records, the clock reading and the quarantine they
// are given), so the embedded and the Redis store follow the same rules:
// each store only knows how to write each part, all in one transaction
// (apply in bolt.go, lua/write.lua for Redis).
//
// A write that must land with the change or not at all is one more field
// here, filled in by the planner and written by those two appliers: the
// webhook events of the change (Events) are one.
type plan struct {
	// Record is the transfer as stored after the change.
	Record *Transfer
	// CountFrom and CountTo move the record between the per-status counts
	// (-1, +1); "" is no count (CountFrom of a create, both when the status
	// stays).
	CountFrom, CountTo Status
	// ExpiryFrom and ExpiryTo move the record in the index of ACTIVE
	// transfers by expiry; the zero time is "not in it". Both are zero when
	// the entry stays as it is.
	ExpiryFrom, ExpiryTo time.Time
	// Ended, when not zero, enters the record in the index of ended
	// transfers (the purge's) at that time: it has just ended.
	Ended time.Time
	// Lease, on the create of a PHONE_NUMBER transfer, takes the free
	// number of its country that has rested longest.
	Lease *numberLease
	// Release, when the transfer leaves ACTIVE, ends its number's lease.
	Release *numberLease
	// OngoingFrom and OngoingTo move the record between the per-node
	// indexes of the transfers a node still owes an outcome ("" is none):
	// ONGOING, or Returning (see ongoingNode). The embedded store serves
	// one node and keeps no such index (its OngoingOn scans).
	OngoingFrom, OngoingTo string
	// Events are the change's webhook events (Webhooks.events), appended
	// to the outbox in the same transaction.
	Events []outboxEvent
}

// numberLease is a number's new lease: held (leased) until HeldUntil, then
// in quarantine until FreeAt.
type numberLease struct {
	Country string
	// Holder is the transfer that takes the number (Lease), or that must
	// still hold it for the release to apply (Release).
	Holder string
	// Number is the number released (empty in a Lease: the store picks it).
	Number string
	// Now is when a Lease is taken: only a number free by then qualifies.
	Now       time.Time
	HeldUntil time.Time
	FreeAt    time.Time
}

// Shortens reports whether a release applies to a number that holder holds
// until heldUntil: the number must still be the releasing transfer's, and a
// lease only ever ends earlier.
func (r *numberLease) Shortens(holder string, heldUntil time.Time) bool {
	return holder == r.Holder && r.HeldUntil.Before(heldUntil)
}

// planCreate plans the create of t, which must be new, at now.
func planCreate(t *Transfer, now time.Time, quarantine time.Duration) plan {
	p := planMoves(nil, t)
	if t.Type == TypePhoneNumber && t.PhoneNumber != nil {
		p.Lease = &numberLease{Country: t.PhoneNumber.Country, Holder: t.ID, Now: now,
			HeldUntil: t.ExpiresAt, FreeAt: t.ExpiresAt.Add(quarantine)}
	}
	return p
}

// planUpdate plans the update of old into t at now. When the transfer
// leaves ACTIVE its number's lease ends at now, or at its expiry if that
// came first, and the number rests in quarantine from then.
func planUpdate(old, t *Transfer, now time.Time, quarantine time.Duration) plan {
	p := planMoves(old, t)
	leaving := old.Status == StatusActive && t.Status != StatusActive
	if leaving && t.PhoneNumber != nil && t.PhoneNumber.TransferNumber != "" {
		end := now
		if t.ExpiresAt.Before(end) {
			end = t.ExpiresAt
		}
		p.Release = &numberLease{Country: t.PhoneNumber.Country, Holder: t.ID, Number: t.PhoneNumber.TransferNumber,
			HeldUntil: end, FreeAt: end.Add(quarantine)}
	}
	return p
}

// planMoves plans the index entries that follow from the record alone; old
// is nil for a create.
func planMoves(old, t *Transfer) plan {
	p := plan{Record: t, CountTo: t.Status}
	var was Transfer // a create starts from nothing: no status, no entries
	if old != nil {
		was = *old
		p.CountFrom = old.Status
	}
	if p.CountFrom == p.CountTo {
		p.CountFrom, p.CountTo = "", ""
	}
	if from, to := activeExpiry(&was), activeExpiry(t); !from.Equal(to) {
		p.ExpiryFrom, p.ExpiryTo = from, to
	}
	if was.EndedAt().IsZero() {
		p.Ended = t.EndedAt()
	}
	if from, to := ongoingNode(&was), ongoingNode(t); from != to {
		p.OngoingFrom, p.OngoingTo = from, to
	}
	return p
}

// activeExpiry is t's entry in the expiry index: its expiry while ACTIVE.
func activeExpiry(t *Transfer) time.Time {
	if t.Status == StatusActive {
		return t.ExpiresAt
	}
	return time.Time{}
}

// ongoingNode is the node whose ONGOING index holds t, or "". A transfer
// whose return has not been recorded stays there too, so that if its node
// dies during the return, the node's restart (EndOrphans) or a surviving
// node (EndLostNodes) records the return as failed and its
// transfer.completed event is still written.
func ongoingNode(t *Transfer) string {
	if t.Status == StatusOngoing || t.Returning() {
		return t.Node
	}
	return ""
}
