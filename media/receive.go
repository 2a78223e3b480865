package media

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// receiver is the receive path's state (the engine goroutine's).
type receiver struct {
	plain   []byte // decrypted packet
	pkt     rtp.Packet
	srtp    srtpState
	srtpHdr rtp.Header
	jb      *jitterBuffer
	events  eventStream
	// pcm holds decoded audio, pcmN samples of a partial frame in format
	// (its rate) between packets; a G.722 payload decodes to two samples
	// an octet. It grows with the payloads (pcmFor).
	pcm    []int16
	pcmN   int
	format audioFormat
	g722   G722Decoder
	comfortNoise
	// Bound once so the per-packet path does not allocate closures.
	onDTMF    func(DTMFEvent)
	deliverFn func(*jbSlot)
}

func (r *receiver) init(s *Session, jitterDepth int) {
	r.format = s.cfg.Codec.format()
	r.pcm = make([]int16, pcmFor(slotBytes))
	r.jb = newJitterBuffer(jitterDepth)
	r.onDTMF = s.reportDTMF
	r.deliverFn = s.deliver
}

// route is what a received payload type is for.
type route uint8

const (
	routeNone  route = iota // not negotiated: dropped
	routeAudio              // the negotiated codec
	routeEvent              // RFC 4733 telephone-event
	routeCN                 // RFC 3389 comfort noise
)

// payloadMux routes received packets by payload type to their handler, in
// the manner of livekit's media-sdk RTP mux. It is rebuilt from each
// negotiation, so a payload type the SDP did not name is refused.
type payloadMux struct {
	routes [128]route
	audio  audioFormat // decoder of routeAudio payloads
}

func newPayloadMux(codec Codec, dtmfPT, cnPT uint8) payloadMux {
	m := payloadMux{audio: codec.format()}
	if dtmfPT != 0 {
		m.routes[dtmfPT&0x7F] = routeEvent
	}
	if cnPT != 0 {
		m.routes[cnPT&0x7F] = routeCN
	}
	m.routes[codec.PayloadType&0x7F] = routeAudio
	return m
}

func (m *payloadMux) route(pt uint8) route { return m.routes[pt&0x7F] }

// tick handles what must happen without traffic: releasing frames stuck
// behind a gap, silence frames during comfort noise, reporting a DTMF
// event whose end was lost, the RTP timeout.
func (s *Session) tick(now time.Duration) {
	s.playout(now)
	s.recv.events.flush(now, s.recv.onDTMF)
	if s.cfg.RTPTimeout <= 0 {
		return
	}
	s.mu.Lock()
	hold := s.holdLocked()
	s.mu.Unlock()
	if hold {
		return
	}
	if idle := now - time.Duration(s.lastRx.Load()); idle > s.cfg.RTPTimeout {
		s.log.Info("rtp timeout", "idle", idle)
		s.shutdown(ErrRTPTimeout)
	}
}

// handleRTP is the per-packet receive path: authenticate and decrypt
// (SRTP), parse, admit (source, payload type, SSRC), count, then hand the
// packet to the handler of its payload type. It must not allocate in
// steady state.
func (s *Session) handleRTP(b []byte, src netip.AddrPort, now time.Duration) {
	wireLen := len(b)
	p, ok := s.parseRTP(b, src)
	if !ok {
		return
	}
	s.mu.Lock()
	in := s.admitLocked(&p.Header, src, now)
	s.mu.Unlock()
	if in.refused {
		s.drop(in.reason)
		return
	}
	s.lastRx.Store(int64(now))
	s.packetsIn.Add(1)
	s.bytesIn.Add(uint64(wireLen))
	if in.restart {
		s.flushJitter()
		s.recv.g722.Reset() // a new stream: the codec state was the old one's
	}
	switch in.route {
	case routeAudio:
		s.buffer(p, slotAudio, in.format, now)
	case routeCN:
		s.buffer(p, slotCN, in.format, now) // in order with the audio
	case routeEvent:
		s.handleEvent(p, in.inAudio, now)
	}
	s.playout(now)
}

// parseRTP authenticates and decrypts an SRTP packet (a plain one passes
// as it is) and parses it into the receiver's packet.
func (s *Session) parseRTP(b []byte, src netip.AddrPort) (*rtp.Packet, bool) {
	if s.recv.srtp.sync(s.keys.Load(), false, true) {
		var ok bool
		if b, ok = s.unprotectRTP(b, src); !ok {
			return nil, false
		}
	}
	p := &s.recv.pkt
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		s.drop(dropMalformed)
		return nil, false
	}
	return p, true
}

// admission is the reader's verdict on a packet, taken under the lock.
type admission struct {
	refused bool
	reason  dropReason // why, when refused
	route   route
	format  audioFormat // of an audio payload
	restart bool        // the audio stream (re)started: flush the jitter buffer
	inAudio bool        // an event in the audio's SSRC and sequence space
}

// admitLocked checks a packet against the latched source and the
// negotiated payload types, latches to its source if nothing is latched
// yet, and applies the audio SSRC rules to the audio stream.
// Telephone-events on an SSRC other than the audio's are a stream of their
// own (see eventStream), not a rival audio stream.
func (s *Session) admitLocked(h *rtp.Header, src netip.AddrPort, now time.Duration) admission {
	if s.latched && src != s.remote {
		return admission{refused: true, reason: dropWrongSource} // RTP bleed or a stale stream
	}
	in := admission{route: s.mux.route(h.PayloadType), format: s.mux.audio}
	if in.route == routeNone {
		return admission{refused: true, reason: dropPayloadType}
	}
	if in.route != routeEvent || s.audioPinned && h.SSRC == s.latchSSRC {
		restart, ok := s.followAudioLocked(h, in.route == routeAudio, now)
		if !ok {
			return admission{refused: true, reason: dropWrongSSRC}
		}
		in.restart, in.inAudio = restart, in.route == routeEvent
	}
	if !s.latched {
		s.latched, s.remote = true, src
		s.log.Debug("rtp latched", "source", src, "ssrc", h.SSRC)
	}
	return in
}

// followAudioLocked applies the audio SSRC rules to a packet of the audio
// stream and accounts it in the RFC 3550 receiver state: after a (re)latch
// the first packet sets the SSRC; a new SSRC replaces it only once the old
// one has been quiet for ssrcSwitchQuiet. restart means the stream is a
// new one.
func (s *Session) followAudioLocked(h *rtp.Header, timing bool, now time.Duration) (restart, ok bool) {
	switch {
	case !s.audioPinned:
		s.audioPinned = true
		restart = !s.rx.init || h.SSRC != s.latchSSRC
		s.latchSSRC = h.SSRC
	case h.SSRC != s.latchSSRC:
		if now-s.lastSSRCAt < ssrcSwitchQuiet {
			return false, false
		}
		s.log.Debug("rtp ssrc changed", "old", s.latchSSRC, "new", h.SSRC)
		s.latchSSRC = h.SSRC
		restart = true
	}
	if restart {
		s.accountIntervalLocked()
		s.rx.reset(h.SequenceNumber)
	}
	s.lastSSRCAt = now
	s.rx.updateSeq(h.SequenceNumber)
	if timing {
		s.rx.updateJitter(h.Timestamp, now, s.codec.ClockRate)
	}
	return restart, true
}

// handleEvent is the telephone-event handler: the packet goes to the
// event stream; one in the audio's sequence space also holds its place in
// the jitter buffer, so it is not taken for loss.
func (s *Session) handleEvent(p *rtp.Packet, inAudio bool, now time.Duration) {
	if err := s.recv.events.packet(&p.Header, p.Payload, now, s.recv.onDTMF); err != nil {
		s.drop(dropMalformed)
	}
	if inAudio {
		s.buffer(p, slotSkip, 0, now)
	}
}

// buffer puts a packet of the audio stream into the jitter buffer.
func (s *Session) buffer(p *rtp.Packet, kind slotKind, f audioFormat, now time.Duration) {
	jb := s.recv.jb
	switch jb.push(p.SequenceNumber, kind, f, p.Payload, now) {
	case pushLate, pushDuplicate:
		s.drop(dropLate)
	case pushResync:
		s.flushJitter()
		jb.push(p.SequenceNumber, kind, f, p.Payload, now)
	}
}

// unprotectRTP authenticates and decrypts an SRTP packet into the
// receiver's buffer. Packets from a source other than the latched one are
// refused before spending the crypto on them; a packet is only latched to
// once it authenticates, so forged RTP cannot steer the stream.
func (s *Session) unprotectRTP(b []byte, src netip.AddrPort) ([]byte, bool) {
	st := &s.recv.srtp
	if st.ctx == nil {
		s.drop(dropSRTPAuth) // the key could not be used: nothing authenticates
		return nil, false
	}
	h := &s.recv.srtpHdr
	hn, err := h.Unmarshal(b)
	if err != nil || h.Version != 2 || len(b) < hn+st.key.Suite.authTagLen()+int(st.key.MKILen) {
		s.drop(dropMalformed)
		return nil, false
	}
	s.mu.Lock()
	wrong := s.latched && src != s.remote
	s.mu.Unlock()
	if wrong {
		s.drop(dropWrongSource)
		return nil, false
	}
	if s.recv.plain == nil {
		s.recv.plain = make([]byte, 1500)
	}
	out, err := st.ctx.DecryptRTP(s.recv.plain, b, h)
	if err != nil {
		if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) || errors.Is(err, srtp.ErrMKINotFound) {
			s.drop(dropSRTPAuth)
		} else {
			s.drop(dropLate) // replayed (RFC 3711 §3.3.2)
		}
		return nil, false
	}
	return out, true
}

func (s *Session) flushJitter() {
	jb := s.recv.jb
	before := jb.skipped
	jb.drain(s.recv.deliverFn)
	jb.reset()
	s.skipped.Add(jb.skipped - before)
}

// playout releases every frame the jitter buffer is ready to give up.
func (s *Session) playout(now time.Duration) {
	jb := s.recv.jb
	before := jb.skipped
	for {
		slot := jb.pop(now)
		if slot == nil {
			break
		}
		s.deliver(slot)
	}
	if jb.skipped != before {
		s.skipped.Add(jb.skipped - before)
	}
	s.recv.fillSilence(now, s.cfg.OnAudio)
}

// deliver hands a buffered packet, in order, to OnAudio: audio decoded in
// 20 ms frames at the codec's rate whatever the peer's ptime, comfort
// noise as the start of silence.
func (s *Session) deliver(slot *jbSlot) {
	if s.cfg.OnAudio == nil {
		return
	}
	r := &s.recv
	if slot.kind == slotSkip {
		return
	}
	if slot.format != r.format {
		r.switchFormat(slot.format, s.cfg.OnAudio)
	}
	if slot.kind == slotCN {
		r.startSilence(slot.arrived, s.cfg.OnAudio)
		return
	}
	r.silent = false
	r.decode(slot.format, slot.payload[:slot.n], s.cfg.OnAudio)
}

// decode adds a payload's samples to the partial frame and delivers every
// whole frame.
func (r *receiver) decode(f audioFormat, payload []byte, onAudio func([]int16)) {
	if need := pcmFor(len(payload)); need > len(r.pcm) {
		r.pcm = append(r.pcm, make([]int16, need-len(r.pcm))...)
	}
	room := r.pcm[r.pcmN:]
	if f == formatG722 {
		payload = payload[:min(len(payload), len(room)/2)]
		r.pcmN += len(r.g722.Decode(room[:0], payload)) // in place: room has the capacity
	} else {
		n := min(len(payload), len(room))
		decodeG711(f, room[:n], payload[:n])
		r.pcmN += n
	}
	frame := r.frameLen()
	off := 0
	for r.pcmN-off >= frame {
		onAudio(r.pcm[off : off+frame])
		off += frame
	}
	if off > 0 {
		r.pcmN = copy(r.pcm[:], r.pcm[off:r.pcmN])
	}
}

// frameLen is the length of a frame at the rate of the audio decoding now.
func (r *receiver) frameLen() int { return FrameLen(r.format.rate()) }

// pcmFor is the room decoding needs for a payload of n octets: its
// samples (two an octet for G.722) after a partial frame.
func pcmFor(n int) int { return 2*min(n, maxPayload) + WideFrameSamples }

// switchFormat follows a codec change (re-INVITE): a partial frame of the
// old rate goes out padded with silence, and a G.722 stream starts from
// the codec's initial state.
func (r *receiver) switchFormat(f audioFormat, onAudio func([]int16)) {
	r.flushPartial(onAudio)
	r.format = f
	if f == formatG722 {
		r.g722.Reset()
	}
}

// flushPartial completes a partial frame with silence and delivers it.
func (r *receiver) flushPartial(onAudio func([]int16)) {
	if r.pcmN > 0 {
		frame := r.frameLen()
		clear(r.pcm[r.pcmN:frame])
		r.pcmN = 0
		onAudio(r.pcm[:frame])
	}
}

func (s *Session) reportDTMF(ev DTMFEvent) {
	s.dtmfEvents.Add(1)
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // the arguments would allocate
		s.log.Debug("dtmf", "digit", string(ev.Digit), "duration", ev.Duration)
	}
	if s.cfg.OnDTMF != nil {
		s.cfg.OnDTMF(ev)
	}
}
