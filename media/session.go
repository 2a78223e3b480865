package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

const (
	frameDuration = 20 * time.Millisecond
	// maxCatchUp bounds how many frames the pacer sends in one go after it
	// was scheduled late; older frames are skipped rather than burst out.
	maxCatchUp = 2
	// readWakeup bounds how long the reader blocks, so gaps in the jitter
	// buffer, lost DTMF ends and the RTP timeout are noticed without traffic.
	readWakeup = 20 * time.Millisecond
	// ssrcSwitchQuiet: a new SSRC from the latched address replaces the old
	// one only once the old stream has been silent this long. Peers change
	// SSRC without re-INVITE (prompt players, re-anchoring SBCs); two live
	// streams at once are still refused.
	ssrcSwitchQuiet = 200 * time.Millisecond
	dtmfQueueLen    = 32
	rtpHeaderLen    = 12
)

// Session errors.
var (
	ErrRTPTimeout        = errors.New("media: RTP timeout")
	ErrSessionClosed     = errors.New("media: session closed")
	ErrDTMFNotNegotiated = errors.New("media: telephone-event not negotiated")
	ErrDTMFQueueFull     = errors.New("media: DTMF queue full")
)

// SessionConfig configures one RTP session. Ports belong to the caller, who
// releases them to the pool after Close.
type SessionConfig struct {
	Ports           *Ports
	Remote          netip.AddrPort // from SDP; replaced by latching on the first valid packet
	Codec           Codec
	DTMFPayloadType uint8
	// RemoteDirection is the peer's SDP direction; empty means sendrecv.
	RemoteDirection Direction
	// LocalKey and RemoteKey make the session SRTP (RFC 3711, SDES keys
	// from the SDP): ours protects what we send (RTP and RTCP), the peer's
	// authenticates and decrypts what we receive. Both or neither.
	LocalKey, RemoteKey *SRTPKey

	// OnAudio receives caller audio, decoded, in order, one 20 ms frame per
	// call, from a single goroutine. The slice is reused after return.
	OnAudio func(pcm []int16)
	// OnDTMF is called once per RFC 4733 event, from the same goroutine as OnAudio.
	OnDTMF func(DTMFEvent)
	// Source is pulled every 20 ms; false sends silence. It should return
	// FrameSamples samples (shorter is padded with silence).
	Source func() ([]int16, bool)

	RTPTimeout   time.Duration // 0 disables
	RTCPInterval time.Duration // 0 means DefaultRTCPInterval
	JitterDepth  int           // frames; 0 means 3
	CNAME        string        // RTCP SDES CNAME; random if empty

	Metrics *Metrics     // may be nil
	Logger  *slog.Logger // may be nil
}

// Stats is a snapshot of a session's counters.
type Stats struct {
	PacketsIn, PacketsOut uint64 // accepted inbound / sent RTP packets
	BytesIn, BytesOut     uint64 // whole RTP packets
	PacketsLost           int64  // RFC 3550 cumulative loss of the latched stream
	PacketsLate           uint64 // late or duplicate, refused by the jitter buffer
	PacketsSkipped        uint64 // gaps the jitter buffer stopped waiting for
	PacketsDropped        uint64 // wrong source/SSRC, malformed, unknown payload type or failed SRTP authentication
	Jitter                time.Duration
	DTMFEvents            uint64
	Latched               bool
	Remote                netip.AddrPort // where we send
	SSRC, RemoteSSRC      uint32

	RTCPIn, RTCPOut    uint64
	RemoteReport       bool    // a report about our stream has arrived
	RemoteFractionLost float64 // 0..1, from the peer's last report
	RemotePacketsLost  int64
	RemoteJitter       time.Duration
}

// Session is one bidirectional RTP stream with its RTCP. It runs three
// goroutines: the reader (RTP in, jitter buffer, OnAudio/OnDTMF, timeout),
// the pacer (Source, RTP out every 20 ms) and RTCP (reports in and out).
type Session struct {
	cfg    SessionConfig
	log    *slog.Logger
	m      *Metrics
	conn   *net.UDPConn
	rconn  *net.UDPConn
	epoch  time.Time // monotonic base for all durations below
	ssrc   uint32
	tsBase uint32
	cname  string

	mu         sync.Mutex
	sdpRemote  netip.AddrPort
	remote     netip.AddrPort // sdpRemote until latched, then the latched source
	latched    bool
	latchSSRC  uint32
	lastSSRCAt time.Duration
	codec      Codec
	dtmfPT     uint8
	remoteDir  Direction
	rtcpRemote netip.AddrPort // source of the peer's RTCP (symmetric RTCP)
	rx         rxStats
	lastSR     uint32 // middle bits of the peer's last SR NTP time
	lastSRAt   time.Duration
	peer       struct {
		have     bool
		fraction uint8
		lost     int64
		jitter   uint32
	}
	err     error
	started bool
	closed  bool

	lastRx atomic.Int64 // ns since epoch: last accepted packet, start, or end of hold
	// keys is the current SRTP key generation (nil: plain RTP). Each
	// goroutine follows it with its own contexts, so Update can rekey
	// without locking the packet paths.
	keys atomic.Pointer[srtpKeys]

	packetsIn, packetsOut  atomic.Uint64
	bytesIn, bytesOut      atomic.Uint64
	payloadOut             atomic.Uint64
	late, skipped, dropped atomic.Uint64
	dtmfEvents             atomic.Uint64
	rtcpIn, rtcpOut        atomic.Uint64
	stop                   chan struct{}
	stopOnce, doneOnce     sync.Once
	done                   chan struct{}
	wg                     sync.WaitGroup
	dtmfQ                  chan DTMFEvent
	recv                   receiver
	send                   sender
	rtcpSRTP               rtcpSRTP
	finalOnce              sync.Once
	deliverSlotFn          func(*jbSlot)
}

// receiver is the reader goroutine's private state.
type receiver struct {
	buf      []byte
	pkt      rtp.Packet
	jb       *jitterBuffer
	dtmf     dtmfReceiver
	pcm      [maxPayload + FrameSamples]int16
	pcmN     int
	lastTick time.Duration
	onDTMF   func(DTMFEvent)
	srtp     srtpState
	srtpHdr  rtp.Header
	plain    []byte // decrypted packet
}

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

// NewSession validates cfg and prepares a session; nothing runs until Start.
func NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Ports == nil || cfg.Ports.RTP == nil || cfg.Ports.RTCP == nil {
		return nil, errors.New("media: session needs ports")
	}
	if !cfg.Codec.isG711() {
		return nil, fmt.Errorf("media: unsupported codec %q/%d", cfg.Codec.Name, cfg.Codec.ClockRate)
	}
	keys, err := newSRTPKeys(cfg.LocalKey, cfg.RemoteKey)
	if err != nil {
		return nil, err
	}
	if cfg.RTCPInterval <= 0 {
		cfg.RTCPInterval = DefaultRTCPInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.RemoteDirection
	if dir == "" {
		dir = SendRecv
	}
	s := &Session{
		cfg:       cfg,
		log:       log.With("rtp_port", cfg.Ports.Port),
		m:         cfg.Metrics,
		conn:      cfg.Ports.RTP,
		rconn:     cfg.Ports.RTCP,
		epoch:     time.Now(),
		ssrc:      rand.Uint32(),
		tsBase:    rand.Uint32(),
		cname:     cfg.CNAME,
		sdpRemote: cfg.Remote,
		remote:    cfg.Remote,
		codec:     cfg.Codec,
		dtmfPT:    cfg.DTMFPayloadType,
		remoteDir: dir,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		dtmfQ:     make(chan DTMFEvent, dtmfQueueLen),
	}
	if s.cname == "" {
		s.cname = fmt.Sprintf("%08x@handoff", rand.Uint32())
	}
	s.keys.Store(keys)
	s.recv.buf = make([]byte, 1500)
	s.recv.plain = make([]byte, 1500)
	s.recv.jb = newJitterBuffer(cfg.JitterDepth)
	s.send.seq = uint16(rand.Uint32())
	// Bound once so the per-packet path does not allocate closures.
	s.recv.onDTMF = s.reportDTMF
	s.deliverSlotFn = s.deliver
	return s, nil
}

func (s *Session) since() time.Duration { return time.Since(s.epoch) }

// Start launches the reader, pacer and RTCP goroutines. The RTP timeout
// counts from here. Start after Close does nothing.
func (s *Session) Start() {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()

	// The sockets may carry a deadline from a previous session's Close.
	s.conn.SetReadDeadline(time.Time{})
	s.rconn.SetReadDeadline(time.Time{})
	now := s.since()
	s.lastRx.Store(int64(now))
	s.send.paceFrom = now
	s.m.sessionStarted(1)

	s.wg.Add(3)
	go s.readLoop()
	go s.paceLoop()
	go s.rtcpLoop()
	go func() {
		s.wg.Wait()
		s.finish()
		s.doneOnce.Do(func() { close(s.done) })
	}()
}

// Done is closed when the session has stopped (timeout or Close) and its
// goroutines have exited.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns ErrRTPTimeout if the session ended for lack of RTP, else nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LocalPort is the RTP port we receive on.
func (s *Session) LocalPort() int { return s.cfg.Ports.Port }

// Close stops the session and waits for its goroutines. It does not close
// the sockets: the caller releases the Ports to the pool.
func (s *Session) Close() {
	s.shutdown(nil)
	s.mu.Lock()
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		s.doneOnce.Do(func() { close(s.done) })
	}
	<-s.done
	// Leave the sockets usable (no expired deadline) for whoever gets them next.
	s.conn.SetReadDeadline(time.Time{})
	s.rconn.SetReadDeadline(time.Time{})
}

// shutdown signals the goroutines to stop. Readers are woken with an
// expired deadline rather than by closing sockets we do not own.
func (s *Session) shutdown(err error) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.stop)
		now := time.Now()
		s.conn.SetReadDeadline(now)
		s.rconn.SetReadDeadline(now)
	})
}

func (s *Session) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// finish records end-of-session metrics once the goroutines are gone.
func (s *Session) finish() {
	// Loss and jitter were accounted by the final RTCP report.
	s.finalOnce.Do(func() { s.m.sessionStarted(-1) })
}

// Update applies a re-negotiation (re-INVITE / UPDATE). A new remote address
// drops the latch so the next valid packet latches again. A remote that does
// not send (hold) pauses the RTP timeout; a remote that does not receive
// stops our sending (RFC 3264: our direction is the reverse of theirs).
func (s *Session) Update(n Negotiated) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasHold := s.holdLocked()
	if n.Remote != s.sdpRemote {
		s.sdpRemote = n.Remote
		s.remote = n.Remote
		s.latched = false
		s.rtcpRemote = netip.AddrPort{}
	}
	if n.Codec.isG711() {
		s.codec = n.Codec
	}
	s.dtmfPT = n.DTMFPayloadType
	s.remoteDir = n.RemoteDirection
	if s.remoteDir == "" {
		s.remoteDir = SendRecv
	}
	if wasHold && !s.holdLocked() {
		s.lastRx.Store(int64(s.since())) // the timeout restarts when the hold ends
	}
	if keys, err := newSRTPKeys(n.LocalKey, n.RemoteKey); err != nil {
		s.log.Warn("media update ignored SRTP keys", "err", err)
	} else if !keys.equal(s.keys.Load()) {
		s.keys.Store(keys) // the packet paths rekey on their next packet
	}
	s.log.Debug("media updated", "remote", n.Remote, "codec", n.Codec.Name, "remote_direction", s.remoteDir, "srtp", n.SRTP())
}

// holdLocked: the peer is not expected to send us RTP, so silence is no
// reason to time out. Remote sendonly is included because carriers often
// stop sending music-on-hold too.
func (s *Session) holdLocked() bool {
	return s.remoteDir != SendRecv || s.sdpRemote.Addr().IsUnspecified()
}

func (s *Session) canSendLocked() bool {
	r := s.remote
	return s.remoteDir.Receives() && r.IsValid() && r.Port() != 0 && !r.Addr().IsUnspecified()
}

// SendDTMF queues an RFC 4733 event; the pacer sends it in place of audio.
func (s *Session) SendDTMF(ev DTMFEvent) error {
	if _, ok := digitEvent(ev.Digit); !ok {
		return fmt.Errorf("%w: %q", ErrInvalidDigit, ev.Digit)
	}
	s.mu.Lock()
	pt := s.dtmfPT
	s.mu.Unlock()
	if pt == 0 {
		return ErrDTMFNotNegotiated
	}
	if s.stopping() {
		return ErrSessionClosed
	}
	select {
	case s.dtmfQ <- ev:
		return nil
	default:
		return ErrDTMFQueueFull
	}
}

// Stats returns a snapshot of the counters.
func (s *Session) Stats() Stats {
	st := Stats{
		PacketsIn:      s.packetsIn.Load(),
		PacketsOut:     s.packetsOut.Load(),
		BytesIn:        s.bytesIn.Load(),
		BytesOut:       s.bytesOut.Load(),
		PacketsLate:    s.late.Load(),
		PacketsSkipped: s.skipped.Load(),
		PacketsDropped: s.dropped.Load(),
		DTMFEvents:     s.dtmfEvents.Load(),
		RTCPIn:         s.rtcpIn.Load(),
		RTCPOut:        s.rtcpOut.Load(),
		SSRC:           s.ssrc,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Latched = s.latched
	st.Remote = s.remote
	if s.latched {
		st.RemoteSSRC = s.latchSSRC
		st.PacketsLost = s.rx.lost()
		st.Jitter = s.rx.jitterDuration(s.codec.ClockRate)
	}
	if s.peer.have {
		st.RemoteReport = true
		st.RemoteFractionLost = float64(s.peer.fraction) / 256
		st.RemotePacketsLost = s.peer.lost
		st.RemoteJitter = samplesToDurationRate(s.peer.jitter, s.codec.ClockRate)
	}
	return st
}

func samplesToDurationRate(n uint32, rate int) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(int64(n) * int64(time.Second) / int64(rate))
}

func (s *Session) drop(r dropReason) {
	if r == dropLate {
		s.late.Add(1)
	} else {
		s.dropped.Add(1)
	}
	s.m.drop(r)
}

// ---- receive path ----

func (s *Session) readLoop() {
	defer s.wg.Done()
	var deadline time.Time
	for {
		if wall := time.Now(); deadline.Sub(wall) < readWakeup/2 {
			deadline = wall.Add(readWakeup)
			s.conn.SetReadDeadline(deadline)
		}
		// Checked after setting the deadline: shutdown closes stop before
		// expiring the deadline, so one of the two always wakes us.
		if s.stopping() {
			return
		}
		n, src, err := s.conn.ReadFromUDPAddrPort(s.recv.buf)
		now := s.since()
		if err == nil {
			s.handleRTP(s.recv.buf[:n], netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), now)
		} else if errors.Is(err, net.ErrClosed) {
			s.log.Warn("rtp socket closed under a running session")
			s.shutdown(nil)
			return
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			s.log.Debug("rtp read", "err", err)
		}
		if now-s.recv.lastTick >= readWakeup/2 {
			s.recv.lastTick = now
			s.tick(now)
		}
	}
}

// tick handles what must happen without traffic: releasing frames stuck
// behind a gap, reporting a DTMF event whose end was lost, the RTP timeout.
func (s *Session) tick(now time.Duration) {
	s.playout(now)
	s.recv.dtmf.flush(now, s.recv.onDTMF)
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
// (SRTP), validate, latch, account, then DTMF or jitter buffer. It must not
// allocate in steady state.
func (s *Session) handleRTP(b []byte, src netip.AddrPort, now time.Duration) {
	wireLen := len(b)
	if s.recv.srtp.sync(s.keys.Load(), false, true) {
		var ok bool
		if b, ok = s.unprotectRTP(b, src); !ok {
			return
		}
	}
	p := &s.recv.pkt
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		s.drop(dropMalformed)
		return
	}
	h := &p.Header

	s.mu.Lock()
	if s.latched && src != s.remote {
		s.mu.Unlock()
		s.drop(dropWrongSource) // RTP bleed or a stale stream
		return
	}
	isAudio := h.PayloadType == s.codec.PayloadType
	isDTMF := s.dtmfPT != 0 && h.PayloadType == s.dtmfPT
	if !isAudio && !isDTMF {
		s.mu.Unlock()
		s.drop(dropPayloadType)
		return
	}
	restart := false
	switch {
	case !s.latched:
		s.latched, s.remote = true, src
		restart = !s.rx.init || h.SSRC != s.latchSSRC
		s.latchSSRC = h.SSRC
		s.log.Debug("rtp latched", "source", src, "ssrc", h.SSRC)
	case h.SSRC != s.latchSSRC:
		if now-s.lastSSRCAt < ssrcSwitchQuiet {
			s.mu.Unlock()
			s.drop(dropWrongSSRC)
			return
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
	if isAudio {
		s.rx.updateJitter(h.Timestamp, now, s.codec.ClockRate)
	}
	alaw := s.codec.isALaw()
	s.mu.Unlock()

	s.lastRx.Store(int64(now))
	s.packetsIn.Add(1)
	s.bytesIn.Add(uint64(wireLen))
	s.m.received(wireLen)

	if restart {
		s.flushJitter()
	}
	kind := slotAudio
	if isDTMF {
		kind = slotSkip // keeps the sequence contiguous for the audio
		if err := s.recv.dtmf.packet(p.Payload, h.Timestamp, now, s.recv.onDTMF); err != nil {
			s.drop(dropMalformed)
		}
	}
	jb := s.recv.jb
	switch jb.push(h.SequenceNumber, kind, alaw, p.Payload, now) {
	case pushLate, pushDuplicate:
		s.drop(dropLate)
	case pushResync:
		s.flushJitter()
		jb.push(h.SequenceNumber, kind, alaw, p.Payload, now)
	}
	s.playout(now)
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
	jb.drain(s.deliverSlotFn)
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
}

// deliver decodes a payload and hands it to OnAudio in 20 ms frames,
// whatever the peer's ptime.
func (s *Session) deliver(slot *jbSlot) {
	if slot.kind != slotAudio || s.cfg.OnAudio == nil {
		return
	}
	r := &s.recv
	decodeFrame(slot.alaw, r.pcm[r.pcmN:], slot.payload[:slot.n])
	r.pcmN += slot.n
	off := 0
	for r.pcmN-off >= FrameSamples {
		s.cfg.OnAudio(r.pcm[off : off+FrameSamples])
		off += FrameSamples
	}
	if off > 0 {
		r.pcmN = copy(r.pcm[:], r.pcm[off:r.pcmN])
	}
}

func (s *Session) reportDTMF(ev DTMFEvent) {
	s.dtmfEvents.Add(1)
	s.m.dtmfEvent()
	s.log.Debug("dtmf", "digit", string(ev.Digit), "duration", ev.Duration)
	if s.cfg.OnDTMF != nil {
		s.cfg.OnDTMF(ev)
	}
}

// ---- send path ----

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

func (s *Session) sendFrame(frame uint64) {
	st := &s.send
	ts := s.tsBase + uint32(frame)*FrameSamples

	s.mu.Lock()
	dest := s.remote
	canSend := s.canSendLocked()
	codec := s.codec
	dtmfPT := s.dtmfPT
	s.mu.Unlock()

	var pcm []int16
	talk := false
	if s.cfg.Source != nil {
		pcm, talk = s.cfg.Source()
	}
	if !canSend {
		st.sending = false
		st.dtmf.active = false
		return
	}

	payload := st.buf[rtpHeaderLen:]
	var n int
	var marker bool
	pt := codec.PayloadType
	if !st.dtmf.active && dtmfPT != 0 {
		select {
		case ev := <-s.dtmfQ:
			code, _ := digitEvent(ev.Digit)
			st.dtmf.start(ev, code, ts)
		default:
		}
	}
	if st.dtmf.active && dtmfPT != 0 {
		ts, marker = st.dtmf.next(payload)
		n, pt = 4, dtmfPT
	} else {
		st.dtmf.active = false
		n = FrameSamples
		if !talk {
			pcm = st.silence[:]
		}
		if len(pcm) >= FrameSamples {
			encodeFrame(codec, payload[:FrameSamples], pcm[:FrameSamples])
		} else {
			encodeFrame(codec, payload[:len(pcm)], pcm)
			encodeFrame(codec, payload[len(pcm):FrameSamples], st.silence[len(pcm):])
		}
		// RFC 3551 §4.1: marker on the first packet of a talkspurt.
		marker = !st.sentAny || !st.sending || st.gap || (talk && !st.talking)
		st.talking = talk
		st.gap = false
	}

	h := rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: st.seq, Timestamp: ts, SSRC: s.ssrc}
	hn, err := h.MarshalTo(st.buf[:])
	if err != nil {
		return
	}
	pkt := st.buf[:hn+n]
	if hn != rtpHeaderLen {
		copy(st.buf[hn:], payload[:n])
	}
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
	s.m.sent(len(pkt))
}
