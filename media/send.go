package media

import (
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// sendPayload bounds what we send in a packet: one 20 ms frame (160
// octets of G.711 or G.722) or a telephone-event, with room to spare.
const sendPayload = 320

// silenceFrame is a frame of digital silence (never written).
var silenceFrame [WideFrameSamples]int16

// sender is the send path's state (the engine goroutine's).
type sender struct {
	buf [rtpHeaderLen + sendPayload]byte
	// padded holds a short Source frame padded to length.
	padded   [WideFrameSamples]int16
	resample *Resampler  // a Source frame at the other rate to the codec's; made on first need
	g722     G722Encoder // reset when the codec turns to G.722
	format   audioFormat // of the last audio packet sent
	seq      uint16
	sentAny  bool
	talking  bool
	sending  bool // previous frame was sent (false while on hold)
	gap      bool // frames were skipped: next packet starts a talkspurt
	dtmf     dtmfSender
	frame    uint64 // next frame index
	paceFrom time.Duration
	paced    bool // paceFrom is set (the engine's first frame)
	srtp     srtpState
	srtpHdr  rtp.Header
	enc      [rtpHeaderLen + sendPayload + srtpOverhead]byte
}

// pace sends the frames due by now. Timestamps derive from the frame index
// on the monotonic clock, so ticker jitter never accumulates into drift.
func (s *Session) pace(now time.Duration) {
	due := uint64((now-s.send.paceFrom)/frameDuration) + 1
	if due > s.send.frame+maxCatchUp {
		s.send.frame = due - maxCatchUp
		s.send.gap = true
	}
	for ; s.send.frame < due; s.send.frame++ {
		s.sendFrame(s.send.frame)
	}
}

// sendFrame sends the packet of one 20 ms frame: a queued RFC 4733 event
// if there is one, else the Source's audio (or silence).
func (s *Session) sendFrame(frame uint64) {
	st := &s.send
	s.mu.Lock()
	dest := s.remote
	canSend := s.canSendLocked()
	codec := s.codec
	dtmfPT := s.dtmfPT
	s.mu.Unlock()

	var pcm []int16
	talk := false
	if s.cfg.Source != nil {
		pcm, talk = s.cfg.Source() // pulled on hold too, so the source keeps its pace
	}
	if !canSend {
		st.sending = false
		st.dtmf.active = false
		return
	}
	// The timestamp counts the RTP clock, not samples: 160 a frame for
	// G.722 too (RFC 3551 §4.5.2).
	ts := s.tsBase + uint32(frame)*uint32(FrameLen(codec.ClockRate))
	h := rtp.Header{Version: 2, SequenceNumber: st.seq, Timestamp: ts, SSRC: s.ssrc}
	var n int
	if s.nextDTMF(dtmfPT, h.Timestamp) {
		h.PayloadType = dtmfPT
		h.Timestamp, h.Marker = st.dtmf.next(st.buf[rtpHeaderLen:])
		n = 4
	} else {
		h.PayloadType = codec.PayloadType
		n, h.Marker = st.audioPayload(codec.format(), pcm, talk)
	}
	s.writeRTP(&h, n, dest)
}

// nextDTMF reports whether this frame carries an RFC 4733 event, starting
// the next queued one when none is playing.
func (s *Session) nextDTMF(pt uint8, ts uint32) bool {
	d := &s.send.dtmf
	if pt == 0 {
		d.active = false
		return false
	}
	if !d.active {
		select {
		case ev := <-s.dtmfQ:
			code, _ := digitEvent(ev.Digit)
			d.start(ev, code, ts)
		default:
		}
	}
	return d.active
}

// audioPayload encodes one frame of audio after the header (silence when
// the source has none; resampled to the codec's rate, and padded when
// short) and returns its length and the marker.
func (st *sender) audioPayload(f audioFormat, pcm []int16, talk bool) (n int, marker bool) {
	st.dtmf.active = false
	frame := FrameLen(f.rate())
	if talk {
		if FrameRate(len(pcm)) != f.rate() {
			if st.resample == nil {
				st.resample = new(Resampler)
			}
			pcm = st.resample.Frame(pcm, f.rate())
		}
	} else {
		pcm = silenceFrame[:frame]
	}
	if len(pcm) < frame {
		clear(st.padded[copy(st.padded[:frame], pcm):frame])
		pcm = st.padded[:frame]
	}
	payload := st.buf[rtpHeaderLen:]
	if f == formatG722 {
		if st.format != f {
			st.g722.Reset()
		}
		n = len(st.g722.Encode(payload[:0], pcm[:frame]))
	} else {
		n = frame
		encodeG711(f, payload[:n], pcm[:n])
	}
	st.format = f
	// RFC 3551 §4.1: marker on the first packet of a talkspurt.
	marker = !st.sentAny || !st.sending || st.gap || (talk && !st.talking)
	st.talking, st.gap = talk, false
	return n, marker
}

// writeRTP puts the header before the n payload bytes already in the
// buffer, protects the packet (SRTP) and sends it.
func (s *Session) writeRTP(h *rtp.Header, n int, dest netip.AddrPort) {
	st := &s.send
	// Our header is always 12 bytes (no CSRC, no extension), so the
	// payload is already in its place.
	hn, err := h.MarshalTo(st.buf[:rtpHeaderLen])
	if err != nil {
		return
	}
	pkt := st.buf[:hn+n]
	if st.srtp.sync(s.keys.Load(), true, false) {
		if st.srtp.ctx == nil {
			return // the key could not be used; never send in the clear
		}
		if pkt, err = st.srtp.ctx.EncryptRTP(st.enc[:0], pkt, &st.srtpHdr); err != nil {
			s.log.Debug("srtp protect", "err", err)
			return
		}
	}
	st.seq++
	st.sentAny, st.sending = true, true
	if err := s.conn.WriteTo(pkt, dest); err != nil {
		s.log.Debug("rtp write", "err", err)
		return
	}
	s.packetsOut.Add(1)
	s.bytesOut.Add(uint64(len(pkt)))
	s.payloadOut.Add(uint64(n))
}
