package media

import (
	"net/netip"
	"time"

	"github.com/pion/rtp"
)

// sender is the pacer goroutine's private state.
type sender struct {
	buf      [rtpHeaderLen + maxPayload]byte
	silence  [FrameSamples]int16
	seq      uint16
	sentAny  bool
	talking  bool
	sending  bool // previous frame was sent (false while on hold)
	gap      bool // frames were skipped: next packet starts a talkspurt
	dtmf     dtmfSender
	frame    uint64 // next frame index
	paceFrom time.Duration
	srtp     srtpState
	srtpHdr  rtp.Header
	enc      [rtpHeaderLen + maxPayload + srtpOverhead]byte
}

func (s *Session) paceLoop() {
	defer s.wg.Done()
	t := time.NewTicker(frameDuration)
	defer t.Stop()
	s.pace() // first frame right away: it opens NAT bindings and lets the peer latch
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.pace()
		}
	}
}

// pace sends the frames due by now. Timestamps derive from the frame index
// on the monotonic clock, so ticker jitter never accumulates into drift.
func (s *Session) pace() {
	due := uint64((s.since()-s.send.paceFrom)/frameDuration) + 1
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
	h := rtp.Header{Version: 2, SequenceNumber: st.seq, Timestamp: s.tsBase + uint32(frame)*FrameSamples, SSRC: s.ssrc}
	var n int
	if s.nextDTMF(dtmfPT, h.Timestamp) {
		h.PayloadType = dtmfPT
		h.Timestamp, h.Marker = st.dtmf.next(st.buf[rtpHeaderLen:])
		n = 4
	} else {
		h.PayloadType = codec.PayloadType
		h.Marker = st.audioPayload(codec.format(), pcm, talk)
		n = FrameSamples
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

// audioPayload encodes one frame of audio (silence when the source has
// none, padded when it is short) after the header and returns the marker.
func (st *sender) audioPayload(f audioFormat, pcm []int16, talk bool) (marker bool) {
	st.dtmf.active = false
	if !talk {
		pcm = st.silence[:]
	}
	payload := st.buf[rtpHeaderLen : rtpHeaderLen+FrameSamples]
	n := min(len(pcm), FrameSamples)
	encodeFrame(f, payload[:n], pcm[:n])
	encodeFrame(f, payload[n:], st.silence[n:])
	// RFC 3551 §4.1: marker on the first packet of a talkspurt.
	marker = !st.sentAny || !st.sending || st.gap || (talk && !st.talking)
	st.talking, st.gap = talk, false
	return marker
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
	if _, err := s.conn.WriteToUDPAddrPort(pkt, dest); err != nil {
		s.log.Debug("rtp write", "err", err)
		return
	}
	s.packetsOut.Add(1)
	s.bytesOut.Add(uint64(len(pkt)))
	s.payloadOut.Add(uint64(n))
}
