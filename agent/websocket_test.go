package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

var quiet = slog.New(slog.DiscardHandler)

// wireMsg is any message Handoff sends, as the agent decodes it.
type wireMsg struct {
	Event          string `json:"event"`
	SequenceNumber string `json:"sequenceNumber"`
	StreamSid      string `json:"streamSid"`
	Protocol       string `json:"protocol"`
	Start          *struct {
		AccountSid       string            `json:"accountSid"`
		StreamSid        string            `json:"streamSid"`
		CallSid          string            `json:"callSid"`
		Tracks           []string          `json:"tracks"`
		CustomParameters map[string]string `json:"customParameters"`
		MediaFormat      struct {
			Encoding   string `json:"encoding"`
			SampleRate int    `json:"sampleRate"`
			Channels   int    `json:"channels"`
		} `json:"mediaFormat"`
		Handoff struct {
			TransferID   string                `json:"transferId"`
			InputContext transfer.InputContext `json:"inputContext"`
			Headers      map[string]string     `json:"headers"`
			Codec        *struct {
				Name       string `json:"name"`
				SampleRate int    `json:"sampleRate"`
			} `json:"codec"`
		} `json:"handoff"`
	} `json:"start"`
	Media *struct {
		Track     string `json:"track"`
		Chunk     string `json:"chunk"`
		Timestamp string `json:"timestamp"`
		Payload   string `json:"payload"`
	} `json:"media"`
	DTMF *struct {
		Track string `json:"track"`
		Digit string `json:"digit"`
	} `json:"dtmf"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark"`
	Stop *struct {
		CallSid string `json:"callSid"`
	} `json:"stop"`
}

func (m wireMsg) payload(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m.Media.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testAgent is an in-test agent server on loopback.
type testAgent struct {
	t     *testing.T
	srv   *httptest.Server
	conns chan *peer
	stop  chan struct{}
	// read is false for an agent that stops reading after the handshake.
	read bool
}

// peer is the agent's side of one session.
type peer struct {
	t      *testing.T
	c      *websocket.Conn
	header http.Header
	msgs   chan wireMsg
	closed chan error // the read loop's end
}

func newTestAgent(t *testing.T, read bool) *testAgent {
	t.Helper()
	a := &testAgent{t: t, conns: make(chan *peer, 16), stop: make(chan struct{}), read: read}
	var wg sync.WaitGroup
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		c.SetReadLimit(1 << 20)
		p := &peer{t: t, c: c, header: r.Header.Clone(), msgs: make(chan wireMsg, 100000), closed: make(chan error, 1)}
		a.conns <- p
		if !a.read {
			<-a.stop
			_ = c.CloseNow()
			p.closed <- nil
			return
		}
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				p.closed <- err
				return
			}
			var m wireMsg
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("Handoff sent invalid JSON %q: %v", b, err)
				continue
			}
			select {
			case p.msgs <- m:
			default:
				t.Error("test agent message buffer full")
			}
		}
	}))
	t.Cleanup(func() {
		close(a.stop)
		a.srv.Close()
		wg.Wait()
	})
	return a
}

func (a *testAgent) url() string { return "ws" + strings.TrimPrefix(a.srv.URL, "http") + "/agent" }

func (a *testAgent) pipeline(m *Metrics) *WebSocket {
	return &WebSocket{URL: a.url(), Logger: quiet, Metrics: m, ConnectTimeout: 2 * time.Second}
}

func (a *testAgent) peer() *peer {
	a.t.Helper()
	select {
	case p := <-a.conns:
		return p
	case <-time.After(5 * time.Second):
		a.t.Fatal("no connection reached the test agent")
		return nil
	}
}

var testInfo = CallInfo{
	TransferID:             "tr-1",
	ExternalConversationID: "conv-1",
	CallID:                 "call-1@host",
	From:                   "sip:alice@example.com",
	To:                     "sip:tr-1@handoff",
	Input:                  transfer.InputContext{TaskName: "Billing", InputVariables: map[string]string{"account": "42", "lang": "en"}},
	Headers:                map[string]string{"X-Customer-Tier": "gold"},
}

// openSession opens a session against a and returns it with the agent's
// side, after the connected and start messages.
func openSession(t *testing.T, a *testAgent, w *WebSocket) (*wsSession, *peer, wireMsg) {
	t.Helper()
	s, err := w.Open(context.Background(), testInfo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	p := a.peer()
	if m := p.next(); m.Event != "connected" || m.Protocol != "Call" {
		t.Fatalf("first message %+v, want connected", m)
	}
	start := p.next()
	if start.Event != "start" || start.Start == nil {
		t.Fatalf("second message %+v, want start", start)
	}
	return s.(*wsSession), p, start
}

func (p *peer) next() wireMsg {
	p.t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-time.After(5 * time.Second):
		p.t.Fatal("no message from Handoff")
		return wireMsg{}
	}
}

// nextEvent skips other events (media, mostly) until event.
func (p *peer) nextEvent(event string) wireMsg {
	p.t.Helper()
	for {
		if m := p.next(); m.Event == event {
			return m
		}
	}
}

func (p *peer) send(v any) {
	p.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			p.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) sendMedia(payload []byte) {
	p.t.Helper()
	p.send(map[string]any{"event": "media", "streamSid": "x", "media": map[string]string{"payload": base64.StdEncoding.EncodeToString(payload)}})
}

func (p *peer) sendMark(name string) {
	p.t.Helper()
	p.send(map[string]any{"event": "mark", "streamSid": "x", "mark": map[string]string{"name": name}})
}

var eventually = testenv.Eventually

// waitQueued waits until the playout queue holds n samples.
func waitQueued(t *testing.T, s *wsSession, n int) {
	t.Helper()
	eventually(t, "agent audio is queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.play.n >= n
	})
}

func waitDone(t *testing.T, s Session) transfer.OutputContext {
	t.Helper()
	select {
	case <-s.Done():
		return s.Result()
	case <-time.After(5 * time.Second):
		t.Fatal("the session did not finish")
		return transfer.OutputContext{}
	}
}

func ulawFrame(fill int16) ([]int16, []byte) {
	pcm := make([]int16, FrameSamples)
	for i := range pcm {
		pcm[i] = fill + int16(i*7)
	}
	enc := make([]byte, FrameSamples)
	media.EncodeULaw(enc, pcm)
	return pcm, enc
}

func TestWebSocketStartMessage(t *testing.T) {
	a := newTestAgent(t, true)
	w := a.pipeline(NewMetrics(nil))
	w.Token = "s3cret"
	w.Header = http.Header{"X-Api-Key": {"k1"}}
	_, p, start := openSession(t, a, w)

	if got := p.header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if got := p.header.Get("X-Api-Key"); got != "k1" {
		t.Errorf("X-Api-Key %q", got)
	}
	st := start.Start
	if start.SequenceNumber != "1" || !strings.HasPrefix(st.StreamSid, "MZ") || start.StreamSid != st.StreamSid {
		t.Errorf("start ids: seq %q streamSid %q/%q", start.SequenceNumber, start.StreamSid, st.StreamSid)
	}
	if st.CallSid != "call-1@host" || len(st.Tracks) != 1 || st.Tracks[0] != "inbound" {
		t.Errorf("callSid %q tracks %v", st.CallSid, st.Tracks)
	}
	if f := st.MediaFormat; f.Encoding != "audio/x-mulaw" || f.SampleRate != 8000 || f.Channels != 1 {
		t.Errorf("mediaFormat %+v", f)
	}
	want := map[string]string{
		"transferId":             "tr-1",
		"externalConversationId": "conv-1",
		"callId":                 "call-1@host",
		"from":                   "sip:alice@example.com",
		"to":                     "sip:tr-1@handoff",
		"from_number":            "alice",
		"to_number":              "tr-1",
		"taskName":               "Billing",
		"inputVariables":         `{"account":"42","lang":"en"}`,
		"X-Customer-Tier":        "gold",
	}
	for k, v := range want {
		if st.CustomParameters[k] != v {
			t.Errorf("customParameters[%s] = %q, want %q", k, st.CustomParameters[k], v)
		}
	}
	if len(st.CustomParameters) != len(want) {
		t.Errorf("customParameters %v", st.CustomParameters)
	}
	if h := st.Handoff; h.TransferID != "tr-1" || h.InputContext.InputVariables["account"] != "42" || h.Headers["X-Customer-Tier"] != "gold" {
		t.Errorf("start.handoff %+v", h)
	}
}

func TestWebSocketStopOnClose(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	s, p, _ := openSession(t, a, a.pipeline(m))
	if v := value(m.active); v != 1 {
		t.Errorf("sessions active %v", v)
	}
	s.Close()
	stop := p.nextEvent("stop")
	if stop.Stop == nil || stop.Stop.CallSid != "call-1@host" {
		t.Errorf("stop %+v", stop)
	}
	if err := <-p.closed; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("close: %v, want 1000", err)
	}
	if v := value(m.active); v != 0 {
		t.Errorf("sessions active %v after Close", v)
	}
	if v := value(m.ended.WithLabelValues(reasonCallEnded)); v != 1 {
		t.Errorf("ended{call_ended} %v", v)
	}
	s.Close() // idempotent
	s.PushAudio(TrackCaller, make([]int16, FrameSamples))
	s.PushDTMF(DTMF{Digit: '1'})
}

func TestWebSocketCallerAudioInOrder(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	s, p, _ := openSession(t, a, a.pipeline(m))
	const n = 40
	var sent [][]byte
	for i := range n {
		pcm, enc := ulawFrame(int16(i * 300))
		sent = append(sent, enc)
		s.PushAudio(TrackCaller, pcm)
		time.Sleep(time.Millisecond) // the media goroutine's pace, compressed
	}
	lastSeq := 1
	for i := range n {
		msg := p.nextEvent("media")
		if msg.Media.Track != "inbound" || msg.Media.Chunk != itoa(i+1) {
			t.Fatalf("frame %d: track %q chunk %q", i, msg.Media.Track, msg.Media.Chunk)
		}
		if seq := atoi(t, msg.SequenceNumber); seq <= lastSeq {
			t.Fatalf("sequenceNumber %d after %d", seq, lastSeq)
		} else {
			lastSeq = seq
		}
		if got := msg.payload(t); string(got) != string(sent[i]) {
			t.Fatalf("frame %d: payload differs", i)
		}
	}
	if got := value(m.messages.WithLabelValues("out", "media")); got != n {
		t.Errorf("messages out media %v", got)
	}
	if c := value(m.uplink); c != n {
		t.Errorf("uplink histogram holds %v samples, want %d", c, n)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

func TestWebSocketAgentAudioRechunked(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	s, p, _ := openSession(t, a, a.pipeline(m))

	// 50 ms then 30 ms: four 20 ms frames, whatever the message sizes.
	audio := make([]byte, 640)
	for i := range audio {
		audio[i] = byte(i*13 + 1)
	}
	p.sendMedia(audio[:400])
	p.sendMedia(audio[400:])
	waitQueued(t, s, 640)
	want := make([]int16, 640)
	media.DecodeULaw(want, audio)
	for f := range 4 {
		got, ok := s.NextFrame()
		if !ok || len(got) != FrameSamples {
			t.Fatalf("frame %d: ok=%v len=%d", f, ok, len(got))
		}
		for i := range got {
			if got[i] != want[f*FrameSamples+i] {
				t.Fatalf("frame %d sample %d: %d, want %d", f, i, got[i], want[f*FrameSamples+i])
			}
		}
	}
	if _, ok := s.NextFrame(); ok {
		t.Fatal("a frame beyond the agent's audio")
	}

	// A trailing part of a frame waits one tick, then plays padded.
	p.sendMedia(audio[:100])
	waitQueued(t, s, 100)
	if _, ok := s.NextFrame(); ok {
		t.Fatal("a part frame played at once")
	}
	got, ok := s.NextFrame()
	if !ok || got[99] != want[99] || got[100] != 0 || got[159] != 0 {
		t.Fatalf("padded part frame: ok=%v", ok)
	}
	if c := value(m.downlink); c != 2 {
		t.Errorf("downlink histogram holds %v samples, want 2 (one per burst into an empty queue)", c)
	}
	if v := value(m.messages.WithLabelValues("in", "media")); v != 3 {
		t.Errorf("messages in media %v", v)
	}
}

func TestWebSocketMarkEchoes(t *testing.T) {
	a := newTestAgent(t, true)
	s, p, _ := openSession(t, a, a.pipeline(NewMetrics(nil)))

	// Nothing queued: echoed at once.
	p.sendMark("empty")
	if m := p.nextEvent("mark"); m.Mark.Name != "empty" {
		t.Fatalf("mark %+v", m.Mark)
	}
	_, enc := ulawFrame(100)
	for range 3 {
		p.sendMedia(enc)
	}
	p.sendMark("after-3")
	waitQueued(t, s, 3*FrameSamples)
	eventually(t, "the mark is queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.play.marks) == 1
	})
	for range 2 {
		s.NextFrame()
	}
	select {
	case m := <-p.msgs:
		t.Fatalf("%s %+v before its audio played", m.Event, m.Mark)
	case <-time.After(50 * time.Millisecond):
	}
	s.NextFrame()
	if m := p.nextEvent("mark"); m.Mark.Name != "after-3" {
		t.Fatalf("mark %+v", m.Mark)
	}
}

func TestWebSocketClearDropsQueuedAudio(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	s, p, _ := openSession(t, a, a.pipeline(m))
	_, enc := ulawFrame(500)
	for range 10 {
		p.sendMedia(enc)
	}
	p.sendMark("reply-1")
	p.sendMedia(enc)
	p.sendMark("reply-2")
	waitQueued(t, s, 11*FrameSamples)
	s.NextFrame()
	p.send(map[string]string{"event": "clear", "streamSid": "x"})
	// Both pending marks come back, in order, and the queue is empty.
	if n := p.nextEvent("mark").Mark.Name; n != "reply-1" {
		t.Fatalf("first mark %q", n)
	}
	if n := p.nextEvent("mark").Mark.Name; n != "reply-2" {
		t.Fatalf("second mark %q", n)
	}
	if _, ok := s.NextFrame(); ok {
		t.Fatal("audio played after clear")
	}
	if v := value(m.clearedFrames); v != 10 {
		t.Errorf("cleared frames %v, want 10", v)
	}
	// New audio plays again.
	p.sendMedia(enc)
	waitQueued(t, s, FrameSamples)
	if _, ok := s.NextFrame(); !ok {
		t.Fatal("no audio after clear")
	}
}

func TestWebSocketDTMF(t *testing.T) {
	a := newTestAgent(t, true)
	s, p, _ := openSession(t, a, a.pipeline(NewMetrics(nil)))
	for _, d := range "5#" {
		s.PushDTMF(DTMF{Digit: d, Duration: 100 * time.Millisecond, Source: "rfc4733"})
	}
	for _, want := range []string{"5", "#"} {
		m := p.nextEvent("dtmf")
		if m.DTMF.Digit != want || m.DTMF.Track != "inbound_track" {
			t.Fatalf("dtmf %+v, want %s", m.DTMF, want)
		}
	}
}

func TestWebSocketCompleteFinishes(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	s, p, _ := openSession(t, a, a.pipeline(m))
	p.send([]byte(`{"event":"handoff.complete","streamSid":"x","outputContext":{"transferType":"SYSTEM","currentTaskName":"Billing","referenceVariables":{"intent":"pay","amount":12.5,"ok":true},"transferVariables":{"digits":"123"}}}`))
	got := waitDone(t, s)
	want := transfer.OutputContext{
		TransferType: "SYSTEM", CurrentTaskName: "Billing",
		ReferenceVariables: map[string]string{"intent": "pay", "amount": "12.5", "ok": "true"},
		TransferVariables:  map[string]string{"digits": "123"},
	}
	if !equalOutput(got, want) {
		t.Fatalf("result %+v, want %+v", got, want)
	}
	if v := value(m.ended.WithLabelValues(ReasonComplete)); v != 1 {
		t.Errorf("ended{complete} %v", v)
	}
	// The socket stays open after completion (an INVITE return keeps
	// streaming); a later close changes nothing.
	s.PushAudio(TrackCaller, make([]int16, FrameSamples))
	p.nextEvent("media")
	_ = p.c.Close(websocket.StatusNormalClosure, "bye")
	eventually(t, "the link is down", s.gone)
	if got := s.Result(); !equalOutput(got, want) {
		t.Fatalf("result changed to %+v", got)
	}
}

func TestWebSocketCompleteWaitsForQueuedAudio(t *testing.T) {
	a := newTestAgent(t, true)
	s, p, _ := openSession(t, a, a.pipeline(NewMetrics(nil)))
	_, enc := ulawFrame(100)
	p.sendMedia(append(append([]byte{}, enc...), enc...)) // 40 ms of goodbye
	p.send(map[string]any{"event": "handoff.complete", "outputContext": map[string]string{"currentTaskName": "Done"}})
	eventually(t, "the completion is pending", func() bool { return s.state() == stateFinishing })
	s.NextFrame()
	select {
	case <-s.Done():
		t.Fatal("finished before the goodbye played")
	default:
	}
	s.NextFrame()
	got := waitDone(t, s)
	if got.TransferType != "SYSTEM" || got.CurrentTaskName != "Done" {
		t.Fatalf("result %+v (transferType defaults to SYSTEM)", got)
	}
}

func TestWebSocketCompleteTimerWhenNothingPlays(t *testing.T) {
	a := newTestAgent(t, true)
	s, p, _ := openSession(t, a, a.pipeline(NewMetrics(nil)))
	_, enc := ulawFrame(100)
	p.sendMedia(enc)
	p.send(map[string]any{"event": "handoff.complete", "outputContext": map[string]string{"transferType": "AGENT"}})
	// No pacer pulls: the completion fires after the queued audio's
	// duration plus a second.
	if got := waitDone(t, s); got.TransferType != "AGENT" {
		t.Fatalf("result %+v", got)
	}
}

func equalOutput(a, b transfer.OutputContext) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestWebSocketUnreachable(t *testing.T) {
	m := NewMetrics(nil)
	// Nothing listens on a port just closed: refused at once.
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, false))
	w := &WebSocket{URL: "ws://" + addr + "/agent", Token: "s3cret", Logger: quiet, Metrics: m, ConnectTimeout: 300 * time.Millisecond}
	if _, err := w.Open(context.Background(), testInfo); err == nil {
		t.Fatal("Open succeeded with no agent")
	} else if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("the error shows the token")
	}
	if v := value(m.connectFailures.WithLabelValues("error")); v != 1 {
		t.Errorf("connect failures{error} %v", v)
	}

	// A listener that never answers the handshake: bounded by ConnectTimeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	w.URL = "ws://" + silent.Addr().String() + "/agent"
	began := time.Now()
	_, err = w.Open(context.Background(), testInfo)
	if err == nil {
		t.Fatal("Open succeeded against a silent listener")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("Open took %s with a 300ms connect timeout", took)
	}
	if v := value(m.connectFailures.WithLabelValues("timeout")); v != 1 {
		t.Errorf("connect failures{timeout} %v (%v)", v, err)
	}

	// An HTTP answer other than 101.
	a := newTestAgent(t, true)
	w.URL = "ws" + strings.TrimPrefix(a.srv.URL, "http") + "/reject"
	if _, err := w.Open(context.Background(), testInfo); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Open against a 401: %v", err)
	}
	if v := value(m.connectFailures.WithLabelValues("rejected")); v != 1 {
		t.Errorf("connect failures{rejected} %v", v)
	}
}

func TestWebSocketAgentDropsMidCall(t *testing.T) {
	for _, tc := range []struct {
		name     string
		drop     func(p *peer)
		fallback string
		reason   string
	}{
		{"abrupt", func(p *peer) { _ = p.c.CloseNow() }, "", ReasonAgentDisconnected},
		{"clean close", func(p *peer) { _ = p.c.Close(websocket.StatusNormalClosure, "done") }, "", ReasonAgentClosed},
		{"configured fallback", func(p *peer) { _ = p.c.CloseNow() }, "SYSTEM", ReasonAgentDisconnected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAgent(t, true)
			m := NewMetrics(nil)
			w := a.pipeline(m)
			w.FallbackTransferType = tc.fallback
			s, p, _ := openSession(t, a, w)
			tc.drop(p)
			got := waitDone(t, s)
			wantType := tc.fallback
			if wantType == "" {
				wantType = "AGENT"
			}
			if got.TransferType != wantType || got.CurrentTaskName != "Billing" || got.ReferenceVariables["reason"] != tc.reason {
				t.Fatalf("result %+v, want %s with reason %s", got, wantType, tc.reason)
			}
			if v := value(m.ended.WithLabelValues(tc.reason)); v != 1 {
				t.Errorf("ended{%s} %v", tc.reason, v)
			}
			// Pushes after the loss are ignored, never blocking.
			for range 100 {
				s.PushAudio(TrackCaller, make([]int16, FrameSamples))
			}
			s.Close()
		})
	}
}

func TestWebSocketAgentStopsAnswering(t *testing.T) {
	a := newTestAgent(t, false) // never reads, so never answers a ping
	w := a.pipeline(NewMetrics(nil))
	w.PingInterval = 50 * time.Millisecond
	w.ResponseTimeout = 200 * time.Millisecond
	s, err := w.Open(context.Background(), testInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a.peer()
	if got := waitDone(t, s); got.TransferType != "AGENT" || got.ReferenceVariables["reason"] != ReasonAgentUnresponsive {
		t.Fatalf("result %+v", got)
	}
}

func TestWebSocketSlowAgentBoundedQueue(t *testing.T) {
	a := newTestAgent(t, false) // reads nothing after the handshake
	m := NewMetrics(nil)
	w := a.pipeline(m)
	w.PingInterval = -1
	w.ResponseTimeout = time.Minute
	w.SendQueue = 20
	s, err := w.Open(context.Background(), testInfo)
	if err != nil {
		t.Fatal(err)
	}
	a.peer()
	ws := s.(*wsSession)
	frame := make([]int16, FrameSamples)
	for i := range frame {
		frame[i] = int16(i * 100)
	}
	// Far more than the socket buffers can hold: PushAudio must return
	// every time, and the queue must stay at its bound.
	drops := m.drops.WithLabelValues(dropSendQueue)
	for i := 0; value(drops) < 1000; i++ {
		if i > 2_000_000 {
			t.Fatal("no drops: the slow agent never filled the queue")
		}
		s.PushAudio(TrackCaller, frame)
		if l := len(ws.audio); l > w.SendQueue {
			t.Fatalf("send queue holds %d frames, bound %d", l, w.SendQueue)
		}
		s.PushDTMF(DTMF{Digit: '1'})
	}
	if value(m.drops.WithLabelValues(dropControlQueue)) == 0 {
		t.Error("control queue drops not counted")
	}
	// The pacer side is unaffected.
	if _, ok := s.NextFrame(); ok {
		t.Error("a frame from a silent agent")
	}
	select {
	case <-s.Done():
		t.Fatal("a slow agent ended the conversation")
	default:
	}
	s.Close() // aborts the stuck write after stopTimeout
}

func TestWebSocketMalformedIgnored(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	w := a.pipeline(m)
	w.MaxMessageBytes = 64 << 10
	w.Format = FormatL16
	s, p, _ := openSession(t, a, w)

	p.send([]byte(`{"event":"media","media":{"payload":`))                                              // json
	p.send([]byte(`{"streamSid":"x"}`))                                                                 // event
	p.send([]byte(`{"event":"media"}`))                                                                 // event
	p.send([]byte(`{"event":"media","media":{"payload":"%%%not base64"}}`))                             // payload
	p.send([]byte(`{"event":"media","media":{"payload":"AA=="}}`))                                      // payload: 1 byte of L16
	p.send([]byte(`{"event":"handoff.complete","outputContext":{"referenceVariables":{"a":{"b":1}}}}`)) // event
	big := `{"event":"media","media":{"payload":"` + strings.Repeat("A", 100<<10) + `"}}`
	p.send([]byte(big)) // oversized
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil { // binary
		t.Fatal(err)
	}
	p.send([]byte(`{"event":"someday","x":1}`)) // unknown: ignored, counted as other
	// The session goes on: valid audio still plays.
	p.sendMedia(make([]byte, 2*FrameSamples))
	waitQueued(t, s, FrameSamples)
	if _, ok := s.NextFrame(); !ok {
		t.Fatal("no audio after malformed messages")
	}
	for reason, want := range map[string]float64{badJSON: 1, badEvent: 3, badPayload: 2, badOversized: 1, badBinary: 1} {
		if v := value(m.malformed.WithLabelValues(reason)); v != want {
			t.Errorf("malformed{%s} = %v, want %v", reason, v, want)
		}
	}
	if v := value(m.messages.WithLabelValues("in", "other")); v != 1 {
		t.Errorf("messages in other %v", v)
	}
	select {
	case <-s.Done():
		t.Fatal("malformed messages ended the conversation")
	default:
	}
}

func TestWebSocketListenOnly(t *testing.T) {
	a := newTestAgent(t, true)
	m := NewMetrics(nil)
	s, p, _ := openSession(t, a, a.pipeline(m))
	_, enc := ulawFrame(100)
	p.sendMedia(enc)
	p.sendMark("m")
	eventually(t, "the mark is queued", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.play.marks) == 1
	})
	s.ListenOnly()
	if n := p.nextEvent("mark").Mark.Name; n != "m" {
		t.Fatalf("mark %q", n)
	}
	p.nextEvent("handoff.listenOnly")
	p.sendMedia(enc)
	eventually(t, "agent audio dropped", func() bool {
		return value(m.drops.WithLabelValues(dropListenOnly)) == 1
	})
	if _, ok := s.NextFrame(); ok {
		t.Fatal("the agent spoke while listen-only")
	}
	pcm, want := ulawFrame(-2000)
	s.PushAudio(TrackCaller, pcm)
	s.PushAudio(TrackDestination, pcm)
	got := map[string]string{}
	for range 2 {
		msg := p.nextEvent("media")
		got[msg.Media.Track] = msg.Media.Chunk
		if string(msg.payload(t)) != string(want) {
			t.Errorf("%s payload differs", msg.Media.Track)
		}
	}
	if got["inbound"] != "1" || got["outbound"] != "1" {
		t.Fatalf("tracks and chunks %v", got)
	}
}

func TestWebSocketWideband(t *testing.T) {
	a := newTestAgent(t, true)
	w := a.pipeline(NewMetrics(nil))
	w.Format = FormatL16Wide
	s, p, start := openSession(t, a, w)
	if f := start.Start.MediaFormat; f.Encoding != "audio/l16" || f.SampleRate != 16000 {
		t.Fatalf("mediaFormat %+v", f)
	}
	// A G.711 caller: 8 kHz frames arrive as 640-byte 16 kHz frames.
	tone8 := sine(1000, 8000, 8000, 4*FrameSamples)
	for f := range 4 {
		s.PushAudio(TrackCaller, tone8[f*FrameSamples:(f+1)*FrameSamples])
	}
	wide := l16Frames(t, p, 4)
	if r := testenv.RMS(wide[100:]); r < 0.9*8000/1.4142 || r > 1.1*8000/1.4142 {
		t.Errorf("upsampled tone RMS %.0f", r)
	}
	// A G.722 caller: 16 kHz frames arrive untouched, 6 kHz tone and all.
	tone16 := sine(6000, 16000, 8000, 4*WideFrameSamples)
	for f := range 4 {
		s.PushAudio(TrackCaller, tone16[f*WideFrameSamples:(f+1)*WideFrameSamples])
	}
	if got := l16Frames(t, p, 4); !slices.Equal(got, tone16) {
		t.Error("16 kHz caller audio was not passed through as it is")
	}
	// Agent: 16 kHz audio plays as 16 kHz frames; the pacer of an 8 kHz
	// call resamples them, once.
	p.sendMedia(appendL16(nil, tone16))
	waitQueued(t, s, len(tone16))
	var played []int16
	for range 4 {
		f, ok := s.NextFrame()
		if !ok || len(f) != WideFrameSamples {
			t.Fatalf("frame of %d samples, want 320", len(f))
		}
		played = append(played, f...)
	}
	if !slices.Equal(played, tone16) {
		t.Error("16 kHz agent audio was not played as it came")
	}
}

// A μ-law agent hears a G.722 caller downsampled with the anti-aliasing
// filter: the 1 kHz tone stays, the 6 kHz one goes, and nothing folds to
// 2 kHz.
func TestWebSocketMulawFromWideband(t *testing.T) {
	a := newTestAgent(t, true)
	s, p, _ := openSession(t, a, a.pipeline(NewMetrics(nil)))
	mix := sine(1000, 16000, 6000, 25*WideFrameSamples)
	for i, v := range sine(6000, 16000, 6000, len(mix)) {
		mix[i] += v
	}
	for f := range 25 {
		s.PushAudio(TrackCaller, mix[f*WideFrameSamples:(f+1)*WideFrameSamples])
	}
	var narrow []int16
	for range 25 {
		b := p.nextEvent("media").payload(t)
		if len(b) != FrameSamples {
			t.Fatalf("payload %d bytes, want 160", len(b))
		}
		pcm := make([]int16, len(b))
		media.DecodeULaw(pcm, b)
		narrow = append(narrow, pcm...)
	}
	narrow = narrow[FrameSamples:]
	control, alias := testenv.Goertzel(narrow, 8000, 1000), testenv.Goertzel(narrow, 8000, 2000)
	if control < 5000 || testenv.DB(alias, control) > -40 {
		t.Fatalf("1 kHz at %.0f, 2 kHz at %.1f dB of it: want the control and no alias", control, testenv.DB(alias, control))
	}
}

// l16Frames reads n media messages of 640 bytes and returns their samples.
func l16Frames(t *testing.T, p *peer, n int) []int16 {
	t.Helper()
	var out []int16
	for range n {
		b := p.nextEvent("media").payload(t)
		if len(b) != 640 {
			t.Fatalf("payload %d bytes, want 640", len(b))
		}
		for i := 0; i < len(b); i += 2 {
			out = append(out, int16(uint16(b[i])|uint16(b[i+1])<<8))
		}
	}
	return out
}

var value = testenv.Value

func TestWebSocketMaxDuration(t *testing.T) {
	a := newTestAgent(t, true)
	w := a.pipeline(NewMetrics(nil))
	w.MaxDuration = 100 * time.Millisecond
	s, _, _ := openSession(t, a, w)
	if got := waitDone(t, s); got.TransferType != "AGENT" || got.ReferenceVariables["reason"] != ReasonMaxDuration {
		t.Fatalf("result %+v", got)
	}
}
