package media

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/pion/rtp"
)

// DTMFEvent is one key press: '0'-'9', '*', '#', 'A'-'D'.
type DTMFEvent struct {
	Digit    rune
	Duration time.Duration
}

var errBadEvent = errors.New("media: malformed telephone-event")

// ErrInvalidDigit is returned by SendDTMF for digits RFC 4733 cannot carry.
var ErrInvalidDigit = errors.New("media: invalid DTMF digit")

const dtmfEvents = "0123456789*#ABCD"

func eventDigit(code byte) (rune, bool) {
	if int(code) < len(dtmfEvents) {
		return rune(dtmfEvents[code]), true
	}
	return 0, false
}

func digitEvent(r rune) (byte, bool) {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	for i := range len(dtmfEvents) {
		if rune(dtmfEvents[i]) == r {
			return byte(i), true
		}
	}
	return 0, false
}

func samplesToDuration(n uint16) time.Duration {
	return time.Duration(n) * time.Second / 8000
}

// dtmfEndTimeout reports an event whose end packets were all lost once the
// sender has been quiet this long (updates normally come every 50 ms).
const dtmfEndTimeout = 800 * time.Millisecond

// dtmfReceiver turns RFC 4733 packets into one DTMFEvent per key press. An
// event is identified by its RTP timestamp; it is reported on its first end
// packet, so the usual three end retransmissions count once. The marker bit
// is not relied on because the packet carrying it may be lost.
type dtmfReceiver struct {
	have     bool // ts is valid
	active   bool // current event not reported yet
	ts       uint32
	digit    rune
	valid    bool
	duration uint16
	lastAt   time.Duration
}

func (d *dtmfReceiver) packet(payload []byte, ts uint32, now time.Duration, emit func(DTMFEvent)) error {
	if len(payload) < 4 {
		return errBadEvent
	}
	end := payload[1]&0x80 != 0
	dur := binary.BigEndian.Uint16(payload[2:4])

	if !d.have || ts != d.ts {
		if d.have && int32(ts-d.ts) < 0 {
			return nil // straggler of an older event: already handled
		}
		d.finish(emit) // previous event lost its end packets
		d.have, d.active, d.ts = true, true, ts
		d.digit, d.valid = eventDigit(payload[0])
		d.duration = 0
	}
	if !d.active {
		return nil // end retransmission
	}
	d.lastAt = now
	if dur > d.duration {
		d.duration = dur
	}
	if end {
		d.finish(emit)
	}
	return nil
}

// flush reports an event whose end never arrived.
func (d *dtmfReceiver) flush(now time.Duration, emit func(DTMFEvent)) {
	if d.active && now-d.lastAt > dtmfEndTimeout {
		d.finish(emit)
	}
}

func (d *dtmfReceiver) finish(emit func(DTMFEvent)) {
	if !d.active {
		return
	}
	d.active = false
	if d.valid {
		emit(DTMFEvent{Digit: d.digit, Duration: samplesToDuration(d.duration)})
	}
}

// playing reports whether the event with timestamp ts is under way (not
// yet reported).
func (d *dtmfReceiver) playing(ts uint32) bool { return d.active && d.ts == ts }

// eventStream follows the RFC 4733 packets of the latched source on their
// own SSRC, sequence and timestamp, whatever the audio does: SBCs and media
// gateways generate events in a DSP of their own, and SIPp's stock pcaps
// carry an SSRC, sequence and timestamps unrelated to the voice. Within one
// stream the dtmfReceiver tells a digit's retransmitted end packets from a
// new digit by the timestamp; when the stream restarts, the old timestamp
// says nothing about the new ones and is forgotten.
type eventStream struct {
	have   bool
	ssrc   uint32
	seq    uint16 // highest sequence number seen
	lastAt time.Duration
	rx     dtmfReceiver
}

func (e *eventStream) packet(h *rtp.Header, payload []byte, now time.Duration, emit func(DTMFEvent)) error {
	if len(payload) < 4 {
		return errBadEvent
	}
	if e.restarts(h, payload, now) {
		e.rx.finish(emit)
		e.rx.have = false
		e.seq = h.SequenceNumber
	} else if int16(h.SequenceNumber-e.seq) > 0 {
		e.seq = h.SequenceNumber
	}
	e.have, e.ssrc, e.lastAt = true, h.SSRC, now
	return e.rx.packet(payload, h.Timestamp, now, emit)
}

// restarts reports whether a packet begins the event stream afresh: the
// first one; one on another SSRC; a sequence number further from the last
// than RFC 3550 A.1 believes of one stream; a marked event start at or
// before the current event's timestamp, once that event is over (a digit
// file played after another); or anything but an end packet after the
// stream was quiet for ssrcSwitchQuiet with no event under way (the same
// digit file played again: same SSRC, sequence and timestamps). Identical
// packets within ssrcSwitchQuiet of the end remain retransmissions: they
// cannot be told apart.
func (e *eventStream) restarts(h *rtp.Header, payload []byte, now time.Duration) bool {
	d := h.SequenceNumber - e.seq
	switch {
	case !e.have || h.SSRC != e.ssrc:
		return true
	case d >= maxDropout && uint32(d) <= seqMod-maxMisorder:
		return true
	case e.rx.playing(h.Timestamp):
		return false
	case h.Marker && e.rx.have && int32(h.Timestamp-e.rx.ts) <= 0:
		return true
	}
	end := payload[1]&0x80 != 0
	return !end && now-e.lastAt > ssrcSwitchQuiet
}

// flush reports an event whose end never arrived.
func (e *eventStream) flush(now time.Duration, emit func(DTMFEvent)) { e.rx.flush(now, emit) }

// dtmfSender is the pacer's state for an outgoing event: one packet per
// frame with a growing duration, then three end packets (RFC 4733 §2.5.1).
type dtmfSender struct {
	active  bool
	code    byte
	ts      uint32 // event start timestamp
	total   uint16 // samples
	elapsed uint16
	ends    int
	started bool
}

const (
	dtmfVolume      = 10 // -10 dBm0
	dtmfEndRepeats  = 3
	dtmfDefaultLen  = 100 * time.Millisecond
	dtmfMinDuration = 40 * time.Millisecond
)

func (d *dtmfSender) start(ev DTMFEvent, code byte, ts uint32) {
	dur := ev.Duration
	if dur <= 0 {
		dur = dtmfDefaultLen
	}
	dur = max(dur, dtmfMinDuration)
	samples := min(int64(dur/time.Millisecond)*8, 0xFFFF)
	*d = dtmfSender{active: true, code: code, ts: ts, total: uint16(samples)}
}

// next fills the 4-byte payload of the packet for this frame and returns
// the event timestamp and the marker bit.
func (d *dtmfSender) next(payload []byte) (ts uint32, marker bool) {
	marker = !d.started
	d.started = true
	if d.elapsed < d.total {
		d.elapsed = uint16(min(int(d.elapsed)+FrameSamples, int(d.total)))
	}
	payload[0] = d.code
	payload[1] = dtmfVolume
	if d.elapsed >= d.total {
		payload[1] |= 0x80
		d.ends++
		if d.ends >= dtmfEndRepeats {
			d.active = false
		}
	}
	binary.BigEndian.PutUint16(payload[2:4], d.elapsed)
	return d.ts, marker
}
