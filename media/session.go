package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The session's code is split by concern: this file is its lifecycle
// (configuration, Start, Update, Close, Stats), engine.go what runs it
// every frame, receive.go the receive path (RTP in, payload routing,
// jitter buffer, OnAudio/OnDTMF, the RTP timeout), send.go the send path
// (Source, DTMF, RTP out) and rtcp.go RTCP.

const (
	frameDuration = 20 * time.Millisecond
	// maxCatchUp bounds how many frames the pacer sends in one go after it
	// was scheduled late; older frames are skipped rather than burst out.
	maxCatchUp = 2
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
	// CNPayloadType is the negotiated comfort noise (RFC 3389) payload
	// type, 0 if none: CN packets then count as the caller's media, and
	// OnAudio receives silence until the voice resumes.
	CNPayloadType uint8
	// RemoteDirection is the peer's SDP direction; empty means sendrecv.
	RemoteDirection Direction
	// LocalKey and RemoteKey make the session SRTP (RFC 3711, SDES keys
	// from the SDP): ours protects what we send (RTP and RTCP), the peer's
	// authenticates and decrypts what we receive. Both or neither.
	LocalKey, RemoteKey *SRTPKey

	// OnAudio receives caller audio, decoded, in order, one 20 ms frame per
	// call, from the engine goroutine that runs the session (OnAudio,
	// OnDTMF and Source must not block: other sessions share it), at the
	// codec's own rate: 320 samples
	// (16 kHz) for G.722, 160 (8 kHz) for G.711. Nothing is resampled on
	// the way in; a consumer wanting another rate converts once. The slice
	// is reused after return.
	OnAudio func(pcm []int16)
	// OnDTMF is called once per RFC 4733 event, from the same goroutine as OnAudio.
	OnDTMF func(DTMFEvent)
	// Source is pulled every 20 ms; false sends silence. It returns one
	// 20 ms frame at 8 or 16 kHz, which its length tells (FrameRate): a
	// frame at the codec's rate is encoded as it is, one at the other rate
	// is resampled first, a short one padded with silence.
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
	Codec                 Codec          // the negotiated codec, now
	SSRC, RemoteSSRC      uint32

	RTCPIn, RTCPOut    uint64
	RemoteReport       bool    // a report about our stream has arrived
	RemoteFractionLost float64 // 0..1, from the peer's last report
	RemotePacketsLost  int64
	RemoteJitter       time.Duration
}

// Session is one bidirectional RTP stream with its RTCP. Once started, the
// media engine (engine.go) runs it every 20 ms: RTP in, jitter buffer,
// OnAudio/OnDTMF and the timeout; Source and RTP out; RTCP reports in and
// out. It has no goroutine of its own.
type Session struct {
	cfg    SessionConfig
	log    *slog.Logger
	m      *Metrics
	conn   *Socket
	rconn  *Socket
	epoch  time.Time // monotonic base for all durations below
	ssrc   uint32
	tsBase uint32
	cname  string

	// mu guards the negotiated state (Update) and the latched peer, which
	// the engine reads while the API (Update, Stats) changes or reads them.
	mu        sync.Mutex
	sdpRemote netip.AddrPort
	remote    netip.AddrPort // sdpRemote until latched, then the latched source
	latched   bool
	// The audio stream of the latched peer: its SSRC (set by the first
	// packet after latching) and when it last sent; rx is its RFC 3550
	// receiver state.
	audioPinned bool
	latchSSRC   uint32
	lastSSRCAt  time.Duration
	rx          rxStats
	codec       Codec
	dtmfPT      uint8
	cnPT        uint8
	mux         payloadMux // received payload type -> handler, from the fields above
	remoteDir   Direction
	rtcpRemote  netip.AddrPort // source of the peer's RTCP (symmetric RTCP)
	lastSR      uint32         // middle bits of the peer's last SR NTP time
	lastSRAt    time.Duration
	peer        struct {
		have     bool
		fraction uint8
		lost     int64
		jitter   uint32
	}
	err     error
	started bool
	closed  bool

	lastRx atomic.Int64 // ns since epoch: last accepted packet, start, or end of hold
	// keys is the current SRTP key generation (nil: plain RTP). Each path
	// (RTP in, RTP out, RTCP) follows it with its own contexts, so Update
	// can rekey without locking the packet paths.
	keys atomic.Pointer[srtpKeys]
	counters

	stop               chan struct{}
	stopOnce, doneOnce sync.Once
	done               chan struct{}
	dtmfQ              chan DTMFEvent
	recv               receiver
	send               sender
	rtcpSRTP           rtcpSRTP
	rtcpNext           time.Time // when the next report is due
	frames             uint32    // frames serviced, for the RTCP poll
	finalOnce          sync.Once
}

// NewSession validates cfg and prepares a session; nothing runs until Start.
func NewSession(cfg SessionConfig) (*Session, error) {
	if cfg.Ports == nil || cfg.Ports.RTP == nil || cfg.Ports.RTCP == nil {
		return nil, errors.New("media: session needs ports")
	}
	if !cfg.Codec.supported() {
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
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		dtmfQ:     make(chan DTMFEvent, dtmfQueueLen),
	}
	s.negotiatedLocked(cfg.Codec, cfg.DTMFPayloadType, cfg.CNPayloadType, cfg.RemoteDirection)
	if s.cname == "" {
		s.cname = fmt.Sprintf("%08x@handoff", rand.Uint32())
	}
	s.keys.Store(keys)
	s.recv.init(s, cfg.JitterDepth)
	s.send.seq = uint16(rand.Uint32())
	return s, nil
}

func (s *Session) since() time.Duration { return time.Since(s.epoch) }

// Start hands the session to the media engine, which sends its first
// frame within 20 ms. The RTP timeout counts from here. Start after Close
// does nothing.
func (s *Session) Start() {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()

	s.lastRx.Store(int64(s.since()))
	s.rtcpNext = time.Now().Add(s.rtcpInterval())
	s.mu.Lock()
	codec := s.codec
	s.mu.Unlock()
	s.m.sessionStarted(&s.counters, codec)
	s.log.Debug("media started", "codec", codec.Name, "sample_rate", codec.SampleRate())
	mediaEngine.start(s)
}

// Done is closed when the session has stopped (timeout or Close) and the
// engine has sent its last RTCP.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns ErrRTPTimeout if the session ended for lack of RTP, else nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// SampleRate is the rate of the audio OnAudio delivers and the pacer
// encodes now: the negotiated codec's (16000 for G.722, 8000 for G.711).
// Each frame also says its rate by its length (FrameRate).
func (s *Session) SampleRate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codec.SampleRate()
}

// LocalPort is the RTP port we receive on.
func (s *Session) LocalPort() int { return s.cfg.Ports.Port }

// Close stops the session and waits (up to a frame) for the engine to
// retire it. It does not close the sockets: the caller releases the Ports
// to the pool. It must not be called from the session's own callbacks.
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
}

// shutdown tells the engine to retire the session at its next frame.
func (s *Session) shutdown(err error) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.stop)
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

// finish hands the final counts to the process metrics once the engine
// has retired the session (loss and jitter were accounted by the final
// RTCP report).
func (s *Session) finish() {
	s.finalOnce.Do(func() { s.m.sessionEnded(&s.counters) })
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
		s.latched, s.audioPinned = false, false
		s.rtcpRemote = netip.AddrPort{}
	}
	codec := s.codec
	if n.Codec.supported() {
		codec = n.Codec
	}
	s.negotiatedLocked(codec, n.DTMFPayloadType, n.CNPayloadType, n.RemoteDirection)
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

// negotiatedLocked takes the payload types and direction of a negotiation
// and rebuilds the receive routing from them.
func (s *Session) negotiatedLocked(codec Codec, dtmfPT, cnPT uint8, dir Direction) {
	s.codec, s.dtmfPT, s.cnPT = codec, dtmfPT, cnPT
	s.remoteDir = dir
	if s.remoteDir == "" {
		s.remoteDir = SendRecv
	}
	s.mux = newPayloadMux(codec, dtmfPT, cnPT)
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
		PacketsLate:    s.drops[dropLate].Load(),
		PacketsSkipped: s.skipped.Load(),
		DTMFEvents:     s.dtmfEvents.Load(),
		RTCPIn:         s.rtcpIn.Load(),
		RTCPOut:        s.rtcpOut.Load(),
		SSRC:           s.ssrc,
	}
	for r := range s.drops {
		if dropReason(r) != dropLate {
			st.PacketsDropped += s.drops[r].Load()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Latched = s.latched
	st.Remote = s.remote
	st.Codec = s.codec
	if s.audioPinned { // latched, and the audio has an SSRC
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

// drop counts a refused packet under its reason.
func (s *Session) drop(r dropReason) { s.drops[r].Add(1) }
