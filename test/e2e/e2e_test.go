package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/agent/refagent"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/internal/wstest"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// pattern is a PCMU frame that survives µ-law -> PCM -> µ-law unchanged
// (no 0x7F, the negative zero), so its echo can be compared byte for byte.
func pattern(seed byte) []byte {
	b := make([]byte, 160)
	for i := range b {
		b[i] = 0x10 + byte(i+int(seed))%0x60
	}
	return b
}

var silence = bytes.Repeat([]byte{0xFF}, 160)

// A whole conversation: the caller hears its own audio back through the
// reference agent, presses 5 then #, and the agent's handoff.complete
// makes Handoff return the call by REFER with the outcome.
func TestConversationEchoDTMFAndReferReturn(t *testing.T) {
	g := newGateway(t, &agent.WebSocket{URL: refAgent(t, refagent.Options{})})
	g.create("e2e-refer", transfer.ReturnRefer)
	p := newPhone(t)
	c, err := p.call(g.Srv.TransferURI("e2e-refer"))
	if err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("e2e-refer", transfer.StatusOngoing)

	// Echo: the caller's frames come back unchanged.
	want := pattern(7)
	stop := make(chan struct{})
	talking := talk(c, stop, func() []byte { return want })
	c.ReadRTP(5*time.Second, func(pkt *rtp.Packet) bool { return bytes.Equal(pkt.Payload, want) })
	close(stop)
	<-talking

	c.SendDTMF('5')
	c.SendDTMF('#')
	req := p.waitRefer()
	referTo := req.GetHeader("Refer-To").Value()
	for _, s := range []string{"sip:ivr-return@127.0.0.1:5999", "X-Handoff-Transfer-Type=SYSTEM", "X-Handoff-Var-digits=5"} {
		if !strings.Contains(referTo, s) {
			t.Errorf("Refer-To %q lacks %q", referTo, s)
		}
	}
	tr := g.WaitStatus("e2e-refer", transfer.StatusCompleted)
	out := tr.OutputContext
	if out == nil || out.TransferType != "SYSTEM" || out.CurrentTaskName != "Billing" ||
		out.TransferVariables["digits"] != "5" || out.ReferenceVariables["reason"] != "caller_pressed_hash" {
		t.Fatalf("outputContext %+v", out)
	}
	if tr.EndReason != transfer.EndAgentFinished {
		t.Errorf("endReason %q", tr.EndReason)
	}
	c.Notify("SIP/2.0 200 OK", "terminated;reason=noresource")
	p.WaitBye()
	if r := g.WaitReturn("e2e-refer").Return; r.Method != transfer.ReturnRefer || r.Result != transfer.ReturnSucceeded {
		t.Fatalf("returnResult %+v", r)
	}
	if n := testenv.MetricValue(t, g.metrics, "handoff_agent_messages_total", "direction=in", "type=handoff.complete"); n != 1 {
		t.Errorf("handoff.complete received %v times", n)
	}
	eventually(t, "the agent session is closed", func() bool {
		return testenv.MetricValue(t, g.metrics, "handoff_agent_sessions_active") == 0
	})
}

// Barge-in: the reference agent plays a 3 s greeting; when the caller
// talks over it, the agent sends clear and Handoff drops the rest at once.
func TestBargeInClear(t *testing.T) {
	g := newGateway(t, &agent.WebSocket{URL: refAgent(t, refagent.Options{Greeting: 3 * time.Second})})
	g.create("e2e-barge", transfer.ReturnBye)
	p := newPhone(t)
	c, err := p.call(g.Srv.TransferURI("e2e-barge"))
	if err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("e2e-barge", transfer.StatusOngoing)

	// A loud frame (a 1 kHz tone at -10 dBFS) that survives the echo.
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(10000 * []float64{0, 0.707, 1, 0.707, 0, -0.707, -1, -0.707}[i%8])
	}
	loud := make([]byte, 160)
	media.EncodeULaw(loud, pcm)
	var speaking atomic.Bool
	stop := make(chan struct{})
	talking := talk(c, stop, func() []byte {
		if speaking.Load() {
			return loud
		}
		return silence
	})
	defer func() { close(stop); <-talking }()

	var toneBefore, toneAfter int
	c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		switch {
		case bytes.Equal(pkt.Payload, loud):
			return true // the echo: the greeting is gone
		case bytes.Equal(pkt.Payload, silence):
		case speaking.Load():
			toneAfter++
		default:
			toneBefore++
			if toneBefore == 10 { // the greeting is playing: talk over it
				speaking.Store(true)
			}
		}
		return false
	})
	// The greeting is 150 frames; after the caller spoke, only what was in
	// flight before the clear may still be heard.
	if toneAfter > 25 {
		t.Errorf("%d greeting frames after barge-in", toneAfter)
	}
	if n := testenv.MetricValue(t, g.metrics, "handoff_agent_cleared_frames_total"); n < 50 {
		t.Errorf("only %v frames cleared", n)
	}
	if n := testenv.MetricValue(t, g.metrics, "handoff_agent_messages_total", "direction=in", "type=clear"); n != 1 {
		t.Errorf("clear received %v times", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("e2e-barge", transfer.StatusCompleted)
}

// An agent that cannot be reached: the INVITE gets 503 with Retry-After
// and the transfer stays ACTIVE for the IVR's retry or fallback.
func TestAgentUnreachable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t, false)) // nothing listens there
	g := newGateway(t, &agent.WebSocket{URL: "ws://" + addr + "/agent", ConnectTimeout: 500 * time.Millisecond})
	g.create("e2e-503", transfer.ReturnBye)
	p := newPhone(t)
	_, err := p.call(g.Srv.TransferURI("e2e-503"))
	res := dialogResponse(err)
	if res == nil || res.StatusCode != 503 {
		t.Fatalf("INVITE: %v, want 503", err)
	}
	if h := res.GetHeader("Retry-After"); h == nil {
		t.Error("503 without Retry-After")
	}
	if st := g.Get("e2e-503").StatusAt(g.Svc.Now()); st != transfer.StatusActive {
		t.Fatalf("transfer %s after 503, want ACTIVE", st)
	}
	if n := testenv.MetricValue(t, g.metrics, "handoff_agent_connect_failures_total"); n != 1 {
		t.Errorf("connect failures %v", n)
	}
}

// scriptAgent is a misbehaving agent: it accepts, reads up to the start
// message, then runs script. It returns the agent's URL.
func scriptAgent(t *testing.T, script func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	return wstest.Serve(t, func(ctx context.Context, c *websocket.Conn, _ *http.Request) {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var m struct{ Event string }
			if json.Unmarshal(b, &m) == nil && m.Event == "start" {
				break
			}
		}
		script(ctx, c)
	}) + "/agent"
}

// The agent's connection breaks mid-call: Handoff applies the fallback
// (transferType AGENT, reason agent_disconnected) and returns the call as
// the transfer says (REFER here).
func TestAgentDropsMidCall(t *testing.T) {
	drop := make(chan struct{})
	url := scriptAgent(t, func(ctx context.Context, c *websocket.Conn) {
		select {
		case <-drop:
		case <-ctx.Done():
		}
		_ = c.CloseNow() // no close frame: the TCP connection just ends
	})
	g := newGateway(t, &agent.WebSocket{URL: url})
	g.create("e2e-drop", transfer.ReturnRefer)
	p := newPhone(t)
	c, err := p.call(g.Srv.TransferURI("e2e-drop"))
	if err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("e2e-drop", transfer.StatusOngoing)
	c.SendAudio(pattern(1))
	close(drop)

	req := p.waitRefer()
	if rt := req.GetHeader("Refer-To").Value(); !strings.Contains(rt, "X-Handoff-Transfer-Type=AGENT") {
		t.Errorf("Refer-To %q: want transfer type AGENT", rt)
	}
	tr := g.WaitStatus("e2e-drop", transfer.StatusCompleted)
	if out := tr.OutputContext; out == nil || out.TransferType != "AGENT" || out.ReferenceVariables["reason"] != agent.ReasonAgentDisconnected || out.CurrentTaskName != "Billing" {
		t.Fatalf("outputContext %+v", tr.OutputContext)
	}
	if tr.EndReason != transfer.EndAgentFinished {
		t.Errorf("endReason %q", tr.EndReason)
	}
	c.Notify("SIP/2.0 200 OK", "terminated;reason=noresource")
	p.WaitBye()
	g.WaitReturn("e2e-drop")
}

// A slow agent that reads nothing: the caller keeps hearing RTP (silence)
// every 20 ms, and hanging up still ends everything promptly.
func TestSlowAgentRTPFlows(t *testing.T) {
	url := scriptAgent(t, func(ctx context.Context, c *websocket.Conn) { <-ctx.Done() })
	g := newGateway(t, &agent.WebSocket{URL: url, PingInterval: -1, SendQueue: 10})
	g.create("e2e-slow", transfer.ReturnBye)
	p := newPhone(t)
	c, err := p.call(g.Srv.TransferURI("e2e-slow"))
	if err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("e2e-slow", transfer.StatusOngoing)
	stop := make(chan struct{})
	talking := talk(c, stop, func() []byte { return pattern(3) })
	n := 0
	c.ReadRTP(5*time.Second, func(*rtp.Packet) bool { n++; return n == 50 })
	close(stop)
	<-talking
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if tr := g.WaitStatus("e2e-slow", transfer.StatusCompleted); tr.EndReason != transfer.EndCallerHangup {
		t.Errorf("endReason %q", tr.EndReason)
	}
}

// Malformed and oversized agent messages are counted and ignored; the
// conversation goes on to a normal completion.
func TestMalformedAgentMessages(t *testing.T) {
	url := scriptAgent(t, func(ctx context.Context, c *websocket.Conn) {
		for _, m := range []string{
			`{"event":"media","media":{"payload":`,
			`{"event":"media","media":{"payload":"%%%"}}`,
			`{"event":"media","media":{"payload":"` + strings.Repeat("A", 300<<10) + `"}}`,
			`{"event":"handoff.complete","outputContext":{"transferType":"SYSTEM","currentTaskName":"Done"}}`,
		} {
			if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
				return
			}
		}
		_ = c.Write(ctx, websocket.MessageBinary, []byte{0, 1})
		_, _, _ = c.Read(ctx) // until the call ends
	})
	g := newGateway(t, &agent.WebSocket{URL: url})
	g.create("e2e-bad", transfer.ReturnBye)
	p := newPhone(t)
	if _, err := p.call(g.Srv.TransferURI("e2e-bad")); err != nil {
		t.Fatal(err)
	}
	p.WaitBye()
	tr := g.WaitStatus("e2e-bad", transfer.StatusCompleted)
	if out := tr.OutputContext; out == nil || out.TransferType != "SYSTEM" || out.CurrentTaskName != "Done" {
		t.Fatalf("outputContext %+v", out)
	}
	eventually(t, "malformed messages counted", func() bool {
		return testenv.MetricValue(t, g.metrics, "handoff_agent_malformed_messages_total") == 4
	})
}
