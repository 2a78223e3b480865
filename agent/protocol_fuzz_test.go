package agent

import (
	"bytes"
	"testing"
	"time"
)

// fuzzWSSession is a session with no connection: handle, NextFrame and the
// playout run as in a call; only the socket is missing (handle never
// touches it).
func fuzzWSSession(f Format, m *Metrics) *wsSession {
	cfg := WebSocket{Format: f, Logger: quiet, Metrics: m, PlayoutBuffer: 2 * time.Second}.withDefaults()
	return &wsSession{
		cfg:   cfg,
		m:     m,
		log:   cfg.Logger,
		ctrl:  make(chan ctrlMsg, controlQueue),
		done:  make(chan struct{}),
		frame: f.frameSamples(),
		play:  newPlayout(int(cfg.PlayoutBuffer/(20*time.Millisecond)) * f.frameSamples()),
	}
}

// FuzzAgentMessages feeds a sequence of agent messages (separated by
// 0x1e) to the inbound handler in each audio format, then plays the
// queue out: no panic, bounded queues, and a finished conversation always
// has a transfer type.
func FuzzAgentMessages(f *testing.F) {
	sep := "\x1e"
	for _, s := range []string{
		`{"event":"media","streamSid":"MZ1","media":{"payload":"f39/f39/f39/f38="}}` + sep +
			`{"event":"mark","streamSid":"MZ1","mark":{"name":"greeting"}}` + sep +
			`{"event":"handoff.complete","outputContext":{"transferType":"AGENT","currentTaskName":"Billing",` +
			`"referenceVariables":{"intent":"pay","score":0.93,"ok":true,"none":null},"transferVariables":{"accountId":"42"}}}`,
		`{"event":"clear","streamSid":"MZ1"}` + sep + `{"event":"mark","mark":{"name":""}}`,
		`{"event":"media","media":{"payload":"AAECAwQFBgc"}}` + sep + `{"event":"media","media":{}}` + sep + `{"event":"media"}`,
		`{"event":"handoff.complete"}`,
		`{"event":"handoff.complete","outputContext":{"transferVariables":{"a":{"nested":1}}}}`,
		`{"event":"handoff.complete","outputContext":{"referenceVariables":[1]}}`,
		`{"event":"stop"}` + sep + `{"event":""}` + sep + `{}` + sep + `[]` + sep + `not json`,
		`{"event":"media","media":{"payload":"` + string(bytes.Repeat([]byte("/w=="), 64)) + `"}}`,
	} {
		for format := range uint8(3) {
			f.Add(format, []byte(s))
		}
	}
	m := NewMetrics(nil)
	formats := []Format{FormatMulaw, FormatL16, FormatL16Wide}
	f.Fuzz(func(t *testing.T, format uint8, data []byte) {
		s := fuzzWSSession(formats[int(format)%len(formats)], m)
		st := &readState{dec: decoder{f: s.cfg.Format}}
		now := time.Now()
		for i, msg := range bytes.Split(data, []byte(sep)) {
			if i == 32 {
				break
			}
			st.msg.Reset()
			st.msg.Write(msg)
			s.handle(st, now)
			s.mu.Lock()
			if s.play.n > s.play.max || s.play.n < 0 || len(s.play.marks) > maxMarks {
				t.Fatalf("playout %d/%d samples, %d marks", s.play.n, s.play.max, len(s.play.marks))
			}
			s.mu.Unlock()
		}
		for range 8 {
			if pcm, ok := s.NextFrame(); ok && len(pcm) != s.cfg.Format.frameSamples() {
				t.Fatalf("frame of %d samples", len(pcm))
			}
		}
		s.mu.Lock()
		if s.completeTimer != nil {
			s.completeTimer.Stop()
		}
		finished, res := s.finished(), s.outcome
		s.mu.Unlock()
		if finished && res.TransferType == "" {
			t.Fatal("finished without a transfer type")
		}
		if len(s.ctrl) > controlQueue {
			t.Fatal("control queue over its bound")
		}
	})
}
