package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/transfer"
)

const (
	// controlQueue bounds DTMF, mark echoes and other small messages waiting.
	controlQueue = 256
	// maxMarks bounds the marks waiting for their audio to play out.
	maxMarks = 4096
	// stopTimeout bounds the goodbye (stop and close frames) at the end of a call.
	stopTimeout = time.Second
)

// defaultHTTPClient dials handshakes without proxies or connection reuse,
// and hands each session its TCP connection (see rawConn).
var defaultHTTPClient = &http.Client{Transport: &http.Transport{
	DisableKeepAlives: true,
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if h, ok := ctx.Value(rawConnKey{}).(*rawConn); ok && err == nil {
			h.set(c)
		}
		return c, err
	},
}}

// rawConn is a session's TCP connection, known when the default HTTP
// client dialled it: closing it is the last resort to end a close
// handshake the agent does not answer.
type rawConn struct {
	mu sync.Mutex
	c  net.Conn
}

type rawConnKey struct{}

func (r *rawConn) set(c net.Conn) {
	r.mu.Lock()
	r.c = c
	r.mu.Unlock()
}

func (r *rawConn) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c != nil {
		_ = r.c.Close()
	}
}

// Open implements Pipeline: it connects to the agent (bounded by
// ConnectTimeout and ctx) and starts the session's reader, writer and
// pinger. An error means the agent is unreachable; the call is rejected.
func (w *WebSocket) Open(ctx context.Context, info CallInfo) (Session, error) {
	cfg := w.withDefaults()
	if !cfg.Format.valid() {
		return nil, fmt.Errorf("agent: unsupported format %v", cfg.Format)
	}
	raw := &rawConn{}
	conn, err := cfg.dial(ctx, raw)
	if err != nil {
		return nil, err
	}
	s := newWSSession(cfg, conn, raw, info)
	if cfg.TwilioAPI != nil {
		cfg.TwilioAPI.add(s) // before start announces the callSid
	}
	cfg.Metrics.active.Inc()
	go s.writer()
	s.wg.Add(1)
	go s.reader()
	if cfg.PingInterval > 0 {
		s.wg.Add(1)
		go s.pinger()
	}
	if cfg.MaxDuration > 0 {
		s.startMaxTimer()
	}
	s.log.Debug("agent connected", "format", cfg.Format.String(), "call_sid", s.callSid)
	return s, nil
}

// dial opens the WebSocket, bounded by ConnectTimeout, and counts a
// failure by its reason.
func (cfg WebSocket) dial(ctx context.Context, raw *rawConn) (*websocket.Conn, error) {
	hdr := cfg.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if cfg.Token != "" {
		hdr.Set("Authorization", "Bearer "+cfg.Token)
	}
	dctx, cancel := context.WithTimeout(context.WithValue(ctx, rawConnKey{}, raw), cfg.ConnectTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, cfg.URL, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: cfg.HTTPClient})
	if err != nil {
		reason := "error"
		switch {
		case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
			reason = "rejected"
			err = fmt.Errorf("handshake answered %s", resp.Status)
		case dctx.Err() != nil && ctx.Err() == nil:
			reason = "timeout"
			err = fmt.Errorf("no handshake within %s", cfg.ConnectTimeout)
		}
		cfg.Metrics.connectFailures.WithLabelValues(reason).Inc()
		// net/http's error names the URL with its query: keep only its
		// cause, the redacted URL prefixes it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("agent %s: %w", RedactURL(cfg.URL), err)
	}
	// Handoff enforces its own limit so that an oversized message is
	// skipped rather than fatal to the connection.
	conn.SetReadLimit(-1)
	return conn, nil
}

// newWSSession is a session on conn in its first state, talking; Open
// starts its goroutines.
func newWSSession(cfg WebSocket, conn *websocket.Conn, raw *rawConn, info CallInfo) *wsSession {
	s := &wsSession{
		cfg:        cfg,
		m:          cfg.Metrics,
		conn:       conn,
		raw:        raw,
		info:       info,
		streamSid:  "MZ" + randomHex(16),
		callSid:    callSidFor(info),
		started:    time.Now(),
		audio:      make(chan audioFrame, cfg.SendQueue),
		ctrl:       make(chan ctrlMsg, controlQueue),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		frame:      cfg.Format.frameSamples(),
		play:       newPlayout(int(cfg.PlayoutBuffer/(20*time.Millisecond)) * cfg.Format.frameSamples()),
	}
	s.log = cfg.Logger.With("transfer_id", info.TransferID, "call_id", info.CallID,
		"agent_url", RedactURL(cfg.URL), "stream_sid", s.streamSid)
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// audioFrame is one 20 ms frame of call audio waiting for the socket.
type audioFrame struct {
	track Track
	chunk int64
	tsMs  int64
	at    time.Time
	n     int
	pcm   [WideFrameSamples]int16 // n samples: 8 or 16 kHz, as the leg's codec delivers
}

// ctrlMsg is a small message waiting for the socket.
type ctrlMsg struct {
	event string
	name  string // mark
	digit rune   // dtmf
	dur   time.Duration
}

// wsSession is one call on the WebSocket link. Whether it is alive is its
// state (wsstate.go), changed only by transitionLocked.
type wsSession struct {
	cfg       WebSocket
	m         *Metrics
	log       *slog.Logger
	conn      *websocket.Conn
	raw       *rawConn
	info      CallInfo
	streamSid string
	callSid   string
	started   time.Time

	// stopCtx is cancelled on entering closing or closed: the writer says
	// goodbye and returns, the pinger returns.
	stopCtx context.Context
	stop    context.CancelFunc
	// abortCtx bounds every write; Close cancels it when the goodbye takes
	// longer than stopTimeout (a stuck socket).
	abortCtx   context.Context
	abort      context.CancelFunc
	writerDone chan struct{}
	wg         sync.WaitGroup // reader and pinger

	audio chan audioFrame
	ctrl  chan ctrlMsg

	chunks [2]atomic.Int64 // per track: inbound, outbound
	st     atomic.Uint32   // wsState; written under mu only

	closeOnce sync.Once

	mu sync.Mutex
	// play holds the agent's audio at the format's rate, frame samples a
	// 20 ms frame.
	play       playout
	frame      int
	stampAt    int64 // playout position of the first sample that arrived to an empty queue
	stampT     time.Time
	stamped    bool
	out        [WideFrameSamples]int16
	listenOnly bool
	// outcome is the agent's outcome: waiting for its goodbye to play out
	// while finishing (at playout position pendingAt), final once finished.
	outcome   transfer.OutputContext
	endReason string
	pendingAt int64
	done      chan struct{} // closed on entering finished
	// completeTimer finishes a finishing conversation whose goodbye the
	// pacer never plays; maxTimer is MaxDuration. Both stop on finishing.
	completeTimer *time.Timer
	maxTimer      *time.Timer
	markBuf       []string
}

// PushAudio implements Session: it copies the frame into the bounded send
// queue, dropping the oldest frame if the socket has fallen behind.
func (s *wsSession) PushAudio(track Track, frame []int16) {
	f := audioFrame{track: track, at: time.Now()}
	f.n = copy(f.pcm[:], frame)
	f.tsMs = f.at.Sub(s.started).Milliseconds()
	if s.gone() {
		return
	}
	idx := 0
	if track == TrackDestination {
		idx = 1
	}
	f.chunk = s.chunks[idx].Add(1)
	for range 2 {
		select {
		case s.audio <- f:
			return
		default:
		}
		select {
		case <-s.audio: // drop the oldest: real time matters more than history
			s.m.drops.WithLabelValues(dropSendQueue).Inc()
		default:
		}
	}
	s.m.drops.WithLabelValues(dropSendQueue).Inc()
}

// PushDTMF implements Session.
func (s *wsSession) PushDTMF(d DTMF) {
	if s.gone() {
		return
	}
	s.sendCtrl(ctrlMsg{event: evDTMF, digit: d.Digit, dur: d.Duration})
}

func (s *wsSession) sendCtrl(c ctrlMsg) {
	select {
	case s.ctrl <- c:
	default:
		s.m.drops.WithLabelValues(dropControlQueue).Inc()
	}
}

// NextFrame implements Session: the next 20 ms of agent audio, never
// blocking. A trailing part of a frame is played, padded with silence, one
// tick after it is found alone.
func (s *wsSession) NextFrame() ([]int16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.play
	if s.listenOnly || p.n == 0 {
		return nil, false
	}
	if p.n < s.frame && !p.partialWait {
		p.partialWait = true
		return nil, false
	}
	p.partialWait = false
	out := s.out[:s.frame]
	n := p.pop(out)
	clear(out[n:])
	if s.stamped && p.played > s.stampAt {
		s.stamped = false
		s.m.downlink.Observe(time.Since(s.stampT).Seconds())
	}
	s.afterPlayLocked()
	return out, true
}

// afterPlayLocked echoes the marks the playout has reached and finishes a
// pending handoff.complete whose audio has played.
func (s *wsSession) afterPlayLocked() {
	s.markBuf = s.play.reached(s.markBuf[:0])
	for _, name := range s.markBuf {
		s.sendCtrl(ctrlMsg{event: evMark, name: name})
	}
	if s.state() == stateFinishing && s.play.played >= s.pendingAt {
		s.transitionLocked(stateFinished, ending{s.outcome, ReasonComplete})
	}
}

// dropPlayoutLocked empties the playout queue (clear, listen-only) and
// echoes every waiting mark, as Twilio does on clear.
func (s *wsSession) dropPlayoutLocked() {
	n := s.play.drop()
	if n > 0 {
		s.m.clearedFrames.Add(s.frames(n))
	}
	s.stamped = false
	s.afterPlayLocked()
}

// Done implements Session.
func (s *wsSession) Done() <-chan struct{} { return s.done }

// Result implements Session: the outcome once Done is closed.
func (s *wsSession) Result() transfer.OutputContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finished() {
		return transfer.OutputContext{}
	}
	return s.outcome
}

// ListenOnly implements Session: queued agent audio is dropped, further
// agent audio is ignored, and the agent is told with handoff.listenOnly.
func (s *wsSession) ListenOnly() {
	s.mu.Lock()
	if s.listenOnly {
		s.mu.Unlock()
		return
	}
	s.listenOnly = true
	s.dropPlayoutLocked()
	s.mu.Unlock()
	s.sendCtrl(ctrlMsg{event: evListenOnly})
}

// Close implements Session: it sends stop, closes the socket and waits for
// the session's goroutines. With an agent that does not answer the close
// handshake it may take a few seconds.
func (s *wsSession) Close() {
	s.closeOnce.Do(func() {
		// The hang-up endpoint no longer finds the call.
		if s.cfg.TwilioAPI != nil {
			s.cfg.TwilioAPI.remove(s.callSid, s)
		}
		// Enter closing (closed if the link is already gone): pushes are
		// ignored, the timers stop, a conversation still running counts
		// as call_ended, and stopCtx tells the writer to say goodbye.
		s.mu.Lock()
		if !s.transitionLocked(stateClosing, ending{}) {
			s.transitionLocked(stateClosed, ending{})
		}
		s.mu.Unlock()
		// The goodbye (stop, then the close handshake) gets stopTimeout;
		// a write still stuck after that is aborted.
		t := time.AfterFunc(stopTimeout, s.abort)
		<-s.writerDone
		t.Stop()
		s.abort()
		// Drop the connection, which ends the reader's read, and wait for
		// the reader and the pinger.
		_ = s.conn.CloseNow()
		s.wg.Wait()
		s.m.active.Dec()
	})
}
