// Package refagent is the reference agent for Handoff's WebSocket link
// (docs/agent-protocol.md): a WebSocket server that behaves like the
// built-in loopback agent. It plays an optional greeting tone, echoes the
// caller, collects DTMF digits and finishes with handoff.complete on '#'
// (SYSTEM) or '0' (AGENT). Speaking over the greeting interrupts it with
// clear (barge-in). cmd/handoff-agent serves it; the end-to-end tests run
// Handoff against it.
package refagent

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/media"
)

// Options configure the reference agent.
type Options struct {
	// Greeting is how long the greeting tone lasts (0: no greeting).
	Greeting time.Duration
	// BargeInLevel is the RMS level of caller audio that interrupts the
	// greeting (default 1000; full scale is 32767).
	BargeInLevel float64
	// Token, if set, must arrive as "Authorization: Bearer <Token>".
	Token  string
	Logger *slog.Logger
}

// Server is the reference agent, an http.Handler.
type Server struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	conns  map[*websocket.Conn]struct{}
	wg     sync.WaitGroup
}

// New returns a reference agent.
func New(opts Options) *Server {
	if opts.BargeInLevel <= 0 {
		opts.BargeInLevel = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, conns: map[*websocket.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close ends every session with close code 1001 (going away) and waits
// for them. Stop the HTTP server from accepting first.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	var wg sync.WaitGroup
	for c := range s.conns {
		wg.Go(func() { _ = c.Close(websocket.StatusGoingAway, "agent shutting down") })
	}
	s.mu.Unlock()
	wg.Wait()
	s.cancel()
	s.wg.Wait()
}

// ServeHTTP accepts one WebSocket per call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token != "" {
		want := "Bearer " + s.opts.Token
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close(websocket.StatusGoingAway, "agent shutting down")
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	c.SetReadLimit(1 << 20)
	sess := &session{s: s, c: c, log: s.opts.Logger}
	err = sess.run()
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		sess.log.Debug("call ended", "stream_sid", sess.streamSid)
	default:
		if s.ctx.Err() == nil { // run always ends with an error
			sess.log.Info("call ended", "stream_sid", sess.streamSid, "err", err)
		}
	}
}

// Messages, as far as the reference agent reads them.
type inMsg struct {
	Event string `json:"event"`
	Start *struct {
		StreamSid        string            `json:"streamSid"`
		CustomParameters map[string]string `json:"customParameters"`
		MediaFormat      struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sampleRate"`
		} `json:"mediaFormat"`
	} `json:"start"`
	Media *struct {
		Track   string `json:"track"`
		Payload string `json:"payload"`
	} `json:"media"`
	DTMF *struct {
		Digit string `json:"digit"`
	} `json:"dtmf"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
}

const greetingMark = "greeting"

type session struct {
	s         *Server
	c         *websocket.Conn
	log       *slog.Logger
	streamSid string
	task      string
	encoding  string
	rate      int
	greeting  bool // the greeting is playing (its mark has not come back)
	digits    []rune
	finished  bool
	listening bool // handoff.listenOnly: the call is bridged, stay quiet
}

func (x *session) run() error {
	for {
		_, b, err := x.c.Read(context.Background())
		if err != nil {
			return err
		}
		var m inMsg
		if err := json.Unmarshal(b, &m); err != nil {
			continue
		}
		if err := x.handle(&m); err != nil {
			return err
		}
	}
}

func (x *session) handle(m *inMsg) error {
	switch m.Event {
	case "start":
		if m.Start == nil {
			return nil
		}
		x.streamSid = m.Start.StreamSid
		x.task = m.Start.CustomParameters["taskName"]
		x.encoding, x.rate = m.Start.MediaFormat.Encoding, m.Start.MediaFormat.SampleRate
		x.log = x.log.With("stream_sid", x.streamSid, "transfer_id", m.Start.CustomParameters["transferId"])
		x.log.Debug("call started", "format", x.encoding, "rate", x.rate)
		if x.s.opts.Greeting > 0 {
			x.greeting = true
			return x.sendGreeting()
		}
	case "media":
		if m.Media == nil || m.Media.Track == "outbound" || x.finished || x.listening {
			return nil
		}
		payload, err := base64.StdEncoding.DecodeString(m.Media.Payload)
		if err != nil {
			return nil
		}
		if x.greeting {
			if x.level(payload) >= x.s.opts.BargeInLevel {
				x.greeting = false // the caller talks over it: stop at once
				return x.send(map[string]string{"event": "clear", "streamSid": x.streamSid})
			}
			return nil
		}
		return x.send(map[string]any{"event": "media", "streamSid": x.streamSid, "media": map[string]string{"payload": m.Media.Payload}})
	case "mark":
		if m.Mark != nil && m.Mark.Name == greetingMark {
			x.greeting = false
		}
	case "dtmf":
		if m.DTMF == nil || x.finished || len(m.DTMF.Digit) != 1 {
			return nil
		}
		switch d := rune(m.DTMF.Digit[0]); d {
		case '#':
			return x.complete("SYSTEM", "caller_pressed_hash")
		case '0':
			return x.complete("AGENT", "caller_pressed_zero")
		default:
			x.digits = append(x.digits, d)
		}
	case "handoff.listenOnly":
		x.listening = true
	case "stop":
		return x.c.Close(websocket.StatusNormalClosure, "stopped")
	}
	return nil
}

// complete finishes the conversation like the loopback agent does. The
// socket stays open: after an INVITE return the call keeps streaming.
func (x *session) complete(transferType, reason string) error {
	x.finished = true
	task := x.task
	if task == "" {
		task = "refagent"
	}
	x.log.Info("conversation complete", "transfer_type", transferType, "digits", string(x.digits))
	return x.send(map[string]any{
		"event":     "handoff.complete",
		"streamSid": x.streamSid,
		"outputContext": map[string]any{
			"transferType":       transferType,
			"currentTaskName":    task,
			"referenceVariables": map[string]string{"reason": reason},
			"transferVariables":  map[string]string{"digits": string(x.digits)},
		},
	})
}

func (x *session) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(x.s.ctx, 5*time.Second)
	defer cancel()
	return x.c.Write(ctx, websocket.MessageText, b)
}

// sendGreeting sends the greeting tone in 100 ms messages, then a mark.
func (x *session) sendGreeting() error {
	rate := x.rate
	if rate == 0 {
		rate = 8000
	}
	n := int(x.s.opts.Greeting.Seconds() * float64(rate))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(6000 * math.Sin(2*math.Pi*440*float64(i)/float64(rate)))
	}
	chunk := rate / 10
	for off := 0; off < n; off += chunk {
		payload := x.encode(pcm[off:min(off+chunk, n)])
		if err := x.send(map[string]any{"event": "media", "streamSid": x.streamSid,
			"media": map[string]string{"payload": base64.StdEncoding.EncodeToString(payload)}}); err != nil {
			return err
		}
	}
	return x.send(map[string]any{"event": "mark", "streamSid": x.streamSid, "mark": map[string]string{"name": greetingMark}})
}

func (x *session) encode(pcm []int16) []byte {
	if x.encoding == "audio/l16" {
		out := make([]byte, 0, 2*len(pcm))
		for _, s := range pcm {
			out = binary.LittleEndian.AppendUint16(out, uint16(s))
		}
		return out
	}
	out := make([]byte, len(pcm))
	media.EncodeULaw(out, pcm)
	return out
}

// level is the RMS of a payload in the call's format.
func (x *session) level(payload []byte) float64 {
	var pcm []int16
	if x.encoding == "audio/l16" {
		for i := 0; i+1 < len(payload); i += 2 {
			pcm = append(pcm, int16(binary.LittleEndian.Uint16(payload[i:])))
		}
	} else {
		pcm = make([]int16, len(payload))
		media.DecodeULaw(pcm, payload)
	}
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}
