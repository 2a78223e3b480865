package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

// WebSocket is the pipeline for external agents: one WebSocket per call,
// speaking the Twilio Media Streams JSON events plus Handoff's extensions
// (docs/agent-protocol.md). The zero values of the optional fields are the
// documented defaults.
type WebSocket struct {
	// URL is the agent's ws:// or wss:// endpoint.
	URL string
	// Header is sent with every handshake (e.g. an API key header).
	Header http.Header
	// Token, if set, is sent as "Authorization: Bearer <Token>". It is
	// never logged.
	Token string
	// ConnectTimeout bounds the TCP, TLS and WebSocket handshakes (3s).
	ConnectTimeout time.Duration
	// Format is the audio format both ways (FormatMulaw).
	Format Format
	// FallbackTransferType is the outputContext.transferType when the agent
	// goes away without handoff.complete ("AGENT": a human takes over).
	FallbackTransferType string
	// MaxDuration, if positive, finishes a conversation still running after
	// it with the fallback and reason max_duration.
	MaxDuration time.Duration
	// PingInterval is how often Handoff pings the agent (5s); a ping not
	// answered within ResponseTimeout ends the conversation with the
	// fallback and reason agent_unresponsive. Negative disables pings.
	PingInterval time.Duration
	// ResponseTimeout bounds a pong's wait and any one write (10s).
	ResponseTimeout time.Duration
	// SendQueue is how many 20 ms frames of call audio may wait for the
	// socket (50, one second); beyond it the oldest are dropped.
	SendQueue int
	// PlayoutBuffer is how much agent audio may wait for the pacer (60s);
	// audio beyond it is dropped.
	PlayoutBuffer time.Duration
	// MaxMessageBytes is the largest agent message accepted (256 KiB);
	// larger ones are skipped and counted as malformed.
	MaxMessageBytes int64
	// HTTPClient dials the handshake; the default has no proxy and no
	// connection reuse.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Metrics    *Metrics
}

// Defaults of the WebSocket fields.
const (
	DefaultConnectTimeout  = 3 * time.Second
	DefaultPingInterval    = 5 * time.Second
	DefaultResponseTimeout = 10 * time.Second
	DefaultSendQueue       = 50
	DefaultPlayoutBuffer   = 60 * time.Second
	DefaultMaxMessageBytes = 256 << 10
)

// Reasons a conversation ends, recorded as outputContext.referenceVariables.reason
// on the fallback and counted in handoff_agent_sessions_ended_total.
const (
	ReasonComplete          = "complete"
	ReasonAgentClosed       = "agent_closed"       // the agent closed the socket without handoff.complete
	ReasonAgentDisconnected = "agent_disconnected" // the connection broke
	ReasonAgentUnresponsive = "agent_unresponsive" // no pong, or a write stuck, for ResponseTimeout
	ReasonMaxDuration       = "max_duration"       // the conversation outlasted MaxDuration
	reasonCallEnded         = "call_ended"
)

const (
	// controlQueue bounds DTMF, mark echoes and other small messages waiting.
	controlQueue = 256
	// maxMarks bounds the marks waiting for their audio to play out.
	maxMarks = 4096
	// stopTimeout bounds the goodbye (stop and close frames) at the end of a call.
	stopTimeout = time.Second
)

var defaultMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(nil) })

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

func (w WebSocket) withDefaults() WebSocket {
	if w.ConnectTimeout <= 0 {
		w.ConnectTimeout = DefaultConnectTimeout
	}
	if w.Format == (Format{}) {
		w.Format = FormatMulaw
	}
	if w.FallbackTransferType == "" {
		w.FallbackTransferType = TransferAgent
	}
	if w.PingInterval == 0 {
		w.PingInterval = DefaultPingInterval
	}
	if w.ResponseTimeout <= 0 {
		w.ResponseTimeout = DefaultResponseTimeout
	}
	if w.SendQueue <= 0 {
		w.SendQueue = DefaultSendQueue
	}
	if w.PlayoutBuffer <= 0 {
		w.PlayoutBuffer = DefaultPlayoutBuffer
	}
	if w.MaxMessageBytes <= 0 {
		w.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if w.HTTPClient == nil {
		w.HTTPClient = defaultHTTPClient
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Metrics == nil {
		w.Metrics = defaultMetrics()
	}
	return w
}

// redactURL is the URL as logs may show it: no user info, no query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Open implements Pipeline: it connects to the agent (bounded by
// ConnectTimeout and ctx) and starts the session's reader, writer and
// pinger. An error means the agent is unreachable; the call is rejected.
func (w *WebSocket) Open(ctx context.Context, info CallInfo) (Session, error) {
	cfg := w.withDefaults()
	m := cfg.Metrics
	if !cfg.Format.valid() {
		return nil, fmt.Errorf("agent: unsupported format %v", cfg.Format)
	}
	hdr := cfg.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if cfg.Token != "" {
		hdr.Set("Authorization", "Bearer "+cfg.Token)
	}
	raw := &rawConn{}
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
		m.connectFailures.WithLabelValues(reason).Inc()
		return nil, fmt.Errorf("agent %s: %w", redactURL(cfg.URL), err)
	}
	// Handoff enforces its own limit so that an oversized message is
	// skipped rather than fatal to the connection.
	conn.SetReadLimit(-1)

	s := &wsSession{
		cfg:       cfg,
		m:         m,
		conn:      conn,
		raw:       raw,
		info:      info,
		streamSid: "MZ" + randomHex(16),
		callSid:   info.CallID,
		started:   time.Now(),
		audio:     make(chan audioFrame, cfg.SendQueue),
		ctrl:      make(chan ctrlMsg, controlQueue),
		done:      make(chan struct{}),
		play:      newPlayout(int(cfg.PlayoutBuffer / (20 * time.Millisecond) * FrameSamples)),
	}
	if s.callSid == "" {
		s.callSid = info.TransferID
	}
	s.log = cfg.Logger.With("transfer_id", info.TransferID, "call_id", info.CallID, "agent_url", redactURL(cfg.URL), "stream_sid", s.streamSid)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	s.writerDone = make(chan struct{})
	m.active.Inc()
	go s.writer()
	s.wg.Add(1)
	go s.reader()
	if cfg.PingInterval > 0 {
		s.wg.Add(1)
		go s.pinger()
	}
	if cfg.MaxDuration > 0 {
		s.mu.Lock()
		s.maxTimer = time.AfterFunc(cfg.MaxDuration, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.finished && !s.closing {
				s.log.Info("agent conversation reached max_duration: fallback", "max_duration", cfg.MaxDuration)
				s.finishLocked(s.fallback(ReasonMaxDuration), ReasonMaxDuration)
			}
		})
		s.mu.Unlock()
	}
	s.log.Debug("agent connected", "format", cfg.Format.String())
	return s, nil
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
	pcm   [FrameSamples]int16
}

// ctrlMsg is a small message waiting for the socket.
type ctrlMsg struct {
	event string
	name  string // mark
	digit rune   // dtmf
	dur   time.Duration
}

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

	ctx    context.Context // cancelled by Close: the writer says goodbye
	cancel context.CancelFunc
	// abortCtx bounds every write; Close cancels it when the goodbye takes
	// longer than stopTimeout (a stuck socket).
	abortCtx   context.Context
	abort      context.CancelFunc
	writerDone chan struct{}
	wg         sync.WaitGroup // reader and pinger

	audio chan audioFrame
	ctrl  chan ctrlMsg

	chunks [2]atomic.Int64 // per track: inbound, outbound
	gone   atomic.Bool     // the connection is gone or closing: pushes are ignored

	closeOnce sync.Once

	mu         sync.Mutex
	play       playout
	stampAt    int64 // playout position of the first sample that arrived to an empty queue
	stampT     time.Time
	stamped    bool
	out        [FrameSamples]int16
	listenOnly bool
	dead       bool // the connection is gone
	closing    bool // Close has begun: connection errors are expected
	finished   bool
	endReason  string
	result     transfer.OutputContext
	done       chan struct{}
	// pending is a handoff.complete waiting for the audio queued before it
	// to play out; completeTimer makes sure it does not wait forever.
	pending       *transfer.OutputContext
	pendingAt     int64
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
	if s.gone.Load() {
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
	if s.gone.Load() {
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
	if p.n < FrameSamples && !p.partialWait {
		p.partialWait = true
		return nil, false
	}
	p.partialWait = false
	n := p.pop(s.out[:])
	clear(s.out[n:])
	if s.stamped && p.played > s.stampAt {
		s.stamped = false
		s.m.downlink.Observe(time.Since(s.stampT).Seconds())
	}
	s.afterPlayLocked()
	return s.out[:], true
}

// afterPlayLocked echoes the marks the playout has reached and finishes a
// pending handoff.complete whose audio has played.
func (s *wsSession) afterPlayLocked() {
	s.markBuf = s.play.reached(s.markBuf[:0])
	for _, name := range s.markBuf {
		s.sendCtrl(ctrlMsg{event: evMark, name: name})
	}
	if s.pending != nil && s.play.played >= s.pendingAt {
		s.finishLocked(*s.pending, ReasonComplete)
	}
}

// dropPlayoutLocked empties the playout queue (clear, listen-only) and
// echoes every waiting mark, as Twilio does on clear.
func (s *wsSession) dropPlayoutLocked() {
	n := s.play.drop()
	if n > 0 {
		s.m.clearedFrames.Add(float64((n + FrameSamples - 1) / FrameSamples))
	}
	s.stamped = false
	s.afterPlayLocked()
}

// Done implements Session.
func (s *wsSession) Done() <-chan struct{} { return s.done }

// Result implements Session.
func (s *wsSession) Result() transfer.OutputContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.result
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
		s.mu.Lock()
		s.closing = true
		s.gone.Store(true)
		if !s.finished {
			s.m.ended.WithLabelValues(reasonCallEnded).Inc()
		}
		if s.completeTimer != nil {
			s.completeTimer.Stop()
		}
		if s.maxTimer != nil {
			s.maxTimer.Stop()
		}
		s.mu.Unlock()
		s.cancel()
		t := time.AfterFunc(stopTimeout, s.abort)
		<-s.writerDone
		t.Stop()
		s.abort()
		_ = s.conn.CloseNow()
		s.wg.Wait()
		s.m.active.Dec()
	})
}

// finishLocked ends the conversation once.
func (s *wsSession) finishLocked(out transfer.OutputContext, reason string) {
	s.pending = nil
	if s.completeTimer != nil {
		s.completeTimer.Stop()
	}
	if s.finished {
		return
	}
	s.finished = true
	s.endReason = reason
	s.result = out
	if !s.closing {
		s.m.ended.WithLabelValues(reason).Inc()
	}
	close(s.done)
}

// fallback is the outcome when the agent goes away without finishing.
func (s *wsSession) fallback(reason string) transfer.OutputContext {
	return transfer.OutputContext{
		TransferType:       s.cfg.FallbackTransferType,
		CurrentTaskName:    s.info.Input.TaskName,
		ReferenceVariables: map[string]string{"reason": reason},
	}
}

// lose handles the end of the connection: the first caller's reason wins.
// A pending handoff.complete stands; otherwise the fallback applies.
func (s *wsSession) lose(reason string, err error) {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.dead = true
	s.gone.Store(true)
	if !s.closing {
		switch {
		case s.pending != nil:
			s.finishLocked(*s.pending, ReasonComplete)
		case !s.finished:
			s.log.Warn("agent link lost: fallback", "reason", reason, "err", err, "transfer_type", s.cfg.FallbackTransferType)
			s.finishLocked(s.fallback(reason), reason)
		default:
			s.log.Info("agent link ended", "reason", reason, "err", err)
		}
	}
	s.mu.Unlock()
	_ = s.conn.CloseNow()
}

// lostReason classifies a read or write error.
func lostReason(err error) string {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return ReasonAgentClosed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonAgentUnresponsive
	}
	return ReasonAgentDisconnected
}

func (s *wsSession) pinger() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ResponseTimeout)
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				if ctx.Err() != nil {
					s.lose(ReasonAgentUnresponsive, err)
				} else {
					s.lose(lostReason(err), err)
				}
			}
			return
		}
	}
}

// customParameters flattens the call's facts into Twilio's string map:
// inputVariables is one JSON-encoded string; X- headers keep their names.
func customParameters(info CallInfo) map[string]string {
	p := map[string]string{"transferId": info.TransferID}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("externalConversationId", info.ExternalConversationID)
	set("callId", info.CallID)
	set("from", info.From)
	set("to", info.To)
	set("taskName", info.Input.TaskName)
	if len(info.Input.InputVariables) > 0 {
		b, _ := json.Marshal(info.Input.InputVariables)
		p["inputVariables"] = string(b)
	}
	for k, v := range info.Headers {
		p[k] = v
	}
	return p
}
