package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/transfer"
)

// writer owns the socket's write side: connected and start first, then
// control messages (preferred) and call audio as they come, and stop when
// the session closes.
func (s *wsSession) writer() {
	defer close(s.writerDone)
	var seq int64
	next := func() string {
		seq++
		return strconv.FormatInt(seq, 10)
	}
	if !s.writeJSON(evConnected, connectedMsg{Event: evConnected, Protocol: "Call", Version: "1.0.0"}) {
		return
	}
	if !s.writeJSON(evStart, s.startMessage(next())) {
		return
	}

	enc := [2]encoder{{f: s.cfg.Format}, {f: s.cfg.Format}}
	buf := make([]byte, 0, 512)
	payload := make([]byte, 0, s.cfg.Format.frameBytes())
	for {
		select {
		case c := <-s.ctrl:
			if !s.writeCtrl(c, next()) {
				return
			}
			continue
		default:
		}
		select {
		case <-s.stopCtx.Done():
			s.goodbye(next())
			return
		case c := <-s.ctrl:
			if !s.writeCtrl(c, next()) {
				return
			}
		case f := <-s.audio:
			e := &enc[0]
			if f.track == TrackDestination {
				e = &enc[1]
			}
			payload = e.encode(payload[:0], f.pcm[:f.n])
			seq++
			buf = appendMedia(buf[:0], seq, wireTrack(f.track), f.chunk, f.tsMs, payload, s.streamSid)
			if !s.write(evMedia, buf) {
				return
			}
			s.m.uplink.Observe(time.Since(f.at).Seconds())
		}
	}
}

func (s *wsSession) writeCtrl(c ctrlMsg, seq string) bool {
	switch c.event {
	case evDTMF:
		return s.writeJSON(evDTMF, dtmfMsg{Event: evDTMF, StreamSid: s.streamSid, SequenceNumber: seq,
			DTMF: dtmfBody{Track: "inbound_track", Digit: string(c.digit), DurationMs: c.dur.Milliseconds()}})
	case evMark:
		return s.writeJSON(evMark, markMsg{Event: evMark, StreamSid: s.streamSid, SequenceNumber: seq, Mark: markBody{Name: c.name}})
	case evListenOnly:
		return s.writeJSON(evListenOnly, listenOnlyMsg{Event: evListenOnly, StreamSid: s.streamSid, SequenceNumber: seq})
	}
	return true
}

// goodbye sends stop and closes the socket with 1000, unless the
// connection is already gone.
func (s *wsSession) goodbye(seq string) {
	if !s.state().linkUp() {
		return
	}
	b, _ := json.Marshal(stopMsg{Event: evStop, StreamSid: s.streamSid, SequenceNumber: seq,
		Stop: stopBody{AccountSid: s.cfg.accountSid(), CallSid: s.callSid}})
	ctx, cancel := context.WithTimeout(s.abortCtx, stopTimeout)
	err := s.conn.Write(ctx, websocket.MessageText, b)
	cancel()
	if err != nil {
		return // the write timeout closed the connection
	}
	s.m.countOut(evStop)
	// The close handshake waits for the agent's close frame (coder/websocket
	// allows it 5 s); an agent that does not answer loses its TCP
	// connection after stopTimeout instead.
	closed := make(chan struct{})
	t := time.AfterFunc(stopTimeout, s.raw.close)
	go func() {
		defer close(closed)
		_ = s.conn.Close(websocket.StatusNormalClosure, "call ended")
	}()
	<-closed
	t.Stop()
}

func (s *wsSession) writeJSON(event string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encoding agent message", "event", event, "err", err)
		return true
	}
	return s.write(event, b)
}

// write sends one text message, bounded by ResponseTimeout; a failure
// ends the link.
func (s *wsSession) write(event string, b []byte) bool {
	ctx, cancel := context.WithTimeout(s.abortCtx, s.cfg.ResponseTimeout)
	err := s.conn.Write(ctx, websocket.MessageText, b)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		reason := lostReason(err)
		if timedOut {
			reason = ReasonAgentUnresponsive
		}
		s.lose(reason, err)
		return false
	}
	s.m.countOut(event)
	return true
}

// readState is the reader goroutine's reusable buffers and decoder.
type readState struct {
	msg bytes.Buffer
	raw []byte
	pcm []int16
	dec decoder
}

// reader owns the socket's read side. Each message is read whole (up to
// MaxMessageBytes; larger ones are discarded as they stream in) and
// handled; a connection error ends the link.
func (s *wsSession) reader() {
	defer s.wg.Done()
	st := &readState{dec: decoder{f: s.cfg.Format}}
	limit := s.cfg.MaxMessageBytes
	for {
		typ, r, err := s.conn.Reader(context.Background())
		if err != nil {
			s.lose(lostReason(err), err)
			return
		}
		st.msg.Reset()
		if _, err := st.msg.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
			s.lose(lostReason(err), err)
			return
		}
		if int64(st.msg.Len()) > limit {
			if _, err := io.Copy(io.Discard, r); err != nil {
				s.lose(lostReason(err), err)
				return
			}
			s.malformed(badOversized, errors.New("message larger than the limit"))
		} else if typ != websocket.MessageText {
			s.malformed(badBinary, errors.New("binary message"))
		} else {
			s.handle(st, time.Now())
		}
		if st.msg.Cap() > 64<<10 {
			st.msg = bytes.Buffer{} // let a rare large message's buffer go
		}
	}
}

func (s *wsSession) malformed(reason string, err error) {
	s.m.malformed.WithLabelValues(reason).Inc()
	s.log.Debug("agent message ignored", "reason", reason, "err", err)
}

// handle acts on one text message from the agent.
func (s *wsSession) handle(st *readState, recv time.Time) {
	var msg inMsg
	if err := json.Unmarshal(st.msg.Bytes(), &msg); err != nil {
		s.malformed(badJSON, err)
		return
	}
	switch msg.Event {
	case "":
		s.malformed(badEvent, errors.New("no event"))
		return
	case evMedia:
		if !s.handleMedia(st, &msg, recv) {
			return
		}
	case evMark:
		if msg.Mark == nil {
			s.malformed(badEvent, errors.New("mark without mark object"))
			return
		}
		s.mark(msg.Mark.Name)
	case evClear:
		s.mu.Lock()
		s.dropPlayoutLocked()
		s.mu.Unlock()
	case evComplete:
		var out transfer.OutputContext
		if msg.OutputContext != nil {
			var err error
			if out, err = msg.OutputContext.outputContext(); err != nil {
				s.malformed(badEvent, err)
				return
			}
		}
		s.complete(out, evComplete)
	}
	s.m.countIn(msg.Event)
}

// handleMedia queues a media message's audio; false means it was
// malformed (and counted so).
func (s *wsSession) handleMedia(st *readState, msg *inMsg, recv time.Time) bool {
	if msg.Media == nil {
		s.malformed(badEvent, errors.New("media without media object"))
		return false
	}
	raw, err := decodeBase64(st.raw[:0], msg.Media.Payload)
	st.raw = raw
	if err != nil {
		s.malformed(badPayload, err)
		return false
	}
	pcm, err := st.dec.decode(st.pcm[:0], raw)
	st.pcm = pcm
	if err != nil {
		s.malformed(badPayload, err)
		return false
	}
	s.enqueue(pcm, recv)
	return true
}

func decodeBase64(dst []byte, s string) ([]byte, error) {
	// Sized for the unpadded fallback, which needs more room than the
	// padded decoder's DecodedLen for lengths not a multiple of 4.
	n := base64.RawStdEncoding.DecodedLen(len(s))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	k, err := base64.StdEncoding.Decode(dst, []byte(s))
	if err != nil {
		// Some encoders leave the padding out.
		k, err = base64.RawStdEncoding.Decode(dst, []byte(s))
	}
	return dst[:k], err
}

// enqueue queues agent audio for the pacer.
func (s *wsSession) enqueue(pcm []int16, recv time.Time) {
	if len(pcm) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listenOnly {
		s.m.drops.WithLabelValues(dropListenOnly).Add(s.frames(len(pcm)))
		return
	}
	wasEmpty := s.play.n == 0
	at := s.play.queued
	k := s.play.push(pcm)
	if k < len(pcm) {
		s.m.drops.WithLabelValues(dropPlayoutFull).Add(s.frames(len(pcm) - k))
	}
	if wasEmpty && k > 0 && !s.stamped {
		s.stamped, s.stampAt, s.stampT = true, at, recv
	}
}

// frames counts the 20 ms frames (a part counts whole) in samples of
// agent audio.
func (s *wsSession) frames(samples int) float64 {
	return float64((samples + s.frame - 1) / s.frame)
}

// mark queues a mark after the audio queued so far; with nothing queued it
// is echoed at once.
func (s *wsSession) mark(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.play.queued <= s.play.played {
		s.sendCtrl(ctrlMsg{event: evMark, name: name})
		return
	}
	if len(s.play.marks) >= maxMarks {
		s.m.drops.WithLabelValues(dropMarks).Inc()
		return
	}
	s.play.marks = append(s.play.marks, queuedMark{name: name, at: s.play.queued})
}

// pinger pings the agent every PingInterval until the session stops; a
// ping not answered within ResponseTimeout loses the link.
func (s *wsSession) pinger() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.ResponseTimeout)
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil {
			if s.stopCtx.Err() == nil {
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
