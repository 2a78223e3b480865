package media

import (
	"encoding/binary"
	"errors"
	"time"
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
