package media

import "time"

const (
	jitterSlots = 16   // ring size; power of two and well above the depth
	maxPayload  = 1280 // 160 ms of G.711, far more than any sane ptime
	maxMisorder = 100  // RFC 3550 A.1: older than this is a restart, not a late packet
	// slotBytes is a slot's room at first: 40 ms of G.711 or G.722. A
	// longer payload grows every slot once, up to maxPayload, so a call
	// pays for the packet size its peer uses, not for the largest.
	slotBytes = 320
)

type slotKind uint8

const (
	slotAudio slotKind = iota
	// slotSkip holds a sequence number used by a non-audio packet
	// (telephone-event) so it is not mistaken for loss.
	slotSkip
	// slotCN is comfort noise (RFC 3389): silence starts there.
	slotCN
)

type jbSlot struct {
	used    bool
	kind    slotKind
	format  audioFormat
	seq     uint16
	n       int
	arrived time.Duration
	payload []byte // the slot's room in jitterBuffer.room
}

type pushResult uint8

const (
	pushOK pushResult = iota
	pushLate
	pushDuplicate
	pushResync // sequence jumped: drain the buffer, reset, push again
)

// jitterBuffer reorders packets by sequence number and releases them in
// order. It is deliberately shallow: the consumer is a speech pipeline that
// cares more about latency than about the odd missing 20 ms. A gap is given
// up on once depth packets wait behind it or the oldest waiting packet is
// maxWait old. Payloads are copied into fixed slots, so steady state does not
// allocate. Not safe for concurrent use; the session's reader owns it.
type jitterBuffer struct {
	depth   int
	maxWait time.Duration
	slots   [jitterSlots]jbSlot
	room    []byte // the slots' payload bytes, jitterSlots equal parts
	started bool
	next    uint16 // next sequence number to release
	count   int

	skipped uint64 // gaps given up on
	late    uint64 // late or duplicate packets refused
}

func newJitterBuffer(depth int) *jitterBuffer {
	if depth <= 0 {
		depth = 3
	}
	if depth > jitterSlots/2 {
		depth = jitterSlots / 2
	}
	j := &jitterBuffer{depth: depth, maxWait: time.Duration(depth) * frameDuration}
	j.grow(slotBytes)
	return j
}

// slotRoom is how many payload bytes a slot holds now.
func (j *jitterBuffer) slotRoom() int { return len(j.room) / jitterSlots }

// grow gives every slot room for n bytes, keeping what they hold.
func (j *jitterBuffer) grow(n int) {
	old := j.room
	j.room = make([]byte, n*jitterSlots)
	for i := range j.slots {
		s := &j.slots[i]
		s.payload = j.room[i*n : (i+1)*n]
		if old != nil {
			copy(s.payload, old[i*len(old)/jitterSlots:][:s.n])
		}
	}
}

func (j *jitterBuffer) push(seq uint16, kind slotKind, format audioFormat, payload []byte, now time.Duration) pushResult {
	if len(payload) > maxPayload {
		payload = payload[:maxPayload]
	}
	if len(payload) > j.slotRoom() {
		j.grow(min(maxPayload, max(len(payload), 2*j.slotRoom())))
	}
	if !j.started {
		j.started = true
		j.next = seq
	}
	d := int16(seq - j.next)
	switch {
	case d < 0 && d >= -maxMisorder:
		j.late++
		return pushLate
	case d < 0 || int(d) >= jitterSlots:
		return pushResync
	}
	s := &j.slots[seq%jitterSlots]
	if s.used {
		// Within the window a used slot can only hold this same seq.
		j.late++
		return pushDuplicate
	}
	s.used, s.kind, s.format, s.seq, s.arrived = true, kind, format, seq, now
	s.n = copy(s.payload, payload)
	j.count++
	return pushOK
}

// pop returns the next packet in order, or nil when the head is missing and
// still worth waiting for. The slot is valid until the next push.
func (j *jitterBuffer) pop(now time.Duration) *jbSlot {
	for j.count > 0 {
		if s := &j.slots[j.next%jitterSlots]; s.used {
			s.used = false
			j.count--
			j.next++
			return s
		}
		if j.count < j.depth && now-j.oldest() < j.maxWait {
			return nil
		}
		j.next++
		j.skipped++
	}
	return nil
}

// drain releases everything buffered, in order, ignoring gaps; used before a
// reset so a stream restart does not swallow audio.
func (j *jitterBuffer) drain(fn func(*jbSlot)) {
	for j.count > 0 {
		if s := &j.slots[j.next%jitterSlots]; s.used {
			s.used = false
			j.count--
			fn(s)
		} else {
			j.skipped++
		}
		j.next++
	}
}

func (j *jitterBuffer) reset() {
	for i := range j.slots {
		j.slots[i].used = false
	}
	j.count = 0
	j.started = false
}

func (j *jitterBuffer) oldest() time.Duration {
	var t time.Duration
	first := true
	for i := range j.slots {
		if s := &j.slots[i]; s.used && (first || s.arrived < t) {
			t, first = s.arrived, false
		}
	}
	return t
}
